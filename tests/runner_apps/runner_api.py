"""The API the runner tests fire and the child processes listen to."""

from lightbus_sync import Api, Event, Parameter


class RunnerTestApi(Api):
    job = Event(parameters=(Parameter("n", int), Parameter("sleep", float, default=0.0)))
    other = Event(parameters=(Parameter("n", int),))

    class Meta:
        name = "runner_test"
