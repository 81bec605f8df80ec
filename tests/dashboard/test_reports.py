"""Reports: people report a message they received, a contact request or a contact, from their own pages; the
operators handle them in the dashboard's queue. Each check is seen from the reporter's side (the form answers,
the report filed or not), each queue action by its effect on the reported person or message, and each leaves
its audit entry."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import actions as accounts
from accounts.errors import NoSuchUser
from accounts.models import BlockedJid, User
from chat import actions
from chat.models import Message
from federation.models import BlockedAddress, RemoteDomain
from imweb.dashboard import reports
from imweb.dashboard.models import AuditEntry, Report
from imweb.dashboard.reports import ReportError, file_report

pytestmark = pytest.mark.django_db

MALLORY = "mallory@evil.example"
THANKS = "Thanks: the operators will look at it."


@pytest.fixture(autouse=True)
def _no_send_limits(settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()


def befriend(a: User, b: User) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def send(user: User, to, body: str = "hello") -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


def remote_message(recipient: User, body: str = "buy cheap watches", sender: str = MALLORY) -> Message:
    return actions.receive_remote_message(sender, recipient, body, uuid.uuid4())


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def report_url(message: Message) -> str:
    return reverse("report:message", args=[message.conversation_id, message.seq])


@pytest.fixture
def friends(alice, bob):
    befriend(alice, bob)
    return alice, bob


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


# --- Filing ------------------------------------------------------------------------------------------------


def test_bob_reports_a_message_alice_sent_him_from_its_page(friends):
    alice, bob = friends
    message = send(alice, bob.jid, "you will regret this")
    client = signed_in(bob)

    page = client.get(report_url(message))
    assert page.status_code == 200
    text = page.content.decode()
    assert "you will regret this" in text and "Also block alice@imweb.localhost" in text
    assert all(f'value="{value}"' in text for value in ("spam", "abuse", "other"))

    response = client.post(report_url(message), {"reason": "abuse", "note": "threats", "also_block": ""})
    assert response.status_code == 302
    assert response["Location"] == reverse("conversation", args=[message.conversation_id])
    assert THANKS in client.get(response["Location"]).content.decode()

    report = Report.objects.get()
    assert (report.kind, report.reason, report.note, report.reporter, report.reported_jid) == (
        "message",
        "abuse",
        "threats",
        bob,
        alice.jid,
    )
    assert (report.message, report.quoted_body, report.state) == (message, "you will regret this", "open")
    [entry] = entries("report.file")
    assert (entry.actor, entry.target) == (bob, alice.jid)
    assert f"Report {report.pk}" in entry.details and entry.ip == "127.0.0.1"
    # Not blocked: the box was not ticked.
    assert not BlockedJid.objects.filter(owner=bob).exists()


def test_the_report_keeps_what_bob_received_after_alice_edits_or_deletes_it(friends, staff):
    alice, bob = friends
    message = send(alice, bob.jid, "the original insult")
    file_report(bob, kind="message", reason="abuse", conversation_id=message.conversation_id, seq=message.seq)
    actions.edit_message(alice, message.conversation_id, message.seq, "nothing to see")
    actions.delete_message(alice, message.conversation_id, message.seq)
    assert Report.objects.get().quoted_body == "the original insult"
    queue = staff.get(reverse("dashboard:reports")).content.decode()
    assert "the original insult" in queue and "since deleted by its sender" in queue


def test_also_block_blocks_the_sender_for_the_reporter_like_the_block_button(friends):
    alice, bob = friends
    message = send(alice, bob.jid, "spam spam spam")
    response = signed_in(bob).post(report_url(message), {"reason": "spam", "also_block": "1"})
    assert response.status_code == 302
    assert BlockedJid.objects.filter(owner=bob, jid=alice.jid).exists()
    # As with Block: bob's account looks like nobody to alice now.
    with pytest.raises(NoSuchUser):
        send(alice, bob.jid, "are you there?")
    assert "and blocked them" in entries("report.file")[0].details


def test_also_block_when_already_blocked_files_the_report_all_the_same(friends):
    alice, bob = friends
    message = send(alice, bob.jid, "spam")
    accounts.block_jid(bob, alice.jid)
    report = file_report(
        bob, kind="message", reason="spam", conversation_id=message.conversation_id, seq=message.seq, also_block=True
    )
    assert report.pk and BlockedJid.objects.filter(owner=bob, jid=alice.jid).count() == 1


def test_own_messages_and_tombstones_cannot_be_reported(friends):
    alice, bob = friends
    mine = send(bob, alice.jid, "my own words")
    gone = send(alice, bob.jid, "deleted at once")
    actions.delete_message(alice, gone.conversation_id, gone.seq)
    client = signed_in(bob)
    own = client.post(report_url(mine), {"reason": "spam"})
    assert own.status_code == 404 and "That is your own message" in own.content.decode()
    tombstone = client.post(report_url(gone), {"reason": "spam"})
    assert tombstone.status_code == 404 and "That message was deleted" in tombstone.content.decode()
    assert not Report.objects.exists() and not entries("report.file")


def test_a_form_mistake_is_explained_on_the_form_and_nothing_is_filed(friends):
    alice, bob = friends
    message = send(alice, bob.jid, "hello there")
    client = signed_in(bob)
    no_reason = client.post(report_url(message), {"note": "kept", "also_block": "1"})
    assert no_reason.status_code == 422
    text = no_reason.content.decode()
    assert "Choose a reason" in text and ">kept</textarea>" in text and "hello there" in text
    too_long = client.post(report_url(message), {"reason": "other", "note": "x" * 501})
    assert too_long.status_code == 422 and "at most 500 characters" in too_long.content.decode()
    assert not Report.objects.exists()
    assert not BlockedJid.objects.filter(owner=bob).exists()


def test_the_quoted_message_is_escaped_on_the_form_and_in_the_queue(friends, staff):
    alice, bob = friends
    message = send(alice, bob.jid, '<img src=x onerror="alert(1)">')
    form = signed_in(bob).get(report_url(message)).content.decode()
    assert "<img src=x" not in form and "&lt;img src=x" in form
    file_report(bob, kind="message", reason="spam", note="<b>look</b>", conversation_id=message.conversation_id, seq=1)
    queue = staff.get(reverse("dashboard:reports")).content.decode()
    assert "<img src=x" not in queue and "&lt;img src=x" in queue
    assert "<b>look</b>" not in queue and "&lt;b&gt;look&lt;/b&gt;" in queue


def test_the_same_open_report_twice_is_refused(friends):
    alice, bob = friends
    message = send(alice, bob.jid, "hello")
    where = {"conversation_id": message.conversation_id, "seq": message.seq}
    file_report(bob, kind="message", reason="spam", **where)
    with pytest.raises(ReportError, match="already reported"):
        file_report(bob, kind="message", reason="abuse", **where)
    assert Report.objects.count() == 1


def test_at_most_twenty_reports_an_hour_and_a_refused_one_files_nothing(friends):
    alice, bob = friends
    sent = [send(alice, bob.jid, f"spam {n}") for n in range(21)]
    for message in sent[:20]:
        file_report(bob, kind="message", reason="spam", conversation_id=message.conversation_id, seq=message.seq)
    response = signed_in(bob).post(report_url(sent[20]), {"reason": "spam", "also_block": "1"})
    assert response.status_code == 422
    assert "many reports in a short time" in response.content.decode()
    assert Report.objects.count() == 20 and len(entries("report.file")) == 20
    assert not BlockedJid.objects.filter(owner=bob).exists()


def test_refused_reports_take_no_slot_of_the_twenty(friends):
    alice, bob = friends
    sent = [send(alice, bob.jid, f"spam {n}") for n in range(20)]
    for _ in range(5):
        with pytest.raises(ReportError):
            file_report(bob, kind="message", reason="nonsense", conversation_id=sent[0].conversation_id, seq=1)
    for message in sent:
        file_report(bob, kind="message", reason="spam", conversation_id=message.conversation_id, seq=message.seq)
    assert Report.objects.count() == 20


def test_a_message_in_a_room_bob_left_is_reportable_only_from_before_he_left(alice, bob):
    befriend(alice, bob)
    room = actions.create_room(alice, "Lobby", members=[bob.jid])
    before = send(alice, room.pk, "said while bob was here")
    actions.leave(bob, room.pk)
    after = send(alice, room.pk, "said after bob left")
    with pytest.raises(ReportError, match=re.escape(reports.NO_SUCH_MESSAGE)):
        file_report(bob, kind="message", reason="abuse", conversation_id=room.pk, seq=after.seq)
    response = signed_in(bob).post(report_url(before), {"reason": "abuse"})
    # He is not in the room any more: after reporting he goes home, not to a room he cannot open.
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert Report.objects.get().quoted_body == "said while bob was here"


def test_a_stranger_s_first_message_in_requests_can_be_reported_and_so_can_the_request(alice, bob):
    first = send(alice, bob.jid, "hi stranger, click my link")
    # Alice is not bob's contact: the conversation waits in bob's Requests (plain, no tools but Report).
    page = signed_in(bob).get(reverse("conversation", args=[first.conversation_id])).content.decode()
    assert report_url(first) in page
    file_report(bob, kind="message", reason="spam", conversation_id=first.conversation_id, seq=first.seq)
    request = file_report(bob, kind="request", reason="spam", jid=alice.jid)
    assert (request.reported_jid, request.message) == (alice.jid, None)


def test_a_contact_request_is_reported_with_its_message_and_blocking_removes_it_from_requests(alice, bob):
    accounts.request_subscription(alice, bob.jid, message="add me for free crypto")
    client = signed_in(bob)
    home = client.get(reverse("home")).content.decode()
    url = reverse("report:request") + "?jid=alice%40imweb.localhost"
    assert f'href="{url}"' in home and 'aria-label="Report alice@imweb.localhost"' in home
    form = client.get(url)
    assert form.status_code == 200 and "add me for free crypto" in form.content.decode()
    response = client.post(reverse("report:request"), {"jid": alice.jid, "reason": "spam", "also_block": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    report = Report.objects.get()
    assert (report.kind, report.reported_jid, report.quoted_body) == ("request", alice.jid, "add me for free crypto")
    # Blocked as the Block button blocks: the request is gone from bob's Requests.
    assert "add me for free crypto" not in client.get(reverse("home")).content.decode()


def test_a_request_report_needs_a_request_and_a_contact_report_needs_a_contact(alice, bob, make_user):
    carol = make_user("carol")
    with pytest.raises(ReportError, match=re.escape("no contact request from carol@imweb.localhost")):
        file_report(bob, kind="request", reason="spam", jid=carol.jid)
    with pytest.raises(ReportError, match=re.escape("carol@imweb.localhost is not in your contacts")):
        file_report(bob, kind="contact", reason="spam", jid=carol.jid)
    with pytest.raises(ReportError, match="missing the '@'"):
        file_report(bob, kind="contact", reason="spam", jid="carol")
    with pytest.raises(ReportError, match="your own address"):
        file_report(bob, kind="contact", reason="spam", jid=bob.jid)
    response = signed_in(bob).get(reverse("report:contact") + "?jid=carol%40imweb.localhost")
    assert response.status_code == 404 and "not in your contacts" in response.content.decode()
    befriend(bob, carol)
    report = file_report(bob, kind="contact", reason="other", note="pretends to be me", jid=carol.jid)
    assert (report.kind, report.reported_jid) == ("contact", carol.jid)
    assert not Report.objects.filter(kind="request").exists()


def test_each_contact_row_offers_report(friends):
    _, bob = friends
    home = signed_in(bob).get(reverse("home")).content.decode()
    assert f'href="{reverse("report:contact")}?jid=alice%40imweb.localhost"' in home


def test_a_federated_sender_can_be_reported_like_a_local_one(bob):
    message = remote_message(bob, "cheap watches here")
    report = file_report(bob, kind="message", reason="spam", conversation_id=message.conversation_id, seq=message.seq)
    assert (report.reported_jid, report.quoted_body) == (MALLORY, "cheap watches here")


def test_the_report_link_is_on_other_peoples_messages_only(friends):
    alice, bob = friends
    theirs = send(alice, bob.jid, "from alice")
    mine = send(bob, alice.jid, "from bob")
    page = signed_in(bob).get(reverse("conversation", args=[theirs.conversation_id])).content.decode()
    assert report_url(theirs) in page
    assert report_url(mine) not in page


def test_anonymous_people_are_sent_to_sign_in(friends):
    alice, bob = friends
    message = send(alice, bob.jid, "hi")
    response = Client().post(report_url(message), {"reason": "spam"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Report.objects.exists()


def test_reporting_needs_the_csrf_token(friends):
    alice, bob = friends
    message = send(alice, bob.jid, "hi")
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(report_url(message), {"reason": "spam"}).status_code == 403
    assert not Report.objects.exists()


# --- The queue ---------------------------------------------------------------------------------------------


@pytest.fixture
def reported(friends):
    """Bob reported a message alice sent him."""
    alice, bob = friends
    message = send(alice, bob.jid, "you are an idiot")
    report = file_report(
        bob, kind="message", reason="abuse", note="she keeps at it", conversation_id=message.conversation_id, seq=1
    )
    return report, message


def act(staff: Client, report: Report, action: str, text: str = "", state: str = "open"):
    return staff.post(
        reverse("dashboard:report_action", args=[report.pk]), {"action": action, "text": text, "state": state}
    )


def test_the_queue_shows_open_reports_first_with_everything_an_operator_needs(reported, staff, operator):
    report, message = reported
    other = file_report(report.reporter, kind="contact", reason="spam", jid="alice@imweb.localhost")
    reports.act_on(other, "dismiss", request=_request_as(operator))
    page = staff.get(reverse("dashboard:reports") + "?state=all").content.decode()
    assert page.index(f'id="report-{report.pk}"') < page.index(f'id="report-{other.pk}"')
    section = page[page.index(f'id="report-{report.pk}"') : page.index(f'id="report-{other.pk}"')]
    for shown in ("Message", "Abuse or harassment", "she keeps at it", "bob@imweb.localhost", "you are an idiot"):
        assert shown in section, shown
    assert reverse("dashboard:person", args=["alice"]) in section
    assert f"Conversation {message.conversation_id}, message 1" in section
    # The default view lists the open ones only; the filters list the rest.
    open_page = staff.get(reverse("dashboard:reports")).content.decode()
    assert f'id="report-{report.pk}"' in open_page and f'id="report-{other.pk}"' not in open_page
    dismissed = staff.get(reverse("dashboard:reports") + "?state=dismissed").content.decode()
    assert f'id="report-{other.pk}"' in dismissed and f'id="report-{report.pk}"' not in dismissed


def _request_as(user: User):
    from django.test import RequestFactory

    request = RequestFactory().post("/dashboard/reports/")
    request.user = user
    return request


def _offered(staff: Client, report: Report) -> set[str]:
    page = staff.get(reverse("dashboard:reports") + "?state=all").content.decode()
    start = page.index(f'id="report-{report.pk}"')
    entry = page[start : page.index("</li>", start)]
    return set(re.findall(r'name="action" value="([a-z_]+)"', entry))


def test_only_the_actions_that_apply_are_offered(reported, staff, bob, alice):
    report, _ = reported
    assert _offered(staff, report) == {"dismiss", "warn", "remove", "suspend"}
    remote = remote_message(bob)
    from_afar = file_report(bob, kind="message", reason="spam", conversation_id=remote.conversation_id, seq=1)
    assert _offered(staff, from_afar) == {"dismiss", "remove", "block_server", "block_address"}
    contact = file_report(bob, kind="contact", reason="spam", jid=alice.jid)
    assert _offered(staff, contact) == {"dismiss", "warn", "suspend"}
    # An action that does not apply is refused even when posted by hand, and changes nothing.
    response = act(staff, contact, "remove")
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.state == "open" and not entries("report.remove")
    assert "does not apply" in staff.get(response["Location"]).content.decode()


def test_dismiss_resolves_the_report_and_is_audited(reported, staff, operator):
    report, message = reported
    response = act(staff, report, "dismiss", "banter between friends")
    assert response.status_code == 302
    report.refresh_from_db()
    assert (report.state, report.resolved_by) == ("dismissed", operator)
    assert report.resolution == "Dismissed: banter between friends" and report.resolved_at is not None
    [entry] = entries("report.dismiss")
    assert entry.actor == operator and str(report.pk) in entry.target
    # Nothing happened to the message or the sender; a dismissed report offers nothing more.
    message.refresh_from_db()
    assert message.body == "you are an idiot" and User.objects.get(username="alice").is_active
    assert _offered(staff, report) == set()


def test_warn_emails_the_sender_and_is_audited(reported, staff, operator):
    report, _ = reported
    act(staff, report, "warn", "Stop insulting people.")
    [warning] = mail.outbox
    assert warning.to == ["alice@example.org"] and "Stop insulting people." in warning.body
    report.refresh_from_db()
    assert (report.state, report.resolution, report.resolved_by) == (
        "actioned",
        "Warned alice@imweb.localhost",
        operator,
    )
    assert entries("report.warn") and entries("person.warn")


def test_remove_turns_the_message_into_an_operator_tombstone_for_the_reporter(reported, staff, bob):
    report, message = reported
    act(staff, report, "remove")
    message.refresh_from_db()
    assert message.removed_by_operator and message.body == ""
    page = signed_in(bob).get(reverse("conversation", args=[message.conversation_id])).content.decode()
    assert "message removed by an operator" in page and "you are an idiot" not in page
    report.refresh_from_db()
    assert (report.state, report.resolution) == ("actioned", "Message removed")
    assert entries("report.remove") and entries("message.remove")
    # The quote stays with the report for the record; removing twice is not offered.
    assert report.quoted_body == "you are an idiot"
    assert "remove" not in _offered(staff, report)


def test_suspend_needs_a_reason_then_closes_the_senders_account(reported, staff):
    report, _ = reported
    response = act(staff, report, "suspend", "")
    assert "Say why" in staff.get(response["Location"]).content.decode()
    report.refresh_from_db()
    assert report.state == "open" and not entries("report.suspend")
    act(staff, report, "suspend", "harassment")
    alice = User.objects.get(username="alice")
    assert not alice.is_active and alice.suspended_reason == "harassment"
    assert not Client().login(username="alice", password="correct horse battery staple")
    report.refresh_from_db()
    assert report.state == "actioned" and report.resolution == "Suspended alice@imweb.localhost: harassment"
    assert entries("report.suspend") and entries("person.suspend")


def test_warn_then_suspend_on_one_report_keeps_both_outcomes(reported, staff):
    report, _ = reported
    act(staff, report, "warn", "Last warning.")
    act(staff, report, "suspend", "ignored the warning")
    report.refresh_from_db()
    assert report.resolution == "Warned alice@imweb.localhost; Suspended alice@imweb.localhost: ignored the warning"


def test_a_remote_sender_s_server_or_address_can_be_blocked_from_the_report(bob, staff):
    first = remote_message(bob, "spam one")
    report = file_report(bob, kind="message", reason="spam", conversation_id=first.conversation_id, seq=1)
    act(staff, report, "block_address", "spammer")
    assert BlockedAddress.objects.filter(jid=MALLORY).exists()
    report.refresh_from_db()
    assert report.resolution == f"Blocked the address {MALLORY}"
    act(staff, report, "block_server")
    assert RemoteDomain.objects.get(domain="evil.example").policy == RemoteDomain.Policy.DENY
    assert entries("report.block_address") and entries("report.block_server") and entries("federation.deny")


def test_one_action_settles_the_other_open_reports_it_answers(reported, staff, make_user, bob):
    report, _ = reported
    carol = make_user("carol")
    alice = User.objects.get(username="alice")
    room = actions.create_room(alice, "Town", members=[bob.jid])
    befriend(alice, carol)
    actions.invite(alice, room.pk, carol.jid)
    shout = send(alice, room.pk, "everyone is an idiot")
    by_bob = file_report(bob, kind="message", reason="abuse", conversation_id=room.pk, seq=shout.seq)
    by_carol = file_report(carol, kind="message", reason="abuse", conversation_id=room.pk, seq=shout.seq)
    # Removing the room message settles both reports of it, not bob's other report.
    act(staff, by_bob, "remove")
    by_carol.refresh_from_db()
    report.refresh_from_db()
    assert by_carol.state == "actioned" and by_carol.resolution == f"With report {by_bob.pk}: Message removed"
    assert report.state == "open"
    # Suspending alice settles every open report about her.
    as_contact = file_report(carol, kind="contact", reason="abuse", jid=alice.jid)
    act(staff, report, "suspend", "abuse in two places")
    as_contact.refresh_from_db()
    assert as_contact.state == "actioned" and as_contact.resolution.startswith(f"With report {report.pk}: Suspended")
    assert not Report.objects.filter(state="open").exists()


def test_the_queue_and_its_actions_are_for_moderators_only(reported, make_user, alice):
    report, _ = reported
    queue = reverse("dashboard:reports")
    action = reverse("dashboard:report_action", args=[report.pk])
    dismiss = {"action": "dismiss"}
    assert Client().get(queue).status_code == 302
    assert Client().post(action, dismiss).status_code == 302
    people = signed_in(alice)
    assert people.get(queue).status_code == 403 and people.post(action, dismiss).status_code == 403
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    watcher = signed_in(viewer)
    assert watcher.get(queue).status_code == 403 and watcher.post(action, dismiss).status_code == 403
    report.refresh_from_db()
    assert report.state == "open" and not entries("report.dismiss")


def test_the_open_queue_says_when_new_reports_come_in(reported, staff, make_user, friends):
    page = staff.get(reverse("dashboard:reports")).content.decode()
    since = re.search(r"reports/waiting\?since=(\d+)", page).group(1)
    poll = reverse("dashboard:reports_waiting") + f"?since={since}"
    assert "new report" not in staff.get(poll).content.decode()
    alice, bob = friends
    message = send(alice, bob.jid, "and again")
    file_report(bob, kind="message", reason="abuse", conversation_id=message.conversation_id, seq=message.seq)
    assert "1 new report since this page was drawn" in staff.get(poll).content.decode()
