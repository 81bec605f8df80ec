"""People reporting what reached them: a message they received, a contact request, a contact.

Every check is made here, on the server, whatever the page showed: a message report must name a message the
reporter really received (a conversation they are in, or were in before they left, and not their own), and
every id that is not such a message gets the same `NO_SUCH_MESSAGE` answer, so probing ids learns nothing.
What the reporter saw is kept with the report (`quoted_body`), since the sender may edit or delete it later.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import actions as accounts
from accounts.errors import AccountError, InvalidJid
from accounts.jid import parse_bare_jid
from accounts.models import BlockedJid, RosterItem, User
from chat.access import conversation_pk, membership, parse_seq
from chat.errors import ChatError, NotFound
from chat.models import Conversation, Message, Participant
from imweb import ratelimit
from imweb.dashboard import moderation
from imweb.dashboard.audit import record
from imweb.dashboard.models import Report

NOTE_MAX = 500
# At most this many reports per person in each window of this many seconds (imweb.ratelimit counts them in the
# shared cache, so every web process agrees).
REPORT_LIMITS: tuple[tuple[int, int], ...] = ((20, 3600),)
NO_SUCH_MESSAGE = "There is no such message to report."


class ReportError(ValueError):
    """A report that cannot be filed as asked; the message says why, for the person reporting."""


@dataclass(frozen=True)
class Target:
    """What a report is about, as checked for this reporter: the address reported and, for a message, the
    message and the text the reporter was shown."""

    kind: str
    reported_jid: str
    message: Message | None = None
    quoted_body: str = ""
    conversation_id: int | None = None

    @property
    def is_local(self) -> bool:
        return self.reported_jid.rpartition("@")[2] == settings.IMWEB_DOMAIN


def _received_message(reporter: User, conversation_id: object, seq: object) -> Message:
    """The message at (conversation, seq) if `reporter` received it, else ReportError(NO_SUCH_MESSAGE) for
    every other case alike: no such conversation or message, a conversation they were never in, a message sent
    after they left, an id or seq of any malformed shape.

    Current participants (Requests included: a request shows its whole conversation) read every message of the
    conversation, as chat.queries does; someone who left a room read it up to the moment they left."""
    try:
        pk = conversation_pk(conversation_id)
        number = parse_seq(seq)
    except ChatError:
        raise ReportError(NO_SUCH_MESSAGE) from None
    messages = Message.objects.filter(conversation_id=pk, seq=number, kind=Message.Kind.MESSAGE)
    try:
        membership(reporter, pk)
    except NotFound:
        former = (
            Participant.objects.filter(conversation_id=pk, user=reporter, left_at__isnull=False)
            .order_by("-left_at")
            .first()
        )
        if former is None:
            raise ReportError(NO_SUCH_MESSAGE) from None
        messages = messages.filter(created_at__lte=former.left_at)
    message = messages.first()
    if message is None:
        raise ReportError(NO_SUCH_MESSAGE)
    if message.sender_jid == reporter.jid:
        raise ReportError("That is your own message: you can edit or delete it instead.")
    if message.is_deleted:
        raise ReportError("That message was deleted: there is nothing left to report.")
    return message


def _address(jid: object) -> str:
    if not isinstance(jid, str):
        raise ReportError("Say whom you are reporting: an address like alice@example.org.")
    try:
        return str(parse_bare_jid(jid))
    except InvalidJid as err:
        raise ReportError(str(err)) from None


def _other_address(reporter: User, jid: object) -> str:
    address = _address(jid)
    if address == reporter.jid:
        raise ReportError("That is your own address.")
    return address


def _pending_request(reporter: User, jid: str) -> Target:
    """A contact request from `jid` waiting in the reporter's Requests, or a conversation from them waiting
    there (someone not in their contacts wrote first)."""
    item = RosterItem.objects.filter(owner=reporter, jid=jid, pending_in=True).first()
    if item is not None:
        return Target(Report.Kind.REQUEST, jid, quoted_body=item.request_message)
    waiting = Participant.objects.filter(
        user=reporter,
        is_request=True,
        left_at__isnull=True,
        conversation__kind=Conversation.Kind.DIRECT,
        conversation__participants__jid=jid,
    ).first()
    if waiting is None:
        raise ReportError(f"There is no contact request from {jid} waiting for you.")
    return Target(Report.Kind.REQUEST, jid, conversation_id=waiting.conversation_id)


def target_of(
    reporter: User,
    kind: object,
    *,
    conversation_id: object = None,
    seq: object = None,
    jid: object = None,
) -> Target:
    """Check what `reporter` wants to report and return it, or raise ReportError. A message is given as
    (conversation id, seq), a request or a contact by the other side's address."""
    if kind == Report.Kind.MESSAGE:
        message = _received_message(reporter, conversation_id, seq)
        return Target(
            Report.Kind.MESSAGE,
            message.sender_jid,
            message=message,
            quoted_body=message.body,
            conversation_id=message.conversation_id,
        )
    if kind == Report.Kind.REQUEST:
        return _pending_request(reporter, _other_address(reporter, jid))
    if kind == Report.Kind.CONTACT:
        address = _other_address(reporter, jid)
        if not RosterItem.objects.filter(owner=reporter, jid=address, listed=True).exists():
            raise ReportError(f"{address} is not in your contacts.")
        return Target(Report.Kind.CONTACT, address)
    raise ReportError("Say what you are reporting: a message, a contact request or a contact.")


