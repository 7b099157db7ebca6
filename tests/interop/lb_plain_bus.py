"""Real Lightbus bus module with no APIs and no listeners (for ``lightbus dumpschema``)."""

import lightbus

bus = lightbus.create()
