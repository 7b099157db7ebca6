"""Before a runner starts: may its Redis user connect, and run every command it needs?

For each Redis of the runner's routes: ``PING`` (a refused password or user raises at
once; an unreachable Redis only logs a warning: the readers wait for it), then, on
Redis 7+, the commands of ``access.runner_commands`` for each route's streams and of
``access.producer_commands`` for the schemas it publishes, checked for the connected
user (``access.missing_commands``). Anything refused raises ``AccessRefused`` naming it.
"""

from __future__ import annotations

import logging
from typing import Iterable

import redis

from ..access import missing_commands, producer_commands, runner_commands
from ..errors import AccessRefused, BusUnavailable, TransportError
from ..keys import attempts_key, dead_letter_stream, replay_stream, schema_key
from ..transport import TRANSIENT_ERRORS
from .routes import Route

logger = logging.getLogger("lightbus_sync.runner")


def check_access(routes: Iterable[Route], schema_apis: Iterable[str] = ()) -> None:
    """Raise ``AccessRefused`` if Redis refuses the runner's user (see the module docs)."""
    by_transport: dict[int, list[Route]] = {}
    for route in routes:
        by_transport.setdefault(id(route.transport), []).append(route)
    schema_keys = [schema_key(name) for name in schema_apis]
    for group in by_transport.values():
        transport = group[0].transport
        try:
            transport.check_connection(timeout=0)  # one attempt: an unreachable Redis is waited for later
        except BusUnavailable as exc:
            logger.warning("%s; starting anyway: the readers wait for it", exc)
            continue
        except TransportError as exc:
            raise AccessRefused(str(exc)) from None
        commands = producer_commands((), schema_keys)
        for route in group:
            for stream in route.event_streams:
                commands += runner_commands(
                    stream, route.group, route.consumer, dead_stream=dead_letter_stream(stream),
                    attempts_key=attempts_key(stream), replay_stream=replay_stream(stream, route.group),
                )
        try:
            missing = missing_commands(transport, commands)
        except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
            logger.warning("could not check the Redis user's permissions (%s); starting anyway", exc)
            continue
        except TransportError as exc:
            raise AccessRefused(str(exc)) from None
        if missing:
            raise AccessRefused(
                f"the Redis user of {transport.safe_url} may not run {', '.join(missing)}: grant them "
                f"(see the runner's ACL in docs/deployment.md, 'ACL users')", missing=tuple(missing),
            )
