"""Observers: one protocol for everything that watches the bus (stats, metrics, tracing).

Subclass ``Observer`` and override what you need; every method is a no-op by default.
Register it with ``bus.add_observer(observer)`` (sees the bus's fires and what every
runner of the bus does) or ``runner.add_observer(observer)`` (that runner only).

Calls come from the thread doing the work: ``firing``/``on_fired`` from the firing thread,
``handling``/``on_handled``/``on_retried``/``on_dead_lettered`` from the worker thread
handling the entry, ``on_reclaimed`` from the reclaimer thread, ``on_lost`` from the
keeper thread (or a worker thread, for an entry removed while pending). An observer that
raises is logged and skipped: it never breaks a fire or a delivery.

``handling(delivery, message)`` returns a context manager entered around the handler
call, on the worker thread (a tracing span, a per-handler database connection). Its
``__exit__`` sees the handler's exception but cannot swallow it. ``firing(fire)`` is
the same around the write of a ``fire()``/``fire_many()``, on the firing thread; what
it enters with (a mapping of field names to values, or None) is added to every entry
written (a trace context). ``fire()`` checks one flag when no observer overrides it.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from typing import Any, ContextManager, Iterable, Iterator, Mapping, NamedTuple, Optional, Sequence

from .message import EventMessage
from .wire import TRACE_FIELDS

logger = logging.getLogger("lightbus_sync.observers")

#: ``on_handled`` outcomes.
OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"


class DeliveryInfo(NamedTuple):
    """One stream entry as delivered to one listener. ``api_name``, ``event_name`` and
    ``event_id`` are empty when the entry was not (or could not be) decoded."""

    listener: str
    group: str
    stream: str
    entry_id: str
    delivery_count: int
    api_name: str = ""
    event_name: str = ""
    event_id: str = ""


class FireInfo(NamedTuple):
    """One ``fire()`` (one event id) or ``fire_many()`` call about to be written."""

    stream: str
    api_name: str
    event_name: str
    event_ids: tuple[str, ...]
    operation: str  # "fire" or "fire_many"


class Observer:
    """Base class of observers: no-op methods (see the module docs for threads)."""

    def firing(self, fire: FireInfo) -> ContextManager[Optional[Mapping[str, str]]]:
        """A context manager entered around the write of a ``fire()``/``fire_many()``,
        on the firing thread. What ``__enter__`` returns (a mapping, or None) is added
        to the fields of every entry written: only ``wire.TRACE_FIELDS`` may be (other
        names are logged and left out). ``__exit__`` sees the write's exception but
        cannot swallow it."""
        return contextlib.nullcontext()

    def on_fired(self, message: EventMessage) -> None:
        """``message`` was written by ``fire()``/``fire_many()`` (``stream_id`` set)."""

    def on_started(self, consumer: str, listeners: Sequence[str]) -> None:
        """A runner started reading as ``consumer`` for ``listeners`` (names)."""

    def on_stopped(self, consumer: str, clean: bool) -> None:
        """A runner stopped; ``clean``: every handler finished and was acked."""

    def handling(self, delivery: DeliveryInfo, message: EventMessage) -> ContextManager[Any]:
        """A context manager entered around one handler call, on the worker thread."""
        return contextlib.nullcontext()

    def on_handled(self, delivery: DeliveryInfo, outcome: str, duration: float) -> None:
        """The handler returned (``outcome`` ``"ok"``) or raised (``"error"``) after
        ``duration`` seconds."""

    def on_retried(self, delivery: DeliveryInfo, delay: float) -> None:
        """A failed entry will be claimable for another run in ``delay`` seconds."""

    def on_dead_lettered(self, delivery: DeliveryInfo, reason: str) -> None:
        """The entry was moved to its dead-letter stream (and acked)."""

    def on_reclaimed(self, delivery: DeliveryInfo) -> None:
        """A stale entry was claimed from a consumer that stopped handling it (a crashed
        or stopped process); not called for entries claimed for a scheduled retry."""

    def on_lost(self, listener: str, stream: str, count: int) -> None:
        """``count`` entries of ``stream`` were lost to ``listener``'s group: removed from
        the stream before the group read them (a lower bound where Redis cannot tell how
        many), or while pending (then 1 at a time)."""

    def wraps_handler(self) -> bool:
        """True if ``handling`` is overridden (the fan-out skips the others)."""
        return type(self).handling is not Observer.handling

    def times_handlers(self) -> bool:
        """True if ``on_handled`` is overridden: handler calls are timed, and described
        in a ``DeliveryInfo``, only for observers that want them."""
        return type(self).on_handled is not Observer.on_handled


class Observers(Observer):
    """The fan-out: calls each observer in turn, logging (never raising) its errors.
    Observers may be added while the bus runs; an ``Observers`` may hold another (a
    runner's holds its bus's), and sees what is added to it later."""

    def __init__(self, observers: Iterable[Observer] = ()) -> None:
        self._observers: tuple[Observer, ...] = ()
        self._parents: weakref.WeakSet[Observers] = weakref.WeakSet()  # a runner's go with it
        self._by_method: dict[str, tuple[Observer, ...]] = {}
        self._set(())
        for observer in observers:
            self.add(observer)

    def add(self, observer: Observer) -> Observer:
        if not isinstance(observer, Observer):
            raise TypeError(f"observer must be a lightbus_sync.Observer, got {observer!r}")
        if isinstance(observer, Observers):
            observer._parents.add(self)
        self._set((*self._observers, observer))
        return observer

    def remove(self, observer: Observer) -> None:
        if isinstance(observer, Observers):
            observer._parents.discard(self)
        self._set(tuple(o for o in self._observers if o is not observer))

    def _set(self, observers: tuple[Observer, ...]) -> None:
        # Per method, the observers that override it (a nested fan-out: that has one
        # that does), so that the hot path calls no no-op.
        self._observers = observers
        self._by_method = {name: tuple(o for o in observers if _overrides(o, name)) for name in _METHODS}
        #: True while some observer wraps fires: ``fire()`` checks it before anything else.
        self.fire_wrapped = bool(self._by_method["firing"])
        #: True while some observer is told of fired events (``on_fired``).
        self.fire_observed = bool(self._by_method["on_fired"])
        for parent in list(self._parents):
            parent._set(parent._observers)

    def __len__(self) -> int:
        return len(self._observers)

    def __iter__(self) -> Iterator[Observer]:
        return iter(self._observers)

    def _failed(self, observer: Observer, method: str) -> None:
        logger.exception("observer %r failed in %s", observer, method)

    def on_fired(self, message: EventMessage) -> None:
        for observer in self._by_method["on_fired"]:
            try:
                observer.on_fired(message)
            except Exception:
                self._failed(observer, "on_fired")

    def on_started(self, consumer: str, listeners: Sequence[str]) -> None:
        for observer in self._by_method["on_started"]:
            try:
                observer.on_started(consumer, listeners)
            except Exception:
                self._failed(observer, "on_started")

    def on_stopped(self, consumer: str, clean: bool) -> None:
        for observer in self._by_method["on_stopped"]:
            try:
                observer.on_stopped(consumer, clean)
            except Exception:
                self._failed(observer, "on_stopped")

    def on_handled(self, delivery: DeliveryInfo, outcome: str, duration: float) -> None:
        for observer in self._by_method["on_handled"]:
            try:
                observer.on_handled(delivery, outcome, duration)
            except Exception:
                self._failed(observer, "on_handled")

    def on_retried(self, delivery: DeliveryInfo, delay: float) -> None:
        for observer in self._by_method["on_retried"]:
            try:
                observer.on_retried(delivery, delay)
            except Exception:
                self._failed(observer, "on_retried")

    def on_dead_lettered(self, delivery: DeliveryInfo, reason: str) -> None:
        for observer in self._by_method["on_dead_lettered"]:
            try:
                observer.on_dead_lettered(delivery, reason)
            except Exception:
                self._failed(observer, "on_dead_lettered")

    def on_reclaimed(self, delivery: DeliveryInfo) -> None:
        for observer in self._by_method["on_reclaimed"]:
            try:
                observer.on_reclaimed(delivery)
            except Exception:
                self._failed(observer, "on_reclaimed")

    def on_lost(self, listener: str, stream: str, count: int) -> None:
        for observer in self._by_method["on_lost"]:
            try:
                observer.on_lost(listener, stream, count)
            except Exception:
                self._failed(observer, "on_lost")

    def wraps_handler(self) -> bool:
        return bool(self._by_method["handling"])

    def times_handlers(self) -> bool:
        return bool(self._by_method["on_handled"])

    def handling(self, delivery: DeliveryInfo, message: EventMessage) -> ContextManager[Any]:
        wrappers = self._by_method["handling"]
        if not wrappers:
            return _NULL
        return _around(wrappers, delivery, message)

    def firing(self, fire: FireInfo) -> ContextManager[Optional[Mapping[str, str]]]:
        manager = self.firing_or_none(fire)
        return _NULL if manager is None else manager

    def firing_or_none(self, fire: FireInfo) -> Optional[ContextManager[Optional[Mapping[str, str]]]]:
        """``firing(fire)``, or None when no observer has anything to do around this
        write (the caller then writes without entering a context)."""
        wrappers = self._by_method["firing"]
        if not wrappers:
            return None
        if len(wrappers) == 1:
            observer = wrappers[0]
            try:
                manager = observer.firing(fire)
            except Exception:
                logger.exception("observer %r failed in firing()", observer)
                return None
            # A no-op (an observer with nothing to do for this fire, e.g. tracing that is
            # not configured) cannot fail: it needs no guard, nor entering.
            if type(manager) is contextlib.nullcontext and manager.enter_result is None:
                return None
            return _GuardedFiring(observer, manager)
        return _firing_around(wrappers, fire)


_NULL = contextlib.nullcontext()
_METHODS = ("firing", "on_fired", "on_started", "on_stopped", "handling", "on_handled", "on_retried",
            "on_dead_lettered", "on_reclaimed", "on_lost")


def _overrides(observer: Observer, name: str) -> bool:
    if isinstance(observer, Observers):
        return bool(observer._by_method[name])
    return getattr(type(observer), name) is not getattr(Observer, name)


@contextlib.contextmanager
def _around(wrappers: Sequence[Observer], delivery: DeliveryInfo, message: EventMessage) -> Iterator[None]:
    """Enter each wrapper's ``handling`` (a failing one is logged and left out), exit
    them in reverse order with the handler's exception, which always propagates."""
    entered: list[tuple[Observer, ContextManager[Any]]] = []
    for observer in wrappers:
        try:
            manager = observer.handling(delivery, message)
            manager.__enter__()
        except Exception:
            logger.exception("observer %r failed entering handling()", observer)
            continue
        entered.append((observer, manager))
    error: Optional[BaseException] = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        for observer, manager in reversed(entered):
            try:
                if error is None:
                    manager.__exit__(None, None, None)
                else:
                    manager.__exit__(type(error), error, error.__traceback__)
            except Exception:
                logger.exception("observer %r failed leaving handling()", observer)


