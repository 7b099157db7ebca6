"""Dead-letter replay end to end: a replayed event reaches its original group only, a
replay that fails again goes back to the original stream's dead letters, and replay
entries are deleted once handled."""
import lightbus_sync
from lightbus_sync import Api, Event, Parameter
from lightbus_sync.ops.dead_letters import list_dead_letters, replay, replay_stream
from lightbus_sync.runner import Runner
from ops_apps.ops_support import ops_bus, wait_until  # noqa: F401


class E2eApi(Api):
    happened = Event(parameters=(Parameter("n", int),))

    class Meta:
        name = "e2e.api"


S = "e2e.api.*:stream"


def test_replay_reaches_the_original_group_only(ops_bus, redis_client):
    bus = ops_bus(service_name="svc")
    seen_a, seen_b = [], []
    fail = {"on": True, "times": 0}

    def a(n):
        seen_a.append(n)
        if fail["on"] and n == 2:
            fail["times"] += 1
            raise lightbus_sync.DeadLetter("nope")

    bus.e2e.api.happened.listen(a, listener_name="a", since="0")
    bus.e2e.api.happened.listen(lambda n: seen_b.append(n), listener_name="b", since="0")
    for n in (1, 2, 3):
        bus.e2e.api.happened.fire(n=n)
    with Runner(bus, threads=2) as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: redis_client.xlen("{" + S + "}:dead") == 1 and len(seen_b) == 3)
        # replayed while it still fails: dead-lettered again, to the ORIGINAL dead stream
        assert len(replay(bus, all=True).replayed) == 1
        wait_until(lambda: fail["times"] == 2 and redis_client.xlen("{" + S + "}:dead") == 1)
        [letter] = list_dead_letters(bus)
        assert letter.stream == S and letter.group == "svc-a"
        fail["on"] = False
        assert len(replay(bus, all=True).replayed) == 1
        wait_until(lambda: seen_a.count(2) == 3)
        wait_until(lambda: redis_client.xlen(replay_stream(S, "svc-a")) == 0, what="replay entry deleted after ack")
        assert redis_client.xpending(replay_stream(S, "svc-a"), "svc-a")["pending"] == 0
    assert sorted(seen_b) == [1, 2, 3]  # group b never saw the replays
    assert redis_client.xlen("{" + S + "}:dead") == 0
    assert [g["name"] for g in redis_client.xinfo_groups(replay_stream(S, "svc-a"))] == [b"svc-a"]


def test_replay_made_before_the_runner_first_starts_is_read(ops_bus, redis_client):
    bus = ops_bus(service_name="svc")
    redis_client.xadd("{" + S + "}:dead", {"dl:stream": S, "dl:group": "svc-a", "id": "11111111-1111-1111-1111-111111111111",
                                          "api_name": "e2e.api", "event_name": "happened", "version": "1", ":n": "7"})
    assert len(replay(bus, all=True).replayed) == 1
    seen = []
    bus.e2e.api.happened.listen(lambda n: seen.append(n), listener_name="a")  # since=$ on the main stream
    with Runner(bus, threads=1) as runner:
        assert runner.wait_until_ready(10)
        wait_until(lambda: seen == [7])
