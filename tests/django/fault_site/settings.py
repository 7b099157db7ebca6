"""The example shop with the fault-injection app ``djfaults`` (tests only)."""

from shop.settings import *  # noqa: F401,F403
from shop.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "djfaults"]
MIDDLEWARE = ["djfaults.middleware.kill_after_commit"]
ROOT_URLCONF = "fault_site.urls"
