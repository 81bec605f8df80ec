"""What each moderation action does to the person it is aimed at, seen from their side: their open tab and API
stream, their token, their sign-in, the other participant's screen; and the audit entry each one leaves."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.test import Client
from django.urls import reverse
from lxml import etree

from accounts import actions as accounts
from accounts.models import User
from accounts.tokens import issue_token
from chat import actions
from chat.errors import ChatError
from chat.models import Message
from federation import handlers
from federation.models import OutboxItem, RemoteDomain
from imweb.dashboard import moderation
from imweb.dashboard.models import AuditEntry
from tests.api.test_stream import open_stream, receive_type
from tests.chat.test_chat_socket import open_conversation
from tests.chat.test_socket import open_socket, receive_until, session_cookie, socket_for
from tests.people import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

# "Within a second" (the issue's words), with room for a loaded machine: the close must come from the push.
CLOSE_WITHIN_SECONDS = 3


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


async def closed_with(socket, code: int) -> None:
    """The server closes the socket with `code` soon (frames before the close are skipped)."""

    async def wait() -> None:
        while True:
            output = await socket.output_queue.get()
            if output["type"] == "websocket.close":
                assert output.get("code") == code, output
                return

    await asyncio.wait_for(wait(), CLOSE_WITHIN_SECONDS)


def test_a_suspended_persons_tab_and_stream_close_at_once_and_nothing_of_theirs_works_after(staff, alice, operator):
    cookie = session_cookie(alice)
    _, token = issue_token(alice, "bot")

    async def scenario() -> None:
        tab = await open_socket(cookie)
        api, _ = await open_stream(token)
        response = await database_sync_to_async(staff.post)(
            reverse("dashboard:person_suspend", args=["alice"]), {"reason": "sending spam to strangers"}
        )
        assert response.status_code == 302
        await closed_with(tab, 4403)
        assert (await receive_type(api, "error"))["code"] == "account_closed"
        await closed_with(api, 4403)
        # A new tab is refused: the session no longer signs anyone in.
        connected, code = await socket_for(cookie).connect()
        assert not connected and code == 4401

    run(scenario)
    browser = Client()
    browser.cookies.load(cookie.decode())
    assert browser.get(reverse("profile")).status_code == 302  # to the sign-in page
    assert Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401

    # Signing in with the right password tells them why they cannot; a wrong one says nothing of it.
    refused = Client().post(reverse("account_login"), {"login": "alice", "password": PASSWORD})
    assert refused.status_code == 403
    assert "sending spam to strangers" in refused.content.decode()
    wrong = Client().post(reverse("account_login"), {"login": "alice", "password": "not it"})
    assert "sending spam" not in wrong.content.decode()

    (entry,) = entries("person.suspend")
    assert entry.actor == operator and entry.target == alice.jid and "sending spam" in entry.details
    assert entries("token.revoke")

    # Unsuspended, they sign in again (a fresh session; the old one and the token stay gone).
    staff.post(reverse("dashboard:person_unsuspend", args=["alice"]))
    assert Client().post(reverse("account_login"), {"login": "alice", "password": PASSWORD}).status_code == 302
    assert entries("person.unsuspend")


def test_a_suspension_needs_a_reason_and_an_operator_cannot_suspend_themselves(staff, alice, operator):
    page = staff.post(reverse("dashboard:person_suspend", args=["alice"]), {"reason": "  "}, follow=True)
    assert "Say why" in page.content.decode()
    page = staff.post(reverse("dashboard:person_suspend", args=["root"]), {"reason": "oops"}, follow=True)
    assert "cannot suspend yourself" in page.content.decode()
    assert User.objects.filter(is_active=False).count() == 0
    assert entries("person.suspend") == []


def test_a_removed_message_turns_into_a_tombstone_on_the_other_persons_open_screen(staff, alice, bob):
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    message = actions.send_message(alice, to=bob.jid, body="buy cheap pills", client_id=uuid.uuid4())
    actions.react(bob, message.conversation_id, message.seq, "👍")
    cookie = session_cookie(bob)

    async def scenario() -> None:
        screen = await open_conversation(cookie, message.conversation_id, 0)
        await receive_until(screen, "buy cheap pills")
        response = await database_sync_to_async(staff.post)(
            reverse("dashboard:message_remove", args=[message.conversation_id, message.seq]), {"note": "spam"}
        )
        assert response.status_code == 302
        frame = await receive_until(screen, "message removed by an operator")
        assert "buy cheap pills" not in frame
        await screen.disconnect()

    run(scenario)
    stored = Message.objects.get(pk=message.pk)
    assert stored.body == "" and stored.removed_by_operator and stored.reactions.count() == 0
    # The sender's history and the API say so too.
    client = Client()
    client.force_login(alice)
    history = client.get(reverse("conversation", args=[message.conversation_id])).content.decode()
    assert "message removed by an operator" in history and "buy cheap pills" not in history
    (entry,) = entries("message.remove")
    assert "buy cheap pills" in entry.details and alice.jid in entry.details


def test_a_forced_password_reset_signs_the_person_out_everywhere_and_mails_a_link(staff, alice):
    cookie = session_cookie(alice)

    async def scenario() -> None:
        tab = await open_socket(cookie)
        await database_sync_to_async(staff.post)(reverse("dashboard:person_password_reset", args=["alice"]))
        await closed_with(tab, 4401)

    run(scenario)
    alice.refresh_from_db()
    assert not alice.has_usable_password()
    assert Client().post(reverse("account_login"), {"login": "alice", "password": PASSWORD}).status_code != 302
    (sent,) = [m for m in mail.outbox if alice.email in m.to]
    assert "/accounts/password/reset/key/" in sent.body
    assert entries("person.password_reset")


def test_deleting_an_account_from_the_dashboard_removes_it_and_needs_the_username_typed(staff, alice, bob):
    staff.post(reverse("dashboard:person_delete", args=["alice"]), {"confirm": "bob"})
    assert User.objects.filter(username="alice").exists()
    staff.post(reverse("dashboard:person_delete", args=["alice"]), {"confirm": "alice"})
    assert not User.objects.filter(username="alice").exists()
    (entry,) = entries("person.delete")
    assert entry.target == "alice@imweb.localhost"


def test_a_warning_is_mailed_to_the_person(staff, alice):
    staff.post(reverse("dashboard:person_warn", args=["alice"]), {"text": "Please stop sending links to strangers."})
    (sent,) = [m for m in mail.outbox if alice.email in m.to]
    assert "Please stop sending links to strangers." in sent.body
    assert entries("person.warn")[0].details == "Please stop sending links to strangers."


def stanza(text: str) -> etree._Element:
    return etree.fromstring(text)


def test_a_remote_address_blocked_for_everyone_reaches_nobody_and_gets_nothing(staff, alice, bob):
    actions.send_message(alice, to="spammer@elsewhere.example", body="who are you?", client_id=uuid.uuid4())
    queued = OutboxItem.objects.get(recipient="spammer@elsewhere.example", kind=OutboxItem.Kind.MESSAGE)
    response = staff.post(reverse("dashboard:blocked"), {"jid": "Spammer@elsewhere.example", "reason": "spam run"})
    assert response.status_code == 302

    # What was queued for it fails with the reason, and nothing new is sent to it.
    queued.refresh_from_db()
    assert queued.state == OutboxItem.State.FAILED and "blocked" in queued.error
    with pytest.raises(ChatError, match="blocked by this server's operators"):
        actions.send_message(bob, to="spammer@elsewhere.example", body="hi", client_id=uuid.uuid4())
    # What it sends is refused like a message to nobody; its server's other people still get through.
    handlers.process(
        "elsewhere.example",
        stanza(
            "<message xmlns='jabber:server' from='spammer@elsewhere.example/x' to='bob@imweb.localhost'"
            " type='chat' id='s1'><body>buy now</body></message>"
        ),
    )
    handlers.process(
        "elsewhere.example",
        stanza(
            "<message xmlns='jabber:server' from='friend@elsewhere.example/x' to='bob@imweb.localhost'"
            " type='chat' id='f1'><body>hello bob</body></message>"
        ),
    )
    bodies = set(Message.objects.filter(conversation__participants__user=bob).values_list("body", flat=True))
    assert "hello bob" in bodies and "buy now" not in bodies
    refusal = OutboxItem.objects.filter(recipient="spammer@elsewhere.example").exclude(pk=queued.pk)
    assert all(item.state == OutboxItem.State.FAILED for item in refusal)  # even its error reply is not sent

    page = staff.get(reverse("dashboard:blocked")).content.decode()
    assert "spammer@elsewhere.example" in page and "spam run" in page
    assert entries("federation.block_address")[0].target == "spammer@elsewhere.example"

    staff.post(reverse("dashboard:blocked"), {"unblock": "spammer@elsewhere.example"})
    actions.send_message(bob, to="spammer@elsewhere.example", body="hi again", client_id=uuid.uuid4())
    assert entries("federation.unblock_address")


def test_a_local_address_cannot_be_blocked_as_a_remote_one(staff, alice):
    page = staff.post(reverse("dashboard:blocked"), {"jid": alice.jid}, follow=True).content.decode()
    assert "suspend it instead" in page


def test_people_search_and_a_persons_page(staff, alice, bob, make_user):
    make_user("carol", display_name="Carol Singer")
    page = staff.get(reverse("dashboard:people"), {"q": "singer"}).content.decode()
    assert "carol@imweb.localhost" in page and "alice@imweb.localhost" not in page
    Client().post(reverse("account_login"), {"login": "alice", "password": PASSWORD}, REMOTE_ADDR="192.0.2.7")
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    actions.create_room(alice, "Climbing", members=[bob.jid])
    page = staff.get(reverse("dashboard:person", args=["alice"])).content.decode()
    assert "192.0.2.7" in page  # recent sign-ins
    assert "bob@imweb.localhost" in page  # contacts
    assert "Climbing" in page  # rooms


def test_the_server_block_denies_the_domain_and_tells_the_federation_process_to_close_its_streams(
    staff, alice, monkeypatch
):
    # The federation process closes a domain's streams when it hears this event:
    # tests/federation/test_sender.py::test_a_policy_event_closes_the_denied_domains_streams.
    told: list[dict] = []
    monkeypatch.setattr("federation.policy.publish", told.append)
    actions.send_message(alice, to="someone@elsewhere.example", body="hello?", client_id=uuid.uuid4())
    request = staff.get(reverse("dashboard:index")).wsgi_request
    remote = moderation.block_server("Elsewhere.Example", request=request)
    assert remote.policy == RemoteDomain.Policy.DENY
    assert told == [{"type": "federation.policy", "domain": "elsewhere.example", "policy": "deny"}]
    assert OutboxItem.objects.get(recipient="someone@elsewhere.example").state == OutboxItem.State.FAILED
    assert entries("federation.deny")[0].target == "elsewhere.example"


def test_unticking_active_in_the_raw_admin_also_closes_the_persons_open_tab(alice):
    cookie = session_cookie(alice)

    async def scenario() -> None:
        tab = await open_socket(cookie)

        def untick() -> None:
            person = User.objects.get(pk=alice.pk)
            person.is_active = False
            person.save()

        await database_sync_to_async(untick)()
        await closed_with(tab, 4403)

    run(scenario)


def test_a_message_an_operator_removes_takes_its_files_with_it(staff, alice, bob):
    from tests.chat.test_attachments_send import upload

    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    attachment = upload(alice, "spam.txt", b"buy now\n")
    storage, name = attachment.file.storage, attachment.file.name
    message = actions.send_message(alice, to=bob.jid, body="", client_id=uuid.uuid4(), attachments=[attachment.token])
    response = staff.post(reverse("dashboard:message_remove", args=[message.conversation_id, message.seq]))
    assert response.status_code == 302
    assert not storage.exists(name)
    client = Client()
    client.force_login(bob)
    assert client.get(attachment.url).status_code == 404
    (entry,) = entries("message.remove")
    assert "spam.txt" in entry.details
