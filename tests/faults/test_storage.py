"""A full disk under the database: a send is refused with a precise error that says when to try again (and the
browser tries again by itself), /healthz says 503, nothing half-stored appears, and when space returns the same
send (same client id) is stored once and everything works again."""

from __future__ import annotations

import contextlib
import errno
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.chat import Conversation, _auth
from tests.faults.test_processes import ENV, health
from tests.servers import Service, wait_for

pytestmark = pytest.mark.e2e

DISK_MB = 48
BODY = "x" * 8000


@contextlib.contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    """A tmpfs of DISK_MB mounted at `where` for the test (the tests run as root, as `make test` does)."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk; returns the file to delete to give it back."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb") as handle:
        while True:
            try:
                handle.write(chunk)
                handle.flush()
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                break
    return filler


def test_a_full_disk_refuses_sends_clearly_and_everything_recovers_when_space_returns(tmp_path_factory):
    with small_disk(Path(tmp_path_factory.mktemp("disk"))) as disk:
        env = {**ENV, "DATABASE_URL": f"sqlite:///{disk}/imweb.sqlite3"}
        service = Service(Path(tmp_path_factory.mktemp("svc")), env=env).start()
        try:
            conversation = Conversation.start(service, prefix="d")
            http = httpx.Client(base_url=service.url + "/api/v1", timeout=30, headers=_auth(conversation.ada))
            filler = fill(disk)
            refused, client_id = None, ""
            for _ in range(500):  # the database's write-ahead log may hold a few more before it must grow
                client_id = str(uuid.uuid4())
                answer = http.post("/messages", json={"to": conversation.id, "body": BODY, "client_id": client_id})
                if answer.status_code != 201:
                    refused = answer
                    break
            assert refused is not None, "the full disk never showed"
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "storage_unavailable"
            assert (
                int(refused.headers["Retry-After"]) >= 1
                and "cannot store messages" in refused.json()["error"]["message"]
            )
            wait_for(lambda: health(service).get("checks", {}).get("database", "ok") != "ok", 20, "/healthz to notice")
            assert health(service)["status"] == "error"

            filler.unlink()  # space returns
            wait_for(lambda: health(service).get("status") == "ok", 30, "/healthz to recover")
            again = http.post("/messages", json={"to": conversation.id, "body": BODY, "client_id": client_id})
            assert again.status_code == 201
            stored = http.get(f"/conversations/{conversation.id}/messages", params={"after_seq": 0, "limit": 500})
            ids = [m["client_id"] for m in stored.json()["messages"]]
            assert ids.count(client_id) == 1 and len(ids) == len(set(ids))
            seqs = [m["seq"] for m in stored.json()["messages"]]
            assert seqs == list(range(1, len(seqs) + 1))  # nothing half-stored: no gap, no repeat
        finally:
            code = service.stop()
            assert code == 0, service.log()[-3000:]
