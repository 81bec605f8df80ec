"""Fixtures shared by every test: a real Valkey for the cache and channel layer, and a clean cache per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.servers import Valkey

pytest_plugins = ["tests.people"]

OUTPUT_DIR = Path(os.environ.get("IMWEB_TEST_OUTPUT", Path(__file__).resolve().parent.parent / "test-output"))


@pytest.fixture(scope="session", autouse=True)
def valkey() -> Iterator[Valkey | None]:
    """The embedded Valkey the settings point at, unless REDIS_URL names a server that is already running."""
    if os.environ.get("REDIS_URL"):
        yield None
        return
    server = Valkey(Path(settings.EMBEDDED_REDIS_SOCKET)).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_cache(valkey: Valkey | None) -> None:
    """Rate-limit counters live in the shared cache: every test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR
