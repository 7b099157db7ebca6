"""Settings of the example shop: two apps, ``orders`` (fires) and ``shipping`` (listens).

The database is SQLite next to this file, or PostgreSQL when ``SHOP_DATABASE_URL`` is
``postgresql://user@host:port/name``. Redis: ``$LIGHTBUS_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``).
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = os.environ.get("SHOP_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "lightbus_sync.contrib.django",
    "orders",
    "shipping",
]

LIGHTBUS_SYNC = {
    "service_name": "shop",
    "bus": {"runner": {"threads": 4, "shutdown_timeout": 10}},
}
# manage.py lightbus_run relays the outbox of this database.
LIGHTBUS_SYNC_OUTBOX = "default"


def _database(url: str) -> dict:
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "postgres",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
    }


if os.environ.get("SHOP_DATABASE_URL"):
    DATABASES = {"default": _database(os.environ["SHOP_DATABASE_URL"])}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                             "NAME": os.environ.get("SHOP_SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))}}
