"""The runner's parts alone, against a real Redis: routes, the settler, the incoming
decoder, the observer fan-out, the reclaimer's sweep schedule, the transport seam."""

from __future__ import annotations

import logging
import threading
import time

import pytest

import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.errors import InvalidIncomingEvent, MalformedEntry
from lightbus_sync.incoming import IncomingDecoder
from lightbus_sync.keys import attempts_key, dead_letter_stream, replay_stream, retry_mark_field
from lightbus_sync.observers import DeliveryInfo, Observer, Observers
from lightbus_sync.runner import Runner
from lightbus_sync.runner.acker import Acker
from lightbus_sync.runner.lanes import Lane
from lightbus_sync.runner.routes import RouteTable, make_route
from lightbus_sync.runner.settler import Settler
from lightbus_sync.runner.state import InFlight, Stats, Work
from lightbus_sync.transport import RedisTransport
from runner_apps.harness import fast_config, wait_until

STREAM = "parts.jobs.*:stream"
GROUP = "parts-work"
CONSUMER = "c1"


class PartsApi(Api):
    job = Event(parameters=(Parameter("n", int),))

    class Meta:
        name = "parts.jobs"


def make_bus(url: str, **config) -> lightbus_sync.Bus:
    tree = fast_config(redis={"acknowledgement_timeout": 10})
    tree.update(config)
    return lightbus_sync.create(redis_url=url, service_name="parts", process_name=CONSUMER, config=tree)


class Parts:
    """A route and a settler over a real Redis, with a started acker."""

    def __init__(self, bus: lightbus_sync.Bus) -> None:
        self.listener = bus.parts.jobs.job.listen(lambda n: None, listener_name="work")
        self.transport = bus.transport_for("parts.jobs")
        self.settings = bus.config.api("parts.jobs").redis
        self.lane = Lane("shared", 1, 0, lambda work: None)  # never started
        self.route = make_route(self.listener, self.transport, self.settings, self.lane, CONSUMER)
        self.in_flight = InFlight()
        self.stats = Stats()
        self.stopping, self.stopped = threading.Event(), threading.Event()
        self.acker = Acker(self.in_flight, self.stats)
        self.acker.start()
        self.settler = Settler(self.acker, self.in_flight, self.stopping, self.stopped, self.stats)

    def fetch(self, bus: lightbus_sync.Bus, count: int = 1) -> list[Work]:
        """Fire ``count`` jobs and read them as our consumer (pending, held in flight)."""
        self.transport.ensure_group(STREAM, GROUP, "$", CONSUMER)
        for n in range(count):
            bus.parts.jobs.job.fire(n=n)
        [(stream, entries)] = self.transport.read_group(self.transport.client, GROUP, CONSUMER, {STREAM: ">"}, count, None)
        works = [Work(self.route, stream, entry_id, fields, 1) for entry_id, fields in entries]
        for work in works:
            assert self.in_flight.add(work.stream, GROUP, work.entry_id)
        return works

    def close(self) -> None:
        self.acker.stop(time.monotonic() + 2)


@pytest.fixture
def parts(redis_url):
    bus = make_bus(redis_url)
    made = Parts(bus)
    made.bus = bus
    yield made
    made.close()
    bus.close()


def idle_ms(client, entry_id: bytes) -> int:
    [row] = client.xpending_range(STREAM, GROUP, entry_id, entry_id, 1)
    return row["time_since_delivered"]


def test_a_route_holds_its_streams_with_their_replay_streams(parts):
    route = parts.route
    assert (route.name, route.group, route.consumer) == ("work", GROUP, CONSUMER)
    assert route.streams == (STREAM, replay_stream(STREAM, GROUP))
    assert route.event_streams == (STREAM,) and route.replay_streams == (replay_stream(STREAM, GROUP),)
    assert route.transport is parts.transport and route.lane is parts.lane
    table = RouteTable([route])
    assert table.by_group(GROUP) is route and table.by_group("other") is None and list(table) == [route]


def test_settler_retry_sets_the_idle_time_to_end_with_the_delay_and_marks_the_retry(parts, redis_client):
    (work,) = parts.fetch(parts.bus)
    parts.settler.retry(work, delay=4.0)
    assert not parts.in_flight.holds(STREAM, GROUP, work.entry_id)
    assert 6000 <= idle_ms(redis_client, work.entry_id) < 7000  # ack timeout 10 s - 4 s
    field = retry_mark_field(STREAM, GROUP, work.entry_id)
    assert redis_client.hget(attempts_key(STREAM), field) == b"1"
    assert parts.transport.take_marks(attempts_key(STREAM), [field, field]) == [True, False]


