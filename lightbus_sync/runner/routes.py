"""Routes: everything the runner's threads need to know about one listener, built once.

A route is a listener with its transport (one Redis), its settings, the lane whose
workers handle its entries, the streams its group reads (its event streams, then one
replay stream per event stream) and the consumer name. Readers, the reclaimer, the
acker, the settler and processing take routes; none of them sees the runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional

import attrs

from ..keys import is_replay_stream, replay_stream

if TYPE_CHECKING:
    from ..config import RedisEventTransportConfig
    from ..listeners import Listener
    from ..transport import RedisTransport
    from .lanes import Lane


@attrs.frozen(eq=False)
class Route:
    """One listener's way through the runner (see the module docs)."""

    listener: "Listener"
    transport: "RedisTransport"
    settings: "RedisEventTransportConfig"
    lane: "Lane"
    consumer: str
    #: The event streams, then a replay stream for each (dead letters replayed for this
    #: group alone).
    streams: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.listener.name

    @property
    def group(self) -> str:
        return self.listener.group

    @property
    def event_streams(self) -> tuple[str, ...]:
        return self.listener.streams

    @property
    def replay_streams(self) -> tuple[str, ...]:
        return tuple(s for s in self.streams if is_replay_stream(s))


def make_route(
    listener: "Listener",
    transport: "RedisTransport",
    settings: "RedisEventTransportConfig",
    lane: "Lane",
    consumer: str,
) -> Route:
    """The route of ``listener``: its streams are computed here, once."""
    streams = (*listener.streams, *(replay_stream(s, listener.group) for s in listener.streams))
    return Route(listener, transport, settings, lane, consumer, streams)


class RouteTable:
    """The routes of one runner, in listener order, and by consumer group."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = tuple(routes)
        self._by_group = {route.group: route for route in self._routes}

    def __iter__(self):
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)

    def __getitem__(self, index: int) -> Route:
        return self._routes[index]

    def by_group(self, group: str) -> Optional[Route]:
        return self._by_group.get(group)
