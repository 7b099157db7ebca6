"""Testing code that fires events, without Redis: ``record_events(bus)``.

::

    from lightbus_sync.testing import record_events

    def test_signup_fires_user_created():
        with record_events(bus) as recorder:
            signup(username="adam")                 # calls bus.auth.user_created.fire(...)
        recorder.assert_fired("auth.user_created", username="adam")

While recording, ``bus.<api>.<event>.fire()`` and ``fire_many()`` run exactly as in
production (the same ``EventDefinition.bind`` checks, wire encoding and outgoing schema
validation, the same exceptions, real ``EventMessage`` results) except for the write:
the bus's transports are replaced by a :class:`RecordingTransport`, which keeps each
entry in memory instead of sending ``XADD``. Schemas are "published" into the recorder
too (``recorder.schemas``), so nothing reaches Redis and nothing is left behind when
recording stops.

Recorded messages carry their parameters as a listener receives them: decoded from
the wire and cast to the declared types. ``assert_fired`` encodes the expected values
by the same wire rules and compares them with what was fired, as JSON or once cast to
the declared types: ``created_at=datetime(...)`` matches the fired datetime, a
dataclass its JSON object, a tuple a list, ``Decimal('1.50')`` ``Decimal('1.5')``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence, Union

import attrs

from ..incoming import IncomingDecoder
from ..listeners import EventBinding, bind_handler
from ..message import EventMessage
from ..wire import encode_event, to_plain

if TYPE_CHECKING:
    from ..bus import Bus, EventClient, TransportState

__all__ = ["BusRecorder", "RecordedEvent", "RecordingTransport", "record_events"]

_install_lock = threading.Lock()


@attrs.frozen
class RecordedEvent:
    """One recorded entry: the message (parameters decoded and cast as a listener gets
    them), the stream it would have gone to, and its exact wire fields."""

    message: EventMessage
    stream: str
    fields: Mapping[str, str]
    parameters: Mapping[str, Any]  # JSON-decoded wire values, before casting


class RecordingTransport:
    """Stands in for ``RedisTransport`` on the fire path: ``add_event`` / ``add_events``
    record entries and return Redis-like stream ids; schemas are stored in memory.

    It cannot read: create runners outside the recording block (a runner created while
    recording gets this transport, and its threads fail with an error saying so). To
    run handlers without Redis, use ``lightbus_sync.testing.deliver()``.
    """

    url = safe_url = "recording://"

    def __init__(self, recorder: "BusRecorder") -> None:
        self._recorder = recorder
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def _next_id(self) -> str:
        with self._lock:
            now = int(time.time() * 1000)
            if now > self._last_ms:
                self._last_ms, self._seq = now, 0
            else:
                self._seq += 1
            return f"{self._last_ms}-{self._seq}"

    def add_event(self, stream: str, fields: Mapping[str, str], max_length: Optional[int], timeout: float) -> str:
        stream_id = self._next_id()
        self._recorder._record([(stream, fields, stream_id)])
        return stream_id

    def add_events(
        self, items: Sequence[tuple[str, Mapping[str, str]]], max_length: Optional[int], timeout: float
    ) -> list[str]:
        ids = [self._next_id() for _ in items]
        self._recorder._record([(stream, fields, sid) for (stream, fields), sid in zip(items, ids)])
        return ids

    def store_schemas(self, documents: Mapping[str, str], ttl: Optional[int]) -> None:
        with self._recorder._lock:
            self._recorder.schemas.update(documents)

    def load_schemas(self) -> dict[str, str]:
        with self._recorder._lock:
            return dict(self._recorder.schemas)

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"the bus is recording events (lightbus_sync.testing.record_events): its transport "
            f"only records fires and cannot {name}(); run handlers with "
            f"lightbus_sync.testing.deliver(), or start runners outside the recording block"
        )


def _accept_anything(**kwargs: Any) -> None:
    """A handler signature taking every parameter: binds casts by the declared types."""


class BusRecorder:
    """Records what a bus fires instead of writing it. ``start()``/``stop()``, or use as
    a context manager (``record_events(bus)``). Thread-safe; recorders on one bus nest.
    """

    def __init__(self, bus: "Bus") -> None:
        self.bus = bus
        self.transport = RecordingTransport(self)
        #: Schemas "published" while recording (api name -> JSON document), seeded with
        #: the remote schemas the bus already knew, so remote APIs validate as usual.
        self.schemas: dict[str, str] = {}
        self._lock = threading.RLock()
        self._records: list[RecordedEvent] = []
        self._bindings: dict[tuple[str, str, int], EventBinding] = {}
        self._active = False
        self._saved: Optional["TransportState"] = None
        # Decoding as a listener gets it (no incoming validation: the fire checked).
        self._decoder = IncomingDecoder(bus.config.api, lambda api, event: None)

    def __repr__(self) -> str:
        state = "recording" if self._active else "stopped"
        return f"<BusRecorder {self.bus!r} {state}, {len(self._records)} event(s)>"

    # --- installing ------------------------------------------------------------------

    def start(self) -> "BusRecorder":
        """Make the bus record fires (and schema traffic) into this recorder."""
        with _install_lock:
            if self._active:
                raise RuntimeError("this recorder is already recording")
            bus = self.bus
            saved = bus.schemas
            for name in saved.remote_names():
                document = saved.remote_document(name, load=False)
                if document is not None:
                    self.schemas.setdefault(name, json.dumps(document, sort_keys=True))
            # Every transport (and the schema registry, so first fires "publish" here)
            # is made anew through the recorder until stop().
            self._saved = bus.swap_transports(self._make_transport)
            self._active = True
        return self

    def stop(self) -> None:
        """Give the bus its transports and schema registry back. Idempotent."""
        with _install_lock:
            if not self._active or self._saved is None:
                return
            self.bus.restore_transports(self._saved)
            self._saved = None
            self._active = False

    @property
    def active(self) -> bool:
        return self._active

    def __enter__(self) -> "BusRecorder":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _make_transport(self, url: str, socket_timeout: Optional[float] = None) -> RecordingTransport:
        return self.transport

    # --- recording -------------------------------------------------------------------

    def _binding(self, api_name: str, event_name: str, version: int) -> EventBinding:
        key = (api_name, event_name, version)
        binding = self._bindings.get(key)
        if binding is None:
            definition = self.bus.get_api_definition(api_name).event(event_name)
            binding = bind_handler(_accept_anything, definition)[1]
            self._bindings[key] = binding
        return binding

    def _record(self, entries: Iterable[tuple[str, Mapping[str, str], str]]) -> None:
        records = []
        for stream, fields, stream_id in entries:
            fields = dict(fields)
            raw = self._decoder.decode({k.encode(): v.encode() for k, v in fields.items()})
            binding = self._binding(raw.api_name, raw.event_name, raw.version)
            kwargs = self._decoder.structure(raw, binding)
            message = EventMessage(raw.id, raw.api_name, raw.event_name, raw.version, kwargs, stream, stream_id)
            records.append(RecordedEvent(message, stream, fields, raw.parameters))
        with self._lock:
            self._records.extend(records)

    # --- reading and asserting ---------------------------------------------------------

    @property
    def records(self) -> list[RecordedEvent]:
        """Every recorded entry, in the order fired."""
        with self._lock:
            return list(self._records)

    @property
    def messages(self) -> list[EventMessage]:
        """Every recorded message, in the order fired."""
        return [record.message for record in self.records]

    def clear(self) -> None:
        """Forget what was recorded so far (keeps recording)."""
        with self._lock:
            self._records.clear()

    def _canonical(self, event: Union[str, "EventClient"]) -> str:
        """The event's canonical name; unknown APIs/events raise (a typo must not make
        ``assert_not_fired`` pass)."""
        if not isinstance(event, str):
            return event.canonical_name
        with self._lock:
            if any(r.message.canonical_name == event for r in self._records):
                return event
        from ..event_lookup import event_client

        return event_client(self.bus, event).canonical_name

    def fired(self, event: Union[str, "EventClient", None] = None) -> list[EventMessage]:
        """Messages fired for ``event`` (``'auth.user_created'`` or ``bus.auth.user_created``),
        or every message when ``event`` is None."""
        return [r.message for r in self._records_of(event)]

    def _records_of(self, event: Union[str, "EventClient", None]) -> list[RecordedEvent]:
        if event is None:
            return self.records
        name = self._canonical(event)
        return [r for r in self.records if r.message.canonical_name == name]

    def _matches(self, record: RecordedEvent, expected: Mapping[str, Any]) -> bool:
        message = record.message
        unknown = [k for k in expected if k not in record.parameters]
        if unknown:
            raise AssertionError(
                f"{message.canonical_name} has no parameter(s) {', '.join(map(repr, unknown))}; "
                f"its parameters are {', '.join(record.parameters) or '(none)'}"
            )
        plain = to_plain(message.api_name, message.event_name, expected)
        encoded = encode_event("", message.api_name, message.event_name, message.version, plain)
        binding = self._binding(message.api_name, message.event_name, message.version)
        cast_values = self.bus.config.api(message.api_name).cast_values
        for name in expected:
            value = json.loads(encoded[":" + name])
            if value == record.parameters[name]:  # the same JSON on the wire
                continue
            if not cast_values:
                return False
            try:  # or equal once cast, as a listener gets it: Decimal('1.50') == Decimal('1.5')
                if binding.casts[name](value) == message.kwargs[name]:
                    continue
            except Exception:
                pass
            return False
        return True

    def _describe(self, name: str, records: list[RecordedEvent]) -> str:
        if not records:
            fired = sorted({r.message.canonical_name for r in self.records})
            return f"{name} was not fired; fired: {', '.join(fired) or 'nothing'}"
        shown = "\n".join(f"  {dict(r.message.kwargs)!r}" for r in records[:10])
        more = f"\n  ... and {len(records) - 10} more" if len(records) > 10 else ""
        return f"{name} was fired {len(records)} time(s):\n{shown}{more}"

    def assert_fired(self, event: Union[str, "EventClient"], /, **expected: Any) -> list[EventMessage]:
        """Assert ``event`` was fired at least once with parameters including ``expected``
        (compared by wire value, or once cast: see the module docs); return the matching
        messages."""
        name = self._canonical(event)
        records = self._records_of(name)
        matching = [r.message for r in records if self._matches(r, expected)]
        if not matching:
            wanted = f" with {expected!r}" if expected else ""
            raise AssertionError(f"expected {name} to be fired{wanted}; {self._describe(name, records)}")
        return matching

    def assert_fired_once(self, event: Union[str, "EventClient"], /, **expected: Any) -> EventMessage:
        """Assert exactly one firing of ``event`` matches ``expected``; return it."""
        matching = self.assert_fired(event, **expected)
        if len(matching) != 1:
            name = self._canonical(event)
            raise AssertionError(
                f"expected {name} to be fired once{' with ' + repr(expected) if expected else ''}, "
                f"it was {len(matching)} times; {self._describe(name, self._records_of(name))}"
            )
        return matching[0]

    def assert_not_fired(self, event: Union[str, "EventClient"], /, **expected: Any) -> None:
        """Assert no firing of ``event`` matches ``expected`` (with no ``expected``: that
        ``event`` was not fired at all)."""
        name = self._canonical(event)
        records = self._records_of(name)
        matching = [r for r in records if self._matches(r, expected)]
        if matching:
            wanted = f" with {expected!r}" if expected else ""
            raise AssertionError(f"expected {name} not to be fired{wanted}; {self._describe(name, matching)}")


def record_events(bus: "Bus") -> BusRecorder:
    """``with record_events(bus) as recorder:``: ``bus``'s fires are recorded instead of
    written to Redis for the block (see the module docs)."""
    return BusRecorder(bus)
