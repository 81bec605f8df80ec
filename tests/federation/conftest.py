"""Fixtures for the federation tests that run two in-process s2s services against each other on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from federation.conf import FederationConfig
from federation.service import FederationService
from tests.interop.harness import LoopThread, Received, RunningService
from tests.servers import free_port


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


def start(loop: LoopThread, domain: str, tmp_path: Path, peers: dict[str, tuple[str, int]], port: int = 0):
    """A started s2s service for `domain` with static routes to `peers`; what it receives lands in `.received`."""
    config = FederationConfig(
        domain=domain, dialback_secret=f"{domain} secret", state_dir=tmp_path / domain, port=port,
        bind="127.0.0.1", tls="optional", peers=peers,
    )  # fmt: skip
    received = Received()
    service = FederationService(config, on_stanza=received)
    loop.run(service.start())
    return RunningService(service, received, loop)


def running_pair(
    loop: LoopThread, tmp_path: Path, first: str, second: str
) -> Iterator[tuple[RunningService, RunningService]]:
    """Two services that route to each other (for a fixture to `yield from`), stopped afterwards."""
    port_first, port_second = free_port(), free_port()
    a = start(loop, first, tmp_path, {second: ("127.0.0.1", port_second)}, port_first)
    b = start(loop, second, tmp_path, {first: ("127.0.0.1", port_first)}, port_second)
    yield a, b
    loop.run(a.service.stop())
    loop.run(b.service.stop())
