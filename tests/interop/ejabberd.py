"""A throwaway ejabberd 23.01 for the interop tests, the counterpart of harness.Prosody (docs/federation.md §4).

It keeps everything in its own folder (config, ejabberdctl.cfg, inetrc, logs, spool), owned by the `ejabberd`
user because ejabberdctl, run as root, always switches to that user. Its Erlang node needs no epmd
(ERL_DIST_PORT) and has a node name and cookie of its own, so neither the Debian package's instance nor
another test's is in the way. It finds s2s peers only through our loopback DNS server (an inetrc with that one
nameserver). `tls` is "required" (a self-signed certificate, `s2s_use_starttls: required`) or "off".
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from federation.tls import generate_self_signed
from tests.interop.harness import port_accepts
from tests.servers import free_port, wait_for

EJABBERDCTL = "/usr/sbin/ejabberdctl"
EJABBERD_USER = "ejabberd"


class Ejabberd:
    def __init__(self, directory: Path, *, domain: str, tls: str, dns_port: int, c2s_port: int, s2s_port: int) -> None:
        self.directory = directory
        self.domain = domain
        self.tls = tls
        self.dns_port = dns_port
        self.c2s_port = c2s_port
        self.s2s_port = s2s_port
        self.dist_port = free_port()  # the Erlang distribution port, which ejabberdctl's RPC uses too
        self.node = f"ejabberd_{self.dist_port}@localhost"
        self.config_path = directory / "ejabberd.yml"
        self.log_dir = directory / "logs"
        self.pid_path = directory / "ejabberd.pid"
        self.process: subprocess.Popen[bytes] | None = None

    def _ctl(self, *arguments: str) -> list[str]:
        directory = self.directory
        return [
            EJABBERDCTL, "--config-dir", str(directory), "--config", str(self.config_path),
            "--ctl-config", str(directory / "ejabberdctl.cfg"), "--logs", str(self.log_dir),
            "--spool", str(directory / "spool"), *arguments,
        ]  # fmt: skip

    def write_config(self) -> None:
        directory = self.directory
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (directory / "spool").mkdir(exist_ok=True)
        tls_lines = ""
        if self.tls == "required":
            cert_pem, key_pem = generate_self_signed(self.domain)
            pem = directory / f"{self.domain}.pem"
            pem.write_bytes(key_pem + cert_pem)  # ejabberd wants key and certificate in one file
            pem.chmod(0o600)
            tls_lines = f'certfiles: ["{pem}"]\n'
        (directory / "ejabberdctl.cfg").write_text(
            f"""ERLANG_NODE={self.node}
ERL_DIST_PORT={self.dist_port}
INET_DIST_INTERFACE=127.0.0.1
ERL_OPTIONS="-setcookie throwaway_{secrets.token_hex(12)} -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH={self.pid_path}
EJABBERD_BYPASS_WARNINGS=true
"""
        )
        # ejabberdctl exports ERL_INETRC=<config dir>/inetrc: Erlang's own resolver, asking only our DNS server.
        (directory / "inetrc").write_text(
            '{lookup, [file, dns]}.\n{hosts_file, ""}.\n{host, {127,0,0,1}, ["localhost"]}.\n'
            f'{{resolv_conf, ""}}.\n{{nameserver, {{127,0,0,1}}, {self.dns_port}}}.\n'
            "{timeout, 1000}.\n{retry, 1}.\n"
        )
        self.config_path.write_text(
            f"""# Throwaway ejabberd for imweb's interop tests; see tests/interop/ejabberd.py.
hosts: ["{self.domain}"]
loglevel: info
{tls_lines}listen:
  - {{port: {self.c2s_port}, ip: "127.0.0.1", module: ejabberd_c2s, starttls_required: false}}
  - {{port: {self.s2s_port}, ip: "127.0.0.1", module: ejabberd_s2s_in}}
s2s_use_starttls: {"required" if self.tls == "required" else "false"}
outgoing_s2s_families: [ipv4]
s2s_dns_timeout: 3
s2s_dns_retries: 1
outgoing_s2s_timeout: 10
s2s_max_retry_delay: 5
auth_method: internal
auth_password_format: plain
api_permissions: {{"console commands": {{from: [ejabberd_ctl], who: all, what: "*"}}}}
acl: {{local: {{user_regexp: ""}}}}
access_rules: {{local: {{allow: local}}, c2s: {{allow: all}}}}
shaper_rules: {{max_user_sessions: 10}}
modules: {{mod_s2s_dialback: {{}}, mod_roster: {{}}, mod_disco: {{}}, mod_ping: {{}}, mod_caps: {{}}}}
"""
        )
        self._give_to_ejabberd()

    def _give_to_ejabberd(self) -> None:
        """As root, ejabberdctl runs everything as the `ejabberd` user, which must own (and reach) the folder."""
        if os.geteuid() != 0:
            return
        user = pwd.getpwnam(EJABBERD_USER)
        for path in [self.directory, *self.directory.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        # pytest's temporary folders are private to root: let the ejabberd user through to this one.
        for parent in self.directory.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)

    def start(self) -> Ejabberd:
        self.write_config()
        with (self.directory / "stdout.log").open("wb") as stdout:
            self.process = subprocess.Popen(self._ctl("foreground"), stdout=stdout, stderr=subprocess.STDOUT)

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"ejabberd exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return port_accepts(self.c2s_port) and port_accepts(self.s2s_port)

        wait_for(listening, 60, f"ejabberd on ports {self.c2s_port} and {self.s2s_port}")
        return self

    def register(self, username: str, password: str) -> None:
        """Register a user through ejabberdctl (the node must be running)."""
        result = subprocess.run(
            self._ctl("register", username, self.domain, password), capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"ejabberdctl register failed ({result.returncode}): {result.stdout}{result.stderr}")

    def log(self) -> str:
        path = self.log_dir / "ejabberd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """`ejabberdctl stop`, then wait for our foreground process; by PID if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(self._ctl("stop"), capture_output=True, timeout=60)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            # The node runs as `ejabberd` under su: its beam process is the one in the pid file.
            if self.pid_path.exists():
                subprocess.run(["kill", "-TERM", self.pid_path.read_text().strip()], check=False)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    @staticmethod
    def installed() -> bool:
        return shutil.which(EJABBERDCTL) is not None
