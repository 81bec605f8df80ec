"""Durable outbound against a real Prosody: messages sent while Prosody is down wait in the outbox with the
failure recorded, and once it is back all of them arrive, in order, once, and their hops say so.

The whole imweb service runs as `make run` starts it; messages are sent with `chat.actions.send_message` in a
process sharing its database and Valkey (ImwebService.django), so the running federation process is woken
exactly as by its own web process. Prosody keeps messages for offline users here (mod_offline), so nothing
depends on the test client logging in before our retry reaches Prosody.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.interop.conftest import ALICE_PASSWORD, PROSODY_DOMAIN
from tests.interop.harness import ChatClient, ImwebService, LoopThread, Prosody
from tests.servers import wait_for

COUNT = 50
ALICE = f"alice@{PROSODY_DOMAIN}"

SETUP = """
from accounts.models import User
User.objects.create_user("bob", "bob@example.org", "correct horse battery staple")
"""

SEND = f"""
import uuid
from django.conf import settings
from accounts.models import User
from chat.actions import send_message
settings.IMWEB_MESSAGE_RATE_LIMITS = ((1000, 1),)  # one person sending {COUNT} in a burst, on purpose
bob = User.objects.get(username="bob")
for n in range({COUNT}):
    send_message(bob, to="{ALICE}", body=f"durable {{n:02d}}", client_id=uuid.uuid4())
"""

STATE = """
import json
from federation.models import OutboxItem, RemoteDomain
from federation.outbox import hops
from chat.models import Message
remote = RemoteDomain.objects.filter(domain=DOMAIN).first()
items = list(OutboxItem.objects.filter(kind="message").order_by("id").values("state", "attempts", "error"))
from chat import fragments, queries
from chat.access import membership
mine = Message.objects.filter(sender__username="bob").order_by("seq")
found = hops(m.pk for m in mine)
hops = [h.text for m in mine for h in found[m.pk]]
bob = mine[0].sender if mine else None
screen = ""
if bob:
    row = membership(bob, mine[0].conversation_id)
    screen = fragments.statuses(row.conversation_id, queries.decorate(row.conversation, list(mine), viewer_jid=bob.jid))
print(json.dumps({
    "items": items,
    "hops": hops,
    "screen": screen,
    "failures": remote.failures if remote else 0,
    "last_error": remote.last_error if remote else "",
}))
""".replace("DOMAIN", repr(PROSODY_DOMAIN))


@pytest.fixture(scope="module", params=["required"])
def tls_mode(request: pytest.FixtureRequest) -> str:
    """Once, with STARTTLS required (Prosody's default and ours)."""
    return request.param


@pytest.fixture(scope="module")
def prosody_offline() -> bool:
    return True


@pytest.fixture
def alice_later(loop_thread: LoopThread, prosody: Prosody) -> Iterator[list[ChatClient]]:
    """Alice's client, connected by the test once Prosody is back (holder for teardown)."""
    clients: list[ChatClient] = []
    yield clients
    for client in clients:
        client.disconnect()


def state(imweb: ImwebService) -> dict:
    return json.loads(imweb.django(STATE).strip().splitlines()[-1])  # the shell prints a banner first


def test_messages_sent_while_prosody_is_down_all_arrive_in_order_once(
    imweb_service: ImwebService, prosody: Prosody, loop_thread: LoopThread, alice_later: list[ChatClient]
) -> None:
    imweb_service.django(SETUP)
    prosody.stop()

    imweb_service.django(SEND)

    def all_waiting_with_the_failure_recorded() -> dict | None:
        now = state(imweb_service)
        items = now["items"]
        done = len(items) == COUNT and all(i["state"] == "queued" and i["attempts"] >= 1 for i in items)
        return now if done and now["failures"] >= 1 else None

    waiting = wait_for(all_waiting_with_the_failure_recorded, 90, "50 queued rows with a failed attempt", 1.0)
    assert isinstance(waiting, dict)
    assert f"could not connect to {PROSODY_DOMAIN}" in waiting["last_error"]
    assert all(PROSODY_DOMAIN in item["error"] for item in waiting["items"])  # each row says why it waits
    assert waiting["hops"] == ["queued"] * COUNT
    assert waiting["screen"].count("· queued</span>") == COUNT  # what the sender's screen shows meanwhile

    prosody.start()
    client = ChatClient(loop_thread, f"{ALICE}/phone", ALICE_PASSWORD, prosody.c2s_port, receipts=True)
    alice_later.append(client.connect())
    # The operator's "retry now" (the admin action), rather than waiting out a backoff of up to a minute.
    imweb_service.django(f"from federation.policy import retry_now; retry_now('{PROSODY_DOMAIN}')")

    expected = [f"durable {n:02d}" for n in range(COUNT)]

    def bodies() -> list[str]:
        return [str(m["body"]) for m in list(client.messages) if m["body"]]

    wait_for(lambda: len(bodies()) >= COUNT, 90, f"{COUNT} messages at the Prosody client", 0.2)
    assert bodies() == expected  # in order, none twice

    # Every copy ends delivered: the Prosody client answers each receipt request (XEP-0184), and the burst of
    # 50 receipts counts against the server's budget, not the person's.
    def settled() -> dict | None:
        now = state(imweb_service)
        # Rows and hops are read one after the other, so wait until both say so (receipts arrive meanwhile).
        delivered = all(item["state"] == "delivered" for item in now["items"]) and len(now["items"]) == COUNT
        return now if delivered and now["hops"] == ["delivered"] * COUNT else None

    final = wait_for(settled, 60, "every hop delivered", 1.0)
    assert isinstance(final, dict)
    assert final["screen"].count("· delivered</span>") == COUNT
    assert final["failures"] == 0  # the success reset the domain's backoff
    assert bodies() == expected  # still no duplicate after everything settled
