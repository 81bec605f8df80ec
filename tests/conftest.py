"""Fixtures shared by every test: a real Valkey for the cache and channel layer, and a clean cache per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

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


# Property-based tests (tests/property/): a brief run in `make test`, a long one with `make fuzz`.

hypothesis_settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True)
hypothesis_settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