class _GuardedFiring:
    """The manager one observer's ``firing`` gave, its errors logged, never raised (the
    common case, without a generator)."""

    __slots__ = ("observer", "manager")

    def __init__(self, observer: Observer, manager: ContextManager[Any]) -> None:
        self.observer = observer
        self.manager: Optional[ContextManager[Any]] = manager

    def __enter__(self) -> Any:
        manager = self.manager
        if manager is None:
            return None
        try:
            added = manager.__enter__()
        except Exception:
            logger.exception("observer %r failed entering firing()", self.observer)
            self.manager = None
            return None
        if added and not TRACE_FIELDS.issuperset(added):
            logger.error("observer %r added the field(s) %s to an entry: only %s may be, the others are left out",
                         self.observer, ", ".join(sorted(set(added) - TRACE_FIELDS)), ", ".join(sorted(TRACE_FIELDS)))
            added = {name: value for name, value in added.items() if name in TRACE_FIELDS}
        return added

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        manager = self.manager
        if manager is not None:
            try:
                manager.__exit__(exc_type, exc, tb)
            except Exception:
                logger.exception("observer %r failed leaving firing()", self.observer)


@contextlib.contextmanager
def _firing_around(wrappers: Sequence[Observer], fire: FireInfo) -> Iterator[Optional[Mapping[str, str]]]:
    """Each wrapper's ``firing`` in turn (innermost last); yields the fields they add,
    merged, or None."""
    with contextlib.ExitStack() as stack:
        added: dict[str, str] = {}
        for observer in wrappers:
            try:
                manager = observer.firing(fire)
            except Exception:
                logger.exception("observer %r failed in firing()", observer)
                continue
            result = stack.enter_context(_GuardedFiring(observer, manager))
            if result:
                added.update(result)
        yield added or None
