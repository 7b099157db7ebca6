"""The example shop with ``DATABASES["default"]["OPTIONS"]`` from ``$OPTIONS_SITE_DB_OPTIONS``
(JSON; tests only)."""

import json
import os

from shop.settings import *  # noqa: F401,F403
from shop.settings import DATABASES

DATABASES["default"]["OPTIONS"] = json.loads(os.environ.get("OPTIONS_SITE_DB_OPTIONS", "{}"))
