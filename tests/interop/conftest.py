"""Interop fixtures, started once per module and stopped by PID: a loopback DNS server, a throwaway Prosody,
our federation service (in-process, on an asyncio loop in a thread, or as the real `manage.py runfederation`),
the whole imweb service beside Prosody (`imweb_service`: web, worker, federation, as `make run` starts it),
and a slixmpp client on Prosody. Every port is a free one, so a running instance is never in the way.

Each TLS mode ("off", "required") gets its own Prosody and service, configured to match: Prosody's
`s2s_require_encryption` and our IMWEB_S2S_TLS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from federation.conf import FederationConfig
from tests.interop.harness import (
    ChatClient,
    ImwebService,
    LoopThread,
    Prosody,
    RunningService,
    port_accepts,
    start_service,
)
from tests.interop.minidns import MiniDNS
from tests.servers import BASE_DIR, Service, free_port, stop_process, wait_for

TLS_MODES = ["off", "required"]
IMWEB = "imweb.localhost"
PROSODY_DOMAIN = "prosody.localhost"
ALICE_PASSWORD = "alice's secret"


@pytest.fixture(scope="module", params=TLS_MODES)
def tls_mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture(scope="module")
def dns() -> Iterator[MiniDNS]:
    server = MiniDNS().start()
    server.set("localhost", "A", "127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prosody_installed() -> None:
    """Install Prosody (and lua-unbound, openssl) with the project's own script when it is missing."""
    if not Prosody.installed() or not Path("/usr/lib/x86_64-linux-gnu/lua/5.4/lunbound.so").exists():
        subprocess.run(["bash", str(BASE_DIR / "tests" / "install-system-deps.sh")], check=True, timeout=900)
    assert Prosody.installed(), "Prosody is not installed; run tests/install-system-deps.sh as root"


@pytest.fixture(scope="module")
def prosody_offline() -> bool:
    """Whether Prosody keeps messages for offline users (mod_offline); a module overrides this fixture."""
    return False


@pytest.fixture(scope="module")
def prosody(
    prosody_installed: None,
    tls_mode: str,
    dns: MiniDNS,
    tmp_path_factory: pytest.TempPathFactory,
    prosody_offline: bool,
) -> Iterator[Prosody]:
    server = Prosody(
        tmp_path_factory.mktemp(f"prosody-{tls_mode}"),
        domain=PROSODY_DOMAIN,
        tls=tls_mode,
        dns_port=dns.port,
        c2s_port=free_port(),
        s2s_port=free_port(),
        offline=prosody_offline,
    )
    dns.publish_xmpp_server(PROSODY_DOMAIN, server.s2s_port)
    server.write_config()
    server.register("alice", ALICE_PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def imweb(
    loop_thread: LoopThread, dns: MiniDNS, prosody: Prosody, tls_mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """Our service for imweb.localhost, in-process; Prosody finds it through DNS SRV, it finds Prosody statically."""
    config = FederationConfig(
        domain=IMWEB,
        dialback_secret="interop dialback secret",
        state_dir=tmp_path_factory.mktemp(f"imweb-{tls_mode}"),
        port=0,
        bind="127.0.0.1",
        tls=tls_mode,  # type: ignore[arg-type]
        peers={PROSODY_DOMAIN: ("127.0.0.1", prosody.s2s_port)},
        dns_server=("127.0.0.1", dns.port),  # never the system's: these tests stay on loopback
    )
    running = start_service(loop_thread, config)
    dns.publish_xmpp_server(IMWEB, running.service.port)
    yield running
    loop_thread.run(running.service.stop())


@pytest.fixture(scope="module")
def imweb_service(
    dns: MiniDNS, prosody: Prosody, tls_mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImwebService]:
    """The whole imweb for imweb.localhost (supervisor: Daphne, Celery, Valkey, runfederation) beside Prosody.

    Prosody finds our s2s port through the loopback DNS (SRV); we reach Prosody through the static route. The
    service keeps its own SQLite database and Valkey under its folder; `ImwebService.django()` runs code in a
    process configured exactly like the service's, to create users and call actions against that database.
    """
    s2s_port = free_port()
    env = {
        "IMWEB_DOMAIN": IMWEB,
        "IMWEB_S2S_PORT": str(s2s_port),
        "IMWEB_S2S_BIND": "127.0.0.1",
        "IMWEB_S2S_TLS": tls_mode,
        "IMWEB_S2S_PEERS": f"{PROSODY_DOMAIN}=127.0.0.1:{prosody.s2s_port}",
        "IMWEB_DNS_SERVER": f"127.0.0.1:{dns.port}",  # never the system's: these tests stay on loopback
        "IMWEB_DIALBACK_SECRET": "interop dialback secret",
    }
    dns.publish_xmpp_server(IMWEB, s2s_port)
    service = Service(tmp_path_factory.mktemp(f"imweb-service-{tls_mode}"), env=env).start()
    yield ImwebService(service, s2s_port)
    service.stop()


@pytest.fixture(scope="module")
def alice(loop_thread: LoopThread, prosody: Prosody) -> Iterator[ChatClient]:
    client = ChatClient(loop_thread, f"alice@{PROSODY_DOMAIN}/phone", ALICE_PASSWORD, prosody.c2s_port).connect()
    yield client
    client.disconnect()


# --- `manage.py runfederation` as a subprocess -----------------------------------------------------------------


@dataclass
class Subprocess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def start_runfederation(directory: Path, env: dict[str, str], port: int) -> Subprocess:
    """`manage.py runfederation` alone, on a migrated database of its own and the test session's Valkey (its
    stanza handler counts rate limits in the shared cache; the outbox sender listens there for wake-ups)."""
    full_env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    full_env |= {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "REDIS_URL": settings.REDIS_URL,
        "IMWEB_VAR_DIR": str(directory),
        "IMWEB_DOMAIN": IMWEB,
        "IMWEB_S2S_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    full_env |= env
    # The outbox sender reads its table from the start, as under the supervisor, which migrates first.
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=full_env, check=True,
        capture_output=True, timeout=120,
    )  # fmt: skip
    log_path = directory / "runfederation.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runfederation"],
            cwd=BASE_DIR,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = Subprocess(process, port, log_path, full_env)

    def listening() -> bool:
        if not running.alive():
            raise RuntimeError(f"runfederation exited with {process.returncode}:\n{running.log()}")
        return "listening on port" in running.log() and port_accepts(port)

    wait_for(listening, 60, f"manage.py runfederation on port {port}")
    return running


def stop_runfederation(running: Subprocess) -> int | None:
    stop_process(running.process, grace=15)
    return running.process.returncode
