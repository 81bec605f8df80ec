"""Fixtures for the scaled mode: a throwaway PostgreSQL cluster, a redis-server, and imweb's processes on them."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scaled.site import ScaledSite
from tests.servers import Postgres, RedisServer


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scaled_site(postgres: Postgres, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory):
    """Two Daphne processes, a Celery worker, one beat and the federation listener on one PostgreSQL + Redis.

    A one-second presence heartbeat, so the beat's sweep notices a dead web process within seconds."""
    site = ScaledSite(
        Path(tmp_path_factory.mktemp("scaled")),
        database_url=postgres.create_database("imweb"),
        redis_url=redis_server.url,
        env={"IMWEB_PRESENCE_HEARTBEAT_SECONDS": "1"},
    )
    try:
        site.start()
    except BaseException:
        site.stop()
        raise
    yield site
    codes = site.stop()
    # Every process stops cleanly on SIGTERM (the tests SIGKILL a web process on purpose).
    unclean = {name: code for name, code in codes.items() if code not in (0, -signal.SIGKILL)}
    assert not unclean, f"processes did not stop cleanly: {unclean}\n{site.logs()}"
