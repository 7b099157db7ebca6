"""lightbus_sync's own copy of the API that real Lightbus defines (``interop.lb_types``,
see lb_defs.py): a lightbus_sync service that defines it locally."""

from lightbus_sync import Api, Event

from sync_defs import TYPED_PARAMETERS


class LbTypesLocalApi(Api):
    typed = Event(parameters=TYPED_PARAMETERS)
    ping = Event()

    class Meta:
        name = "interop.lb_types"
        version = 3
