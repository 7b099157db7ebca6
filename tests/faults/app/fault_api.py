"""The API the fault scenarios fire and handle."""

from lightbus_sync import Api, Event, Parameter


class FaultApi(Api):
    work = Event(parameters=(Parameter("seq", int), Parameter("mode", str, default="ok")))

    class Meta:
        name = "faults"
