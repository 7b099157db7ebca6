"""An in-memory bus for tests: ``in_memory(bus)``, as Dramatiq's ``StubBroker`` is to
Dramatiq and Celery's ``task_always_eager`` to Celery.

::

    from lightbus_sync.testing import in_memory

    def test_signup_sends_the_welcome_mail():
        with in_memory(bus) as broker:
            signup("adam")                        # fires auth.user_created
        assert outbox == ["adam@example.com"]    # its listener ran, in this thread

While it is on, ``fire()`` and ``fire_many()`` run as in production up to the write
(the same checks, encoding and outgoing validation), and the entry is kept in memory
instead of being sent to Redis. Each entry then goes through the runner's own handling
for every listener of the bus whose streams it is on: decoding, incoming validation and
casting (``lightbus_sync.incoming``), the handler call, and the runner's policy for what
follows (``lightbus_sync.runner.processing``): ack; retry on failure, at once rather than
after the backoff, up to ``max_deliveries`` runs; dead-letter (``broker.dead_letters``)
past them, for ``DeadLetter`` and ``dead_letter_on`` exceptions, and for entries that fail
the incoming checks; ``on_error='ack_and_log'`` and ``'stop'``.

With ``eager=True`` (the default) an event is handled in the thread that fired it, before
``fire()`` returns; with ``eager=False`` events wait until ``broker.drain()``. Events a
handler fires while being handled are queued and handled next, in order, so a chain of
events runs to its end in one ``fire()`` (eager) or one ``drain()``. They never reach
Redis: every transport of the bus is the broker's while it is on (and schemas are
published into it). Only this bus's fires are in memory: a handler that fires through
another bus object reaches that bus's Redis.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Sequence

import attrs

from ..incoming import IncomingDecoder
from ..keys import original_stream
from ..message import EventMessage
from ..runner.processing import Processor
from ..runner.routes import Route, make_route
from ..runner.settler import Settler, describe_error
from ..runner.state import Stats, Work
from .stand_in import StandInTransport

if TYPE_CHECKING:
    from ..bus import Bus, TransportState

__all__ = ["InMemoryBroker", "InMemoryDeadLetter", "in_memory"]

logger = logging.getLogger(__name__)

CONSUMER = "in-memory"


@attrs.frozen
class InMemoryDeadLetter:
    """An entry the runner's policy dead-lettered: the listener, the entry's stream and
    id, why (``reason``: ``max deliveries reached``, ``invalid``, ``malformed``, ...), the
    error (type and text; empty when there was none) and how many times it was delivered."""

    listener: str
    stream: str
    entry_id: str
    event_id: str
    reason: str
    error_type: str
    error: str
    delivery_count: int
    fields: Mapping[bytes, bytes] = attrs.field(repr=False)


class InMemoryTransport(StandInTransport):
    """The bus's transport while in memory: keeps written entries and schemas; hands
    each entry to the broker. Reads nothing from Redis (runners cannot run on it)."""

    refusal = (
        "the bus is in memory (lightbus_sync.testing.in_memory): its transport cannot {name}(); "
        "listeners run as events are fired (or on broker.drain()), without a runner"
    )

    def __init__(self, broker: "InMemoryBroker") -> None:
        self.schemas: dict[str, str] = {}
        super().__init__(self.schemas, threading.RLock())
        self._broker = broker

    def add_event(self, stream: str, fields: Mapping[str, str], max_length: Optional[int], timeout: float,
                  replication: Any = None) -> str:
        """Queue the entry (``replication``, a ``min_replicas`` wait, has nothing to wait for)."""
        (stream_id,) = self.add_events([(stream, fields)], max_length, timeout)
        return stream_id

    def add_events(
        self, items: Sequence[tuple[str, Mapping[str, str]]], max_length: Optional[int], timeout: float,
        replication: Any = None,
    ) -> list[str]:
        entries = [(stream, self._ids.next(), fields) for stream, fields in items]
        self._broker._enqueue(entries)
        return [entry_id for _, entry_id, _ in entries]


class _MemorySettler(Settler):
    """The runner's settler, in memory: what the runner's policy decides (ack, retry,
    dead-letter, leave pending) is recorded, and a retry is queued again at once. Every
    method of ``Settler`` is replaced (none touches Redis); its ``__init__`` is not run."""

    def __init__(self, broker: "InMemoryBroker") -> None:  # no Settler state is used
        self._broker = broker
        self._runs: dict[tuple[str, str, bytes], int] = {}

    def ack(self, work: Work) -> None:
        self._broker._settled(work, "acked")

    ack_now = ack

    def leave_pending(self, work: Work) -> None:
        self._broker._settled(work, "pending")

    def give_back(self, works: list[Work]) -> None:
        for work in works:
            self._broker._requeue(work)

    def retry(self, work: Work, delay: float) -> None:
        self._broker._requeue(attrs.evolve(work, delivery_count=work.delivery_count + 1))

    def dead_letter(self, work: Work, error: Optional[BaseException], *, reason: str, event_id: str = "") -> bool:
        self._broker._dead_lettered(InMemoryDeadLetter(
            work.route.name, original_stream(work.stream), work.entry_id.decode(), event_id, reason,
            "" if error is None else type(error).__name__,
            "" if error is None else describe_error(error, with_type=False),
            work.delivery_count, dict(work.fields or {}),
        ))
        self._broker._settled(work, "dead_lettered")
        return True

    @contextlib.contextmanager
    def redelivery_turn(self, work: Work) -> Iterator[bool]:
        yield True  # one thread handles everything: every run has its turn

    def count_attempt(self, work: Work) -> Optional[int]:
        """Runs started before this one (the first delivery's run counts as one)."""
        key = (work.stream, work.route.group, work.entry_id)
        started = self._runs.get(key, 1)
        self._runs[key] = started + 1
        return started


class InMemoryBroker:
    """Handles a bus's events in memory (see the module docs). Use ``in_memory(bus)``, or
    ``start()``/``stop()``. Thread-safe: events fired from several threads are handled
    one at a time, each in the thread that handles the queue."""

    def __init__(self, bus: "Bus", *, eager: bool = True) -> None:
        self.bus = bus
        self.eager = eager
        self.transport = InMemoryTransport(self)
        #: Every entry written while on, in order: (stream, entry id, fields).
        self.entries: list[tuple[str, str, Mapping[str, str]]] = []
        #: What the runner's policy dead-lettered, in order.
        self.dead_letters: list[InMemoryDeadLetter] = []
        #: How each (listener, entry id) was settled: acked, dead_lettered or pending.
        self.outcomes: dict[tuple[str, str], str] = {}
        #: Why handling stopped, for a listener with on_error='stop' whose handler failed.
        self.failure: Optional[str] = None
        self.stats = Stats()
        self._queue: collections.deque[Work] = collections.deque()
        self._lock = threading.RLock()
        self._handling = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._saved: Optional["TransportState"] = None
        self._processor = Processor(
            _MemorySettler(self),
            IncomingDecoder(bus.config.api, lambda api, event: bus.schemas.validator(api, event), bus.local_event),
            bus.observers, self.stats, self._fail_and_stop,
        )

    # --- on and off ------------------------------------------------------------------------

    def start(self) -> "InMemoryBroker":
        with self._lock:
            if self._saved is None:
                self._saved = self.bus.swap_transports(lambda url, **options: self.transport)
        return self

    def stop(self) -> None:
        """Put the bus's transports back. Events still queued (``eager=False``) are dropped."""
        with self._lock:
            saved, self._saved = self._saved, None
            self._queue.clear()
        if saved is not None:
            self.bus.restore_transports(saved)

    def __enter__(self) -> "InMemoryBroker":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def active(self) -> bool:
        return self._saved is not None

    # --- handling --------------------------------------------------------------------------

    def drain(self) -> int:
        """Handle queued events, and those their handlers fire, until none is left;
        return how many (listener, entry) deliveries were handled. A handler's error
        does not propagate: the runner's policy decides (see ``dead_letters``)."""
        handled = 0
        with self._handling:
            while True:
                with self._lock:
                    if not self._queue:
                        return handled
                    work = self._queue.popleft()
                self._processor(work)
                handled += 1

    def pending(self) -> int:
        """Deliveries queued and not yet handled."""
        with self._lock:
            return len(self._queue)

    def fired(self, event: Optional[str] = None) -> list[EventMessage]:
        """The messages fired while on (optionally of one event, ``'auth.user_created'``),
        as a listener would receive them before its own casts."""
        from ..wire import decode_entry

        messages = []
        for stream, entry_id, fields in list(self.entries):
            raw = decode_entry({k.encode(): v.encode() for k, v in fields.items()})
            if event is None or f"{raw.api_name}.{raw.event_name}" == event:
                messages.append(EventMessage(raw.id, raw.api_name, raw.event_name, raw.version,
                                             dict(raw.parameters), stream, entry_id))
        return messages

    # --- from the transport and the settler -------------------------------------------------

    def _route(self, listener: Any) -> Route:
        route = self._routes.get(listener.name)
        if route is None or route.listener is not listener:
            settings = self.bus.config.api(listener.api_names[0]).redis
            route = make_route(listener, self.transport, settings, lane=None, consumer=CONSUMER)  # type: ignore[arg-type]
            self._routes[listener.name] = route
        return route

    def _enqueue(self, entries: list[tuple[str, str, Mapping[str, str]]]) -> None:
        with self._lock:
            for stream, entry_id, fields in entries:
                self.entries.append((stream, entry_id, fields))
                encoded = {k.encode(): v.encode() for k, v in fields.items()}
                for listener in self.bus.listeners:
                    if stream in listener.streams and self.failure is None:
                        self._queue.append(Work(self._route(listener), stream, entry_id.encode(), encoded, 1))
        if self.eager and self._handling.acquire(blocking=False):
            # Not already handling in some thread (a handler's own fire() is queued and
            # handled next by the loop that runs it).
            self._handling.release()
            self.drain()

    def _requeue(self, work: Work) -> None:
        with self._lock:
            self._queue.append(work)

    def _settled(self, work: Work, outcome: str) -> None:
        with self._lock:
            self.outcomes[(work.route.name, work.entry_id.decode())] = outcome

    def _dead_lettered(self, dead: InMemoryDeadLetter) -> None:
        with self._lock:
            self.dead_letters.append(dead)

    def _fail_and_stop(self, reason: str) -> None:
        with self._lock:
            self.failure = reason
            self._queue.clear()


def in_memory(bus: "Bus", *, eager: bool = True) -> InMemoryBroker:
    """Handle ``bus``'s events in memory while the returned broker is on (a context
    manager); see the module docs."""
    return InMemoryBroker(bus, eager=eager)