def test_settler_give_back_makes_entries_claimable_at_once(parts, redis_client):
    works = parts.fetch(parts.bus, 2)
    parts.settler.give_back(works)
    assert len(parts.in_flight) == 0 and parts.stats.get("given_back") == 2
    assert all(idle_ms(redis_client, w.entry_id) >= 10_000 for w in works)


def test_settler_leave_pending_touches_nothing_in_redis(parts, redis_client):
    (work,) = parts.fetch(parts.bus)
    parts.settler.leave_pending(work)
    assert len(parts.in_flight) == 0
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 1 and idle_ms(redis_client, work.entry_id) < 5000


def test_settler_acks_and_counts_attempts(parts, redis_client):
    first, second = parts.fetch(parts.bus, 2)
    assert parts.settler.count_attempt(second) == 1 and parts.settler.count_attempt(second) == 2
    parts.settler.ack_now(first)
    parts.settler.ack(second)
    wait_until(lambda: redis_client.xpending(STREAM, GROUP)["pending"] == 0, what="both acked")
    wait_until(lambda: len(parts.in_flight) == 0, what="both let go")
    assert parts.stats.get("acked") == 2


def test_settler_dead_letters_with_the_record_and_acks(parts, redis_client):
    (work,) = parts.fetch(parts.bus)
    assert parts.settler.dead_letter(work, ValueError("bad"), reason="invalid", event_id="e-1") is True
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0 and len(parts.in_flight) == 0
    [(_, fields)] = redis_client.xrange(dead_letter_stream(STREAM))
    assert fields[b"dl:reason"] == b"invalid" and fields[b"dl:error_type"] == b"ValueError"
    assert fields[b"dl:group"] == GROUP.encode() and fields[b"dl:consumer"] == CONSUMER.encode()
    assert fields[b"dl:event_id"] == b"e-1" and fields[b":n"] == b"0"


@pytest.mark.parametrize("fresh_redis_server", [False], indirect=True)
def test_settler_gives_up_dead_lettering_once_the_runner_stopped(fresh_redis_server, caplog):
    bus = make_bus(fresh_redis_server.url)
    parts = Parts(bus)
    try:
        (work,) = parts.fetch(bus)
        fresh_redis_server.stop()
        parts.stopping.set()
        parts.stopped.set()
        with caplog.at_level(logging.ERROR, logger="lightbus_sync.runner"):
            assert parts.settler.dead_letter(work, None, reason="invalid") is False
        assert "stays pending" in caplog.text and len(parts.in_flight) == 0
    finally:
        parts.close()
        bus.close()


