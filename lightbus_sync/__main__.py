"""``python -m lightbus_sync``: the ``lightbus-sync`` command."""

import sys

from .cli import main

sys.exit(main())