def _reason(reason: object) -> str:
    if reason not in Report.Reason.values:
        raise ReportError("Choose a reason: spam, abuse or other.")
    return str(reason)


def _note(note: object) -> str:
    if note is None:
        return ""
    if not isinstance(note, str):
        raise ReportError("The note must be text.")
    text = note.replace("\r\n", "\n").strip()
    if len(text) > NOTE_MAX:
        raise ReportError(f"The note can be at most {NOTE_MAX} characters long (this one has {len(text)}).")
    return text


def _too_many(retry_after: int) -> ReportError:
    minutes = max(1, round(retry_after / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return ReportError(f"You have sent many reports in a short time. Try again in {minutes} {unit}.")


def _already_open(reporter: User, target: Target) -> bool:
    reports = Report.objects.filter(reporter=reporter, kind=target.kind, state=Report.State.OPEN)
    if target.message is not None:
        return reports.filter(message=target.message).exists()
    return reports.filter(reported_jid=target.reported_jid).exists()


def file_report(
    reporter: User,
    *,
    kind: object,
    reason: object,
    note: object = "",
    conversation_id: object = None,
    seq: object = None,
    jid: object = None,
    also_block: bool = False,
    request: HttpRequest | None = None,
) -> Report:
    """File a report for the operators' queue, after checking it server-side (ReportError says what is wrong).

    With `also_block` the reported address is blocked for the reporter exactly as their own Block button does
    (accounts.actions.block_jid): nothing from them reaches the reporter any more. A person may file at most
    REPORT_LIMITS reports; the same open report twice is refused. Audited as "report.file"."""
    if not getattr(reporter, "is_authenticated", False):
        raise ReportError("Sign in to report something.")
    target = target_of(reporter, kind, conversation_id=conversation_id, seq=seq, jid=jid)
    reason_value, note_text = _reason(reason), _note(note)
    if _already_open(reporter, target):
        raise ReportError("You have already reported this: the operators will look at it.")
    # Slots are taken only by reports that passed every check, so fixing a mistake never costs one.
    charge = ratelimit.charge("report", reporter.pk, REPORT_LIMITS, refuse=_too_many)
    try:
        with transaction.atomic():
            report = Report.objects.create(
                reporter=reporter,
                kind=target.kind,
                reason=reason_value,
                note=note_text,
                reported_jid=target.reported_jid,
                message=target.message,
                quoted_body=target.quoted_body,
            )
            blocked = False
            if also_block and not BlockedJid.objects.filter(owner=reporter, jid=target.reported_jid).exists():
                try:
                    accounts.block_jid(reporter, target.reported_jid)
                except AccountError as err:
                    raise ReportError(str(err)) from None
                blocked = True
            where = (
                f" (conversation {target.conversation_id}, message {target.message.seq})"
                if target.message is not None
                else ""
            )
            record(
                "report.file",
                actor=reporter,
                target=target.reported_jid,
                details=f"Report {report.pk}: {target.kind}{where}, {reason_value}"
                + (", and blocked them" if blocked else ""),
                request=request,
            )
    except BaseException:
        charge.refund()
        raise
    return report


# --- The operators' queue ---------------------------------------------------------------------------------

DISMISS, WARN, REMOVE, SUSPEND, BLOCK_SERVER, BLOCK_ADDRESS = (
    "dismiss",
    "warn",
    "remove",
    "suspend",
    "block_server",
    "block_address",
)
ACTION_LABELS = {
    DISMISS: "Dismiss",
    WARN: "Warn",
    REMOVE: "Remove the message",
    SUSPEND: "Suspend",
    BLOCK_SERVER: "Block the server",
    BLOCK_ADDRESS: "Block the address",
}
RESOLUTION_MAX = 200


def is_local_jid(jid: str) -> bool:
    return jid.rpartition("@")[2] == settings.IMWEB_DOMAIN


def reported_person(report: Report) -> User | None:
    """The local account the report is about (suspended ones too), or None: remote, or the account is gone."""
    if not is_local_jid(report.reported_jid):
        return None
    return User.objects.filter(username=report.reported_jid.rpartition("@")[0]).first()


def available_actions(report: Report, person: User | None = None) -> list[str]:
    """The actions that apply to this report: warn and suspend for a local sender whose account exists, block
    the server or the address for a remote one, remove for a message still there; dismiss while it is open. A
    dismissed report offers nothing; one already acted on may be acted on further (warn, then suspend)."""
    if report.state == Report.State.DISMISSED:
        return []
    actions = [DISMISS] if report.state == Report.State.OPEN else []
    if report.message is not None and not report.message.removed_by_operator:
        actions.append(REMOVE)
    if is_local_jid(report.reported_jid):
        if person is not None:
            actions.append(WARN)
            if person.is_active:
                actions.append(SUSPEND)
    else:
        actions += [BLOCK_ADDRESS, BLOCK_SERVER]
    return actions


def act_on(report: Report, action: str, *, text: str = "", request: HttpRequest) -> Report:
    """Handle a report with one of `available_actions`: call the moderation action (which audits itself), then
    resolve the report (state, resolution, who and when) and record "report.<action>". ModerationError says why
    an action cannot be done; the report is then left as it was."""
    text = (text or "").strip()
    with transaction.atomic():
        report = Report.objects.select_for_update().select_related("message").get(pk=report.pk)
        person = reported_person(report)
        if action not in available_actions(report, person):
            raise moderation.ModerationError(
                f"“{ACTION_LABELS.get(action, action)}” does not apply to this report (any more)."
            )
        jid = report.reported_jid
        if action == DISMISS:
            outcome = "Dismissed" + (f": {text}" if text else "")
        elif action == WARN:
            moderation.warn(person, text=text, request=request)
            outcome = f"Warned {jid}"
        elif action == REMOVE:
            moderation.remove_message(report.message, request=request, note=f"report {report.pk}")
            outcome = "Message removed"
        elif action == SUSPEND:
            moderation.suspend(person, reason=text, request=request)
            outcome = f"Suspended {jid}: {text}"
        elif action == BLOCK_SERVER:
            domain = jid.rpartition("@")[2]
            moderation.block_server(domain, request=request)
            outcome = f"Blocked the server {domain}"
        else:
            moderation.block_address(jid, reason=text or f"Reported (report {report.pk})", request=request)
            outcome = f"Blocked the address {jid}"
        if report.state == Report.State.ACTIONED and report.resolution:
            outcome = f"{report.resolution}; {outcome}"
        report.state = Report.State.DISMISSED if action == DISMISS else Report.State.ACTIONED
        report.resolution = outcome[:RESOLUTION_MAX]
        report.resolved_by = request.user
        report.resolved_at = timezone.now()
        report.save(update_fields=["state", "resolution", "resolved_by", "resolved_at"])
        record(f"report.{action}", target=f"report {report.pk} about {jid}", details=outcome, request=request)
        if action != DISMISS:
            _resolve_alike(report, action, outcome, request)
    return report


def _resolve_alike(report: Report, action: str, outcome: str, request: HttpRequest) -> None:
    """Other open reports that the same action settles (the same message removed; the same person suspended or
    address blocked; anyone of the same server blocked) are resolved with it, so nobody handles them twice."""
    others = Report.objects.filter(state=Report.State.OPEN).exclude(pk=report.pk)
    if action == REMOVE:
        others = others.filter(message=report.message)
    elif action in (SUSPEND, BLOCK_ADDRESS):
        others = others.filter(reported_jid=report.reported_jid)
    elif action == BLOCK_SERVER:
        others = others.filter(reported_jid__iendswith="@" + report.reported_jid.rpartition("@")[2])
    else:
        return
    settled = list(others.values_list("pk", flat=True))
    if not settled:
        return
    others.update(
        state=Report.State.ACTIONED,
        resolution=f"With report {report.pk}: {outcome}"[:RESOLUTION_MAX],
        resolved_by=request.user,
        resolved_at=timezone.now(),
    )
    record(
        f"report.{action}",
        target=f"reports {', '.join(map(str, settled))}",
        details=f"Resolved with report {report.pk}: {outcome}",
        request=request,
    )
