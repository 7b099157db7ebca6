"""The APIs every case fires and listens to.

Two APIs so that each gets its own stream (per-API streams are the default):
``bench_auth`` for throughput cases, ``bench_timing`` for the latency case.
"""

from __future__ import annotations

from lightbus_sync import Api, Event, Parameter


class BenchAuthApi(Api):
    user_created = Event(parameters=(
        Parameter("username", str),
        Parameter("email", str),
        Parameter("is_admin", bool, default=False),
    ))

    class Meta:
        name = "bench_auth"


class BenchTimingApi(Api):
    timed = Event(parameters=(
        Parameter("username", str),
        Parameter("email", str),
        Parameter("is_admin", bool, default=False),
        Parameter("fired_ns", int),
    ))

    class Meta:
        name = "bench_timing"


#: The call every case makes: bus.bench_auth.user_created.fire(**KWARGS)
KWARGS = {"username": "adam", "email": "adam@example.com", "is_admin": False}

#: A JSON schema equivalent to the checks fire() makes for user_created.
USER_CREATED_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "username": {"type": "string"},
        "email": {"type": "string"},
        "is_admin": {"type": "boolean"},
    },
    "required": ["username", "email"],
    "additionalProperties": False,
}

#: Runner settings shared by the in-process cases and the subprocess bus module.
BUS_CONFIG = {"apis": {"default": {"event_transport": {"redis": {"batch_size": 100}}}}}
