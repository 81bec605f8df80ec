"""`manage.py runfederation` as the supervisor starts it: default settings, no network, a clean exit on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from tests.interop.conftest import start_runfederation
from tests.servers import BASE_DIR, free_port


def test_starts_with_default_settings_and_exits_zero_on_sigterm(tmp_path_factory: pytest.TempPathFactory) -> None:
    var_dir = Path(tmp_path_factory.mktemp("runfederation-defaults"))
    port = free_port()  # the only setting given: the default 5269 may be taken by a running instance

    running = start_runfederation(var_dir, {}, port)
    running.process.send_signal(signal.SIGTERM)
    code = running.process.wait(20)

    assert code == 0, running.log()
    log = running.log()
    assert f"imweb.localhost listening on port {port}" in log
    assert "STARTTLS required" in log  # the default policy
    # With no IMWEB_TLS_CERT/KEY, a self-signed certificate for our domain is made under the state folder.
    pem = (var_dir / "federation" / "tls" / "imweb.localhost.pem").read_bytes()
    names = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "imweb.localhost" in names.value.get_values_for_type(x509.DNSName)


def test_a_taken_port_is_a_clear_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    var_dir = Path(tmp_path_factory.mktemp("runfederation-taken"))
    port = free_port()
    first = start_runfederation(var_dir, {"IMWEB_S2S_BIND": "127.0.0.1"}, port)
    try:
        second = subprocess.run(
            [sys.executable, "manage.py", "runfederation"],
            cwd=BASE_DIR,
            env=first.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        first.process.send_signal(signal.SIGTERM)
        first.process.wait(20)

    assert second.returncode == 1
    assert f"cannot listen for XMPP servers on port {port}" in second.stderr
