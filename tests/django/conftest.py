"""Django is configured here, when this directory is collected: the example shop's apps
(examples/django_project) plus ``djtest``, on SQLite (``default``, in a file; ``memory``,
in memory) and a real PostgreSQL (``pg``; ``$LIGHTBUS_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``), whose test database pytest-django
creates under a unique name and drops. The project's bus points at a redis-server
started for this directory's tests (the bus is created when Django is set up, before any
fixture runs) and flushed before each test."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
import redis

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
REPO_ROOT = TESTS.parent
EXAMPLE_DIR = REPO_ROOT / "examples" / "django_project"
for path in (str(TESTS), str(EXAMPLE_DIR), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from lightbus_sync.contrib.django.pytest_plugin import lightbus_bus  # noqa: E402,F401 (the project's bus)
from lightbus_sync.testing.redis_server import RedisServer  # noqa: E402

POSTGRES_URL = os.environ.get("LIGHTBUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"


def postgres_settings(url: str, test_name: str) -> dict:
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/") or "postgres",
        "USER": parts.username or "postgres",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        "TEST": {"NAME": test_name},
    }


REDIS = RedisServer()
REDIS.start()
#: SQLite test databases in files: in-memory ones share a cache whose table locks do not
#: wait, which the runner's threads would trip over.
SQLITE_DIR = Path(tempfile.mkdtemp(prefix="lightbus-djtest-"))
atexit.register(shutil.rmtree, SQLITE_DIR, True)  # after pytest-django has dropped its test databases

if not settings.configured:
    settings.configure(
        SECRET_KEY="tests",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.admin",
                        "lightbus_sync.contrib.django", "orders", "shipping", "djtest"],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(SQLITE_DIR / "default.sqlite3"),
                        "TEST": {"NAME": str(SQLITE_DIR / "test_default.sqlite3")}},
            "memory": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            "pg": postgres_settings(POSTGRES_URL, f"lightbus_djtest_{RUN_ID}"),
        },
        LIGHTBUS_SYNC={
            "service_name": "djtests",
            "process_name": "djtests-1",
            "apis": {"default": {"event_transport": {"redis": {
                "url": REDIS.url, "acknowledgement_timeout": 2, "reclaim_interval": 0.2, "block_ms": 100,
            }}}},
            "bus": {"schema": {"transport": {"redis": {"url": REDIS.url}}}},
        },
        ROOT_URLCONF="shop.urls",
        ALLOWED_HOSTS=["testserver"],
    )
    django.setup()


def pytest_sessionfinish(session: pytest.Session) -> None:
    from lightbus_sync.contrib.django import get_bus

    get_bus().close()  # its schema thread, before its Redis goes
    REDIS.cleanup()


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault table of test_django_faults.py, when its scenarios ran."""
    module = sys.modules.get("test_django_faults")
    table = module.fault_table() if module is not None else ""
    if table:
        terminalreporter.write_sep("=", "Django fault scenarios")
        terminalreporter.write_line(table)


@pytest.fixture(autouse=True)
def django_redis() -> Iterator[RedisServer]:
    """The project bus's Redis, flushed for this test."""
    if not REDIS.is_running():
        REDIS.start()
    REDIS.flushall()
    yield REDIS


@pytest.fixture
def redis_client(django_redis: RedisServer) -> Iterator["redis.Redis"]:
    """A client (bytes replies) of the project bus's Redis, flushed for this test."""
    client = django_redis.client()
    yield client
    client.close()


@pytest.fixture
def project_bus():
    from lightbus_sync.contrib.django import bus

    return bus
