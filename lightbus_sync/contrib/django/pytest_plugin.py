"""pytest fixtures for a Django project (with pytest-django): in the root ``conftest.py``,
``pytest_plugins = ["lightbus_sync.contrib.django.pytest_plugin"]`` (or import
``lightbus_bus`` from here into any ``conftest.py``) makes the project's bus the bus under
test, so the lightbus_sync plugin's fixtures work on it: ``lightbus_in_memory`` (the bus
in memory for the test) and ``lightbus_recorder`` (its fires recorded)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def lightbus_bus() -> Any:
    """The project's bus (``lightbus_sync.contrib.django.bus``)."""
    from . import get_bus

    return get_bus()
