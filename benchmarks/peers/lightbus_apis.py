"""Lightbus 1.1.2 side (imported only in the Lightbus virtualenv): the two APIs of
``benchmarks/apps/definitions.py``, declared with Lightbus's own classes, so that the
streams, event names, parameters and wire format are those lightbus_sync uses."""

from lightbus import Api, Event, Parameter


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
