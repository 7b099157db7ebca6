"""One runner process of ``lightbus-sync run --processes N``: what the supervisor
(lightbus_sync.supervisor) starts in each slot, as ``python -m lightbus_sync.supervised
<the parent's arguments>``.

It is ``lightbus-sync run`` as one process, with its slot's consumer name and, when the
parent serves metrics, multiprocess metrics instead of a port of its own. It gets
SIGTERM when the parent dies (Linux), and exits at once if the parent is already gone.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Optional, Sequence

from . import cli
from .cli_common import EXIT_CONFIG
from .supervisor import ENV_PARENT_PID, ENV_SLOT_NAME, is_child


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    if not is_child():
        print("lightbus_sync.supervised: started by lightbus-sync run --processes N only", file=sys.stderr)
        return EXIT_CONFIG
    _die_with_parent(int(os.environ[ENV_PARENT_PID]))
    args = cli.build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    args.processes = 1
    args.process_name = os.environ[ENV_SLOT_NAME]
    args.metrics_port = None
    return cli.run_parsed(args)


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