class _AckFailures(logging.Handler):
    """Counts the acker's failed attempts; ``failed`` is set at each one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.failed = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("acking "):
            self.count += 1
            self.failed.set()


@pytest.mark.parametrize("fresh_redis_server", [True], indirect=True)  # appendonly: the PEL survives
def test_a_stopped_acker_sends_nothing_even_when_redis_comes_back(fresh_redis_server):
    """Acks that could not be sent by the stop deadline stay unsent: stop() reports them,
    the acker thread has ended, and the entries are still pending once Redis is back
    (the acker used to wake from its backoff after stop() returned and ack them)."""
    server = fresh_redis_server
    bus = make_bus(server.url)
    parts = Parts(bus)
    failures = _AckFailures()
    runner_log = logging.getLogger("lightbus_sync.runner")
    runner_log.addHandler(failures)
    try:
        works = parts.fetch(bus, 2)
        server.kill()
        for work in works:
            parts.settler.ack(work)
        while failures.count < 6:  # the backoff between attempts has grown to its 1 s limit
            assert failures.failed.wait(10), "the acker did not retry"
            failures.failed.clear()
        assert failures.failed.wait(10)  # an attempt just failed: the acker waits 1 s now
        assert parts.acker.stop(time.monotonic()) is False  # the deadline has passed
        assert not parts.acker.alive()
        server.restart()
        time.sleep(1.5)  # longer than the acker's longest wait between attempts
        client = server.client()
        try:
            assert client.xpending(STREAM, GROUP)["pending"] == 2
        finally:
            client.close()
        assert parts.stats.as_dict().get("acked", 0) == 0 and len(parts.in_flight) == 2
    finally:
        runner_log.removeHandler(failures)
        parts.close()
        bus.close()


def test_settler_redelivery_turns_are_taken_one_at_a_time(parts):
    (work,) = parts.fetch(parts.bus)
    inside = threading.Event()
    release = threading.Event()
    turns: list[bool] = []

    def hold():
        with parts.settler.redelivery_turn(work) as turn:
            turns.append(turn)
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    parts.stopping.set()  # a second run waiting for its turn gives up once stopping
    with parts.settler.redelivery_turn(work) as turn:
        turns.append(turn)
    release.set()
    holder.join(5)
    assert turns == [True, False]


def test_decoder_decodes_validates_and_structures(parts):
    config = {"apis": {"parts.jobs": {"validate": {"incoming": True}, "strict_validation": True}}}
    bus = lightbus_sync.create(redis_url=parts.bus.config.api("default").redis.url, service_name="parts",
                               config=config)
    try:
        listener = bus.parts.jobs.job.listen(lambda n: None, listener_name="d")
        decoder = IncomingDecoder(bus.config.api, lambda api, event: None)
        fields = {k.encode(): v.encode() for k, v in bus.parts.jobs.job.encode(n=7).fields.items()}
        raw = decoder.decode(fields)
        assert (raw.api_name, raw.event_name, raw.parameters) == ("parts.jobs", "job", {"n": 7})
        binding = listener.binding_for("parts.jobs", "job")
        assert decoder.structure(raw, binding) == {"n": 7}
        with pytest.raises(InvalidIncomingEvent, match="no schema known.*strict_validation"):
            decoder.validate(raw)
        with pytest.raises(MalformedEntry):
            decoder.decode({b"api_name": b"parts.jobs"})
        fields[b":n"] = b'"seven"'
        with pytest.raises(InvalidIncomingEvent, match="'n'"):
            decoder.structure(decoder.decode(fields), binding)
        checked = IncomingDecoder(bus.config.api, bus.schemas.validator)  # the local schema
        checked.validate(raw)
        with pytest.raises(InvalidIncomingEvent, match="do not match the schema"):
            checked.validate(decoder.decode(fields))
    finally:
        bus.close()


class Recorder(Observer):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_started(self, consumer, listeners):
        self.calls.append(("started", consumer, tuple(listeners)))

    def on_stopped(self, consumer, clean):
        self.calls.append(("stopped", consumer, clean))

    def on_handled(self, delivery, outcome, duration):
        self.calls.append(("handled", delivery, outcome, duration >= 0))

    def on_retried(self, delivery, delay):
        self.calls.append(("retried", delivery))

    def on_dead_lettered(self, delivery, reason):
        self.calls.append(("dead_lettered", delivery, reason))

    def on_reclaimed(self, delivery):
        self.calls.append(("reclaimed", delivery))

    def handling(self, delivery, message):
        recorder = self

        class Around:
            def __enter__(self):
                recorder.calls.append(("enter", threading.current_thread().name, message.kwargs["n"]))

            def __exit__(self, kind, error, tb):
                recorder.calls.append(("exit", kind))
                return True  # must not swallow the handler's error

        return Around()


class Broken(Observer):
    def on_handled(self, delivery, outcome, duration):
        raise RuntimeError("observer bug")

    def handling(self, delivery, message):
        raise RuntimeError("observer bug")


def test_fan_out_isolates_observer_errors_and_never_swallows_the_handlers(caplog):
    recorder = Recorder()
    fan_out = Observers([Broken(), recorder])
    delivery = DeliveryInfo("l", "g", STREAM, "1-0", 1, "parts.jobs", "job", "e-1")
    with caplog.at_level(logging.ERROR, logger="lightbus_sync.observers"):
        fan_out.on_handled(delivery, "ok", 0.5)
        from lightbus_sync.message import EventMessage

        message = EventMessage("e-1", "parts.jobs", "job", 1, {"n": 1})
        with pytest.raises(KeyError):
            with fan_out.handling(delivery, message):
                raise KeyError("handler")
    assert recorder.calls[0] == ("handled", delivery, "ok", True)
    assert recorder.calls[2] == ("exit", KeyError)
    assert caplog.text.count("observer bug") >= 2
    assert Observers([]).handling(delivery, message) is Observers([Observer()]).handling(delivery, message)
    with pytest.raises(TypeError, match="Observer"):
        fan_out.add(print)  # type: ignore[arg-type]


def test_a_runner_tells_its_observers_what_it_does(redis_url, redis_client):
    bus = make_bus(redis_url)
    failures = {"left": 1}

    def handler(n):
        if n == 1 and failures["left"]:
            failures["left"] -= 1
            raise ValueError("once")
        if n == 2:
            raise lightbus_sync.DeadLetter("never")

    bus.parts.jobs.job.listen(handler, listener_name="work", retry_backoff=(0.0, 0.0))
    recorder = Recorder()
    bus.add_observer(Broken())  # a bus observer: sees the runner too, and its errors change nothing
    runner = Runner(bus)
    runner.add_observer(recorder)
    with runner:
        assert runner.wait_until_ready(10)
        for n in range(3):
            bus.parts.jobs.job.fire(n=n)
        wait_until(lambda: runner.stats.get("acked") == 2 and runner.stats.get("dead_lettered") == 1, 15,
                   what="three entries settled")
    kinds = [c[0] for c in recorder.calls]
    assert kinds[0] == "started" and recorder.calls[0] == ("started", CONSUMER, ("work",))
    assert recorder.calls[-1] == ("stopped", CONSUMER, True)
    handled = [c for c in recorder.calls if c[0] == "handled"]
    assert sorted((c[1].event_name, c[2]) for c in handled) == [("job", "error")] * 2 + [("job", "ok")] * 2
    delivery = handled[0][1]
    assert (delivery.listener, delivery.group, delivery.stream, delivery.api_name) == ("work", GROUP, STREAM, "parts.jobs")
    assert delivery.event_id and delivery.entry_id
    (retried,) = [c for c in recorder.calls if c[0] == "retried"]
    (dead,) = [c for c in recorder.calls if c[0] == "dead_lettered"]
    assert dead[2] == "handler marked permanent" and dead[1].event_id
    assert "reclaimed" not in kinds  # the retry was claimed, but it is no reclaim
    assert [c[1] for c in handled if c[1].entry_id == retried[1].entry_id][-1].delivery_count == 2
    enters = [c for c in recorder.calls if c[0] == "enter"]
    assert len(enters) == 4 and all(name.startswith("lightbus-worker") for _, name, _ in enters)
    assert runner.stats.get("processed") == 2 and runner.stats.get("failed") == 2
    bus.close()


def test_entries_of_a_consumer_that_died_are_reported_as_reclaims(redis_url, redis_client):
    bus = make_bus(redis_url, apis={"default": {"event_transport": {"redis": {
        "acknowledgement_timeout": 0.5, "reclaim_interval": 0.1, "block_ms": 100}}}})
    bus.parts.jobs.job.listen(lambda n: None, listener_name="work")
    transport = bus.transport_for("parts.jobs")
    transport.ensure_group(STREAM, GROUP, "$", "dead")
    for n in range(2):
        bus.parts.jobs.job.fire(n=n)
    transport.read_group(transport.client, GROUP, "dead", {STREAM: ">"}, 10, None)  # never acked
    recorder = Recorder()
    runner = Runner(bus)
    runner.add_observer(recorder)
    with runner:
        wait_until(lambda: runner.stats.get("acked") == 2, 15, what="the dead consumer's entries handled")
    reclaimed = [c[1] for c in recorder.calls if c[0] == "reclaimed"]
    assert len(reclaimed) == 2 and all(d.delivery_count == 2 and d.listener == "work" for d in reclaimed)
    assert runner.stats.get("reclaimed") == 2
    bus.close()


def test_the_idle_consumer_sweep_runs_once_per_sweep_interval(redis_url):
    bus = make_bus(redis_url, apis={"default": {"event_transport": {"redis": {
        "acknowledgement_timeout": 10, "reclaim_interval": 0.05, "consumer_ttl": 3600}}}})
    bus.parts.jobs.job.listen(lambda n: None, listener_name="work")
    runner = Runner(bus)
    with runner:
        wait_until(lambda: runner.reclaimer.sweeps >= 1, 10, what="the first sweep")
        time.sleep(1.0)  # some 20 reclaim passes
        assert runner.reclaimer.sweeps == 1  # the next is due 300 s after the first
    bus.close()


def test_transport_factory_puts_another_transport_in_place(redis_url):
    made: list[tuple[str, float]] = []

    def factory(url, socket_timeout=None):
        made.append((url, socket_timeout))
        return RedisTransport(url, socket_timeout=socket_timeout)

    bus = lightbus_sync.create(redis_url=redis_url, service_name="parts", transport_factory=factory)
    try:
        message = bus.parts.jobs.job.fire(n=1)
        assert message.stream_id and [url for url, _ in made] == [redis_url]
        assert bus.transport_for("parts.jobs") is bus.transport_for("parts.jobs") and len(made) == 1
    finally:
        bus.close()
