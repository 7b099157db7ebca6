"""``lightbus-sync status | inspect | dead-letters``: the operations subcommands.

Exit statuses: 0 done (``status --check``: no group lost entries, every threshold met);
1 ``status --check`` found a loss or a threshold exceeded, or ``dead-letters
replay/purge`` could not act on some of the ids given; 2 bad arguments or
configuration; 3 the bus module could not be imported (missing: one line; raised:
traceback); 4 Redis unavailable, refusing the connection (a wrong password, an untrusted TLS
certificate) or refusing a command.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

import redis

from .bus_module import BusModuleNotFound
from .cli_common import EXIT_CONFIG, EXIT_FAILED, EXIT_IMPORT, EXIT_OK, EXIT_REDIS, BusModuleImportFailed, load_command_bus
from .errors import BusUnavailable, LightbusError
from .clients import is_permanent
from .transport import TRANSIENT_ERRORS


def add_ops_commands(sub: Any, bus_module: bool = True) -> None:
    """Add ``status``, ``inspect`` and ``dead-letters`` to the ``lightbus-sync`` parser's
    subcommands (``sub`` is what ``add_subparsers()`` returned). Without ``bus_module``
    (a framework's command, which supplies the bus) there are no bus and config options."""
    status = sub.add_parser(
        "status", help="streams, consumer groups, consumers, lag, pending and dead letters",
        description="Show each stream of the bus's APIs (the bus module's local APIs and listeners, "
                    "and --api ones) with its consumer groups and consumers; with neither --bus nor --api, "
                    "every stream on the Redis server(s), found as dead-letters finds dead letters. --check "
                    "turns it into a monitoring probe: exit 1 when a group lost entries or a threshold is exceeded, "
                    "0 otherwise.",
    )
    _common(status, bus_module)
    status.add_argument("--api", action="append", default=[], metavar="NAME",
                        help="also show this API's stream(s) (repeatable; API or API.EVENT)")
    status.add_argument("--all-streams", action="store_true",
                        help="also show every event stream found on the Redis server(s) (SCAN)")
    status.add_argument("--json", action="store_true", help="JSON for scripts")
    status.add_argument("--check", action="store_true",
                        help="exit 1 if a group lost entries (removed before it read them) or a threshold "
                             "below is exceeded (printing which), else 0")
    status.add_argument("--max-lag", type=int, metavar="N",
                        help="with --check: most entries a group may have left to read")
    status.add_argument("--max-pending-age", type=float, metavar="SECONDS",
                        help="with --check: longest a pending entry may go undelivered (its idle time); "
                             "set it above the acknowledgement timeout")
    status.add_argument("--max-dead-letters", type=int, metavar="N",
                        help="with --check: most dead letters a stream may have")
    status.add_argument("--max-replica-lag", type=float, metavar="SECONDS",
                        help="with --check and a redis+sentinel:// URL: longest a replica may go without "
                             "acknowledging the primary's writes; a replica down (known to the sentinels, "
                             "not connected) or the primary unreachable fails too")
    status.set_defaults(func=command_status)

    inspect = sub.add_parser(
        "inspect", help="recent events of an API or event, decoded (newest first); --follow tails",
        description="Show recent events, newest first (XREVRANGE; nothing is acked or claimed). "
                    "The API need not be defined locally. With --follow, the last --limit events are "
                    "shown oldest first, then new ones as they arrive (XREAD BLOCK) until Ctrl-C.",
    )
    _common(inspect, bus_module)
    inspect.add_argument("target", metavar="API[.EVENT]", help="an API name, or API.EVENT")
    inspect.add_argument("--limit", "-n", type=int, default=10, help="how many events (default 10; 0 = all)")
    inspect.add_argument("--since", metavar="ID|DATETIME",
                         help="only events from this stream id or ISO 8601 datetime on (naive = local time)")
    inspect.add_argument("--id", dest="event_id", metavar="EVENT_ID",
                         help="only the event with this event id (or stream entry id)")
    inspect.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    inspect.add_argument("--json", action="store_true",
                         help="JSON: an array; with --follow one JSON object per line")
    inspect.add_argument("--block-ms", type=int, default=1000, help=argparse.SUPPRESS)
    inspect.set_defaults(func=command_inspect)

    dead = sub.add_parser("dead-letters", help="list, show, replay or purge dead-lettered events")
    dead_sub = dead.add_subparsers(dest="dead_letters_command", required=True)
    listing = dead_sub.add_parser("list", help="dead letters, newest first")
    _common(listing, bus_module)
    _filters(listing)
    listing.add_argument("--limit", "-n", type=int, default=50, help="how many (default 50; 0 = all)")
    listing.add_argument("--json", action="store_true", help="JSON for scripts")
    listing.set_defaults(func=command_dead_list)

    show = dead_sub.add_parser("show", help="one dead letter in full")
    _common(show, bus_module)
    _filters(show)
    show.add_argument("id", metavar="ID", help="its id in the dead-letter stream")
    show.add_argument("--json", action="store_true", help="JSON for scripts")
    show.set_defaults(func=command_dead_show)

    replay = dead_sub.add_parser(
        "replay", help="send dead letters back to their original consumer group (only)",
        description="Each dead letter's original fields go to {<stream>}:replay:<group>, read by the "
                    "original consumer group alone, and the dead letter is deleted, in one atomic step. "
                    "Replaying an id twice does nothing the second time.",
    )
    _common(replay, bus_module)
    _filters(replay)
    replay.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids")
    replay.add_argument("--all", action="store_true", help="every dead letter matching the filters")
    replay.add_argument("--json", action="store_true", help="JSON for scripts")
    replay.set_defaults(func=command_dead_replay)

    purge = dead_sub.add_parser("purge", help="delete dead letters")
    _common(purge, bus_module)
    _filters(purge)
    purge.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids")
    purge.add_argument("--all", action="store_true", help="every dead letter matching the filters")
    purge.set_defaults(func=command_dead_purge)


def _common(parser: argparse.ArgumentParser, bus_module: bool = True) -> None:
    if not bus_module:
        return
    parser.add_argument("--bus", "-b", help="bus module to import (default $LIGHTBUS_MODULE; optional)")
    parser.add_argument("--config", "-c", help="config file (YAML, JSON or TOML; default $LIGHTBUS_CONFIG)")
    parser.add_argument("--redis-url", help="Redis URL for every API (default $LIGHTBUS_REDIS_URL or the config)")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", help="only dead letters of this API's stream(s)")
    parser.add_argument("--event", help="only this event")
    parser.add_argument("--listener", help="only this listener's")
    parser.add_argument("--group", help="only this consumer group's")
    parser.add_argument("--error-type", help="only this exception type (e.g. ValueError)")
    parser.add_argument("--stream", action="append", metavar="STREAM",
                        help="look only in this stream's dead letters (repeatable)")


# --- plumbing --------------------------------------------------------------------------


def _run(args: argparse.Namespace, body: Callable[[Any, bool], int]) -> int:
    try:
        bus, from_module = load_command_bus(args, service_name="lightbus-sync-ops")
    except BusModuleImportFailed:
        return EXIT_IMPORT
    except BusModuleNotFound as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_IMPORT
    except LightbusError as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return body(bus, from_module)
    except KeyboardInterrupt:
        return EXIT_OK
    except BusUnavailable as exc:
        print(f"lightbus-sync: Redis unavailable: {exc}", file=sys.stderr)
        return EXIT_REDIS
    except (LightbusError, ValueError) as exc:
        print(f"lightbus-sync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TRANSIENT_ERRORS as exc:
        if is_permanent(exc):
            print(f"lightbus-sync: Redis unavailable: it refused the connection ({type(exc).__name__}: {exc}): "
                  f"retrying will not help: check the URL's user, password and TLS settings", file=sys.stderr)
        else:
            print(f"lightbus-sync: Redis unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_REDIS
    except redis.RedisError as exc:
        print(f"lightbus-sync: Redis refused a command: {exc}", file=sys.stderr)
        return EXIT_REDIS
    finally:
        bus.close()


def _out(text: str) -> None:
    print(text, flush=True)


# --- status ----------------------------------------------------------------------------


def command_status(args: argparse.Namespace) -> int:
    from .ops.formatting import to_json
    from .ops.status import check_status, collect_status, render_problems, render_status

    thresholds = {"max_lag": args.max_lag, "max_pending_age": args.max_pending_age,
                  "max_dead_letters": args.max_dead_letters, "max_replica_lag": args.max_replica_lag}
    given = {k: v for k, v in thresholds.items() if v is not None}
    if args.max_replica_lag is not None and not args.max_replica_lag >= 0:
        print(f"lightbus-sync: --max-replica-lag must be a number of seconds >= 0, got {args.max_replica_lag:g}",
              file=sys.stderr)
        return EXIT_CONFIG
    if given and not args.check:
        print(f"lightbus-sync: --{'/--'.join(k.replace('_', '-') for k in given)} only apply with --check",
              file=sys.stderr)
        return EXIT_CONFIG

    def body(bus: Any, from_module: bool) -> int:
        from .outbox.backlog import configured_backlog, render_backlog

        # Neither a bus module nor --api: every stream on the Redis server(s).
        status = collect_status(bus, args.api, include_local=from_module,
                                discover=args.all_streams or (not from_module and not args.api))
        if args.max_replica_lag is not None and not status.replication:
            print("lightbus-sync: --max-replica-lag needs a Redis Sentinel URL (redis+sentinel://...): "
                  "no API of this bus uses one", file=sys.stderr)
            return EXIT_CONFIG
        problems = check_status(status, **thresholds) if args.check else []
        backlog = configured_backlog(bus.config)  # bus.outbox.url configured: its backlog
        if args.json:
            data = status.as_dict()
            if backlog is not None:
                data["outbox"] = backlog.as_dict()
            if args.check:
                data["check"] = {"ok": not problems, "thresholds": given,
                                 "problems": [p.as_dict() for p in problems]}
            _out(to_json(data))
        else:
            _out(render_status(status))
            if backlog is not None:
                _out(render_backlog(backlog))
            if args.check:
                _out("")
                _out(render_problems(problems))
        return EXIT_FAILED if problems else EXIT_OK

    return _run(args, body)


# --- inspect ---------------------------------------------------------------------------


def command_inspect(args: argparse.Namespace) -> int:
    from .ops.formatting import to_json, to_json_line
    from .ops.inspect import follow_events, recent_events, render_event, top_ids
    from .ops.streams import api_streams, resolve_api_argument

    def body(bus: Any, from_module: bool) -> int:
        api_name, event_name = resolve_api_argument(bus, args.target)
        targets = api_streams(bus, api_name, event_name)
        if not targets:  # a per-event API whose events are unknown and none of whose streams exist
            print(f"lightbus-sync: no streams found for the per-event API {api_name!r}; name the event "
                  f"(API.EVENT)", file=sys.stderr)
            return EXIT_CONFIG
        existing = [t for t in targets if t.transport.key_exists(t.stream)]
        if not existing and not args.follow:
            looked = ", ".join(t.stream for t in targets) or f"{api_name}.<event>:stream"
            print(f"lightbus-sync: no stream for {args.target!r} on Redis (looked for {looked})", file=sys.stderr)
            return EXIT_CONFIG
        if not args.follow:
            events = recent_events(bus, api_name, event_name, limit=args.limit, since=args.since,
                                   event_id=args.event_id)
            if args.json:
                _out(to_json([e.as_dict() for e in events]))
            elif not events:
                _out("no events")
            else:
                _out("\n".join(render_event(e) for e in events))
            return EXIT_OK
        start = top_ids(bus, api_name, event_name)
        history = recent_events(bus, api_name, event_name, limit=args.limit, since=args.since,
                                event_id=args.event_id, until=start)
        show: Callable[[Any], None]
        if args.json:
            show = lambda e: _out(to_json_line(e.as_dict()))  # noqa: E731
        else:
            show = lambda e: _out(render_event(e))  # noqa: E731
        for event in reversed(history):
            show(event)
        if not args.json:
            print(f"-- following {', '.join(start)} (Ctrl-C to stop)", file=sys.stderr, flush=True)

        def on_event(event: Any) -> None:
            if args.event_id is None or event.event_id == args.event_id:
                show(event)

        def on_error(exc: BaseException) -> None:
            print(f"lightbus-sync: reading failed ({type(exc).__name__}: {exc}); retrying", file=sys.stderr,
                  flush=True)

        follow_events(bus, api_name, event_name, on_event=on_event, after=start, block_ms=args.block_ms,
                      on_error=on_error)
        return EXIT_OK

    return _run(args, body)


# --- dead letters ----------------------------------------------------------------------


def _filter_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"api": args.api, "event": args.event, "listener": args.listener, "group": args.group,
            "error_type": args.error_type}


def command_dead_list(args: argparse.Namespace) -> int:
    from .ops.dead_letters import list_dead_letters, render_list
    from .ops.formatting import to_json

    def body(bus: Any, from_module: bool) -> int:
        letters = list_dead_letters(bus, args.stream, limit=args.limit, **_filter_kwargs(args))
        if args.json:
            _out(to_json([letter.as_dict() for letter in letters]))
        else:
            _out(render_list(letters))
        return EXIT_OK

    return _run(args, body)


def command_dead_show(args: argparse.Namespace) -> int:
    from .ops.dead_letters import Filters, get_dead_letter, render_one
    from .ops.formatting import to_json

    def body(bus: Any, from_module: bool) -> int:
        letter = get_dead_letter(bus, args.id, args.stream, api=args.api, filters=Filters(**_filter_kwargs(args)))
        _out(to_json(letter.as_dict()) if args.json else render_one(letter))
        return EXIT_OK

    return _run(args, body)


def command_dead_replay(args: argparse.Namespace) -> int:
    from .ops.dead_letters import replay
    from .ops.formatting import to_json

    if bool(args.ids) == bool(args.all):
        print("lightbus-sync: name dead-letter ids, or --all (with filters to narrow it), not both", file=sys.stderr)
        return EXIT_CONFIG

    def body(bus: Any, from_module: bool) -> int:
        result = replay(bus, args.ids or None, all=args.all, stream=args.stream, **_filter_kwargs(args))
        if args.json:
            _out(to_json(result.as_dict()))
        else:
            for item in result.replayed:
                _out(f"replayed {item.dead_id} -> {item.replay_stream} {item.new_id} (group {item.group})")
            for dead_id in result.missing:
                _out(f"not found: {dead_id} (replayed or purged already, or a wrong id)")
            for dead_id, why in result.skipped:
                _out(f"skipped: {dead_id}: {why}")
            for dead_id, why in result.unconfirmed:
                _out(f"not confirmed by replicas: {dead_id}: {why}")
            _out(f"{len(result.replayed)} dead letter(s) replayed")
        return EXIT_FAILED if result.missing or result.skipped else EXIT_OK

    return _run(args, body)


def command_dead_purge(args: argparse.Namespace) -> int:
    from .ops.dead_letters import purge

    if bool(args.ids) == bool(args.all):
        print("lightbus-sync: name dead-letter ids, or --all (with filters to narrow it), not both", file=sys.stderr)
        return EXIT_CONFIG

    def body(bus: Any, from_module: bool) -> int:
        count = purge(bus, args.ids or None, all=args.all, stream=args.stream, **_filter_kwargs(args))
        _out(f"{count} dead letter(s) purged")
        if args.ids and count < len(set(args.ids)):
            print(f"lightbus-sync: {len(set(args.ids)) - count} of the ids given were not found", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK

    return _run(args, body)
