"""What an operator can do to a person, a message or another server. Every action takes effect everywhere at
once (open sockets are told through the same events as the rest of the app), and every one is audited.

The actions take the request: it names the operator and the address they acted from (imweb.dashboard.audit).
Permission checks are the views' (imweb.dashboard.access); these functions trust their caller.
"""

from __future__ import annotations

import logging

from allauth.account.forms import ResetPasswordForm
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.actions.profile import delete_account as delete_account_action
from accounts.events import account_closed, notify_users
from accounts.models import ApiToken, User
from chat import delivery, files
from chat.models import Message, Reaction
from federation import policy
from federation.models import RemoteDomain
from imweb.dashboard.audit import record

logger = logging.getLogger(__name__)

REASON_MAX = 500


class ModerationError(ValueError):
    """An action that cannot be done as asked; the message says why, for the operator."""


def _end_sessions(person: User) -> int:
    """Delete every signed-in session of `person` (browser sessions; API tokens are separate).

    Django keeps no index from a user to their sessions, so this reads the unexpired ones; the session store
    (cached_db) is asked to delete each, so its cache forgets it too. Suspension does not depend on this alone:
    an inactive account's session no longer authenticates (ModelBackend.get_user), this only frees the rows."""
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(person.pk):
            store(session_key=session.session_key).delete()
            ended += 1
    return ended


def _sign_out_everywhere(person: User, why: str) -> str:
    """End every session and API token of `person` and close their open tabs and streams (`why`: "suspended"
    or "password_reset", which the tabs explain); returns what was ended, for the audit log."""
    tokens = ApiToken.objects.filter(user=person).delete()[0]
    sessions = _end_sessions(person)
    notify_users([person.pk], account_closed(why))
    return f"Ended {sessions} session(s), revoked {tokens} API token(s)."


def suspend(person: User, *, reason: str, request: HttpRequest) -> None:
    """Suspend a person: they cannot sign in (and are told `reason` when they try), their sessions and API
    tokens stop working, and their open tabs and streams close within a second and do not reconnect."""
    reason = reason.strip()[:REASON_MAX]
    if not reason:
        raise ModerationError("Say why: the person is shown the reason when they try to sign in.")
    if person.pk == request.user.pk:
        raise ModerationError("You cannot suspend yourself.")
    with transaction.atomic():
        person.is_active = False
        person.suspended_at = timezone.now()
        person.suspended_reason = reason
        person.save(update_fields=["is_active", "suspended_at", "suspended_reason"])
        ended = _sign_out_everywhere(person, "suspended")
        record("person.suspend", target=person.jid, details=f"Reason: {reason}. {ended}", request=request)


def unsuspend(person: User, *, request: HttpRequest) -> None:
    """Let a suspended person sign in again (their old sessions and tokens stay gone)."""
    with transaction.atomic():
        person.is_active = True
        person.suspended_at = None
        person.suspended_reason = ""
        person.save(update_fields=["is_active", "suspended_at", "suspended_reason"])
        record("person.unsuspend", target=person.jid, request=request)


def force_password_reset(person: User, *, request: HttpRequest) -> None:
    """Make the person choose a new password: the current one stops working, they are signed out everywhere
    (tabs close, API tokens revoked), and a reset link goes to their email address."""
    if not person.email:
        raise ModerationError(f"{person.jid} has no email address to send a reset link to.")
    with transaction.atomic():
        person.set_unusable_password()
        person.save(update_fields=["password"])
        ended = _sign_out_everywhere(person, "password_reset")
        record(
            "person.password_reset",
            target=person.jid,
            details=f"Reset link sent to {person.email}. {ended}",
            request=request,
        )
    # allauth's own reset flow sends the link (the same mail as "Forgot your password?").
    form = ResetPasswordForm(data={"email": person.email})
    if form.is_valid():
        form.save(request)


def warn(person: User, *, text: str, request: HttpRequest) -> None:
    """Send the person a warning from the operators by email (they see it whatever page they are on next time
    they read mail; the warning is in the audit log too)."""
    from django.core.mail import send_mail

    text = text.strip()[:2000]
    if not text:
        raise ModerationError("Write the warning the person will receive.")
    if not person.email:
        raise ModerationError(f"{person.jid} has no email address to send a warning to.")
    send_mail(
        "A warning from the operators of imweb",
        f"Hello {person.name},\n\n{text}\n\nThis message was sent by the operators of your imweb server.",
        None,
        [person.email],
    )
    record("person.warn", target=person.jid, details=text, request=request)


def delete_account(person: User, *, request: HttpRequest) -> None:
    """Delete the account and its data (the same as the person deleting it themselves); their tabs close."""
    if person.pk == request.user.pk:
        raise ModerationError("You cannot delete your own account from here.")
    jid = person.jid
    notify_users([person.pk], account_closed("suspended"))
    delete_account_action(person)
    record("person.delete", target=jid, details="Account and its data deleted.", request=request)


def remove_message(message: Message, *, request: HttpRequest, note: str = "") -> Message:
    """Remove a message for everyone: it becomes a tombstone "removed by an operator" on every open screen at
    once, and its reactions go. Its text stays only in the audit log's details, for the record."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message.pk)
        if message.removed_by_operator:
            return message
        body, names = message.body, [f.name for f in message.files]
        message.body = ""
        message.deleted_at = message.deleted_at or timezone.now()
        message.removed_by_operator = True
        message.save(update_fields=["body", "deleted_at", "removed_by_operator"])
        Reaction.objects.filter(message=message).delete()
        files.remove_for_message(message)  # nobody can open its files any more; storage lets them go
        conversation_id, seq = message.conversation_id, message.seq
        transaction.on_commit(lambda: delivery.message_changed(conversation_id, seq, "deleted"))
        details = f"Sent by {message.sender_jid}: {body[:500]!r}" + (f", with files {names!r}" if names else "")
        details += f". Note: {note}" if note else ""
        record(
            "message.remove", target=f"conversation {conversation_id}, message {seq}", details=details, request=request
        )
    return message


def block_server(domain: str, *, request: HttpRequest) -> RemoteDomain:
    """Stop federating with `domain`: its streams close, its queued stanzas fail with the reason, and nothing
    from it is accepted (federation.policy)."""
    try:
        remote = policy.set_policy(domain, RemoteDomain.Policy.DENY)
    except policy.PolicyError as err:
        raise ModerationError(str(err)) from None
    record("federation.deny", target=remote.domain, details="Federation denied.", request=request)
    return remote


def block_address(jid: str, *, reason: str, request: HttpRequest) -> None:
    """Block one remote address for the whole service (federation.policy.block_address)."""
    from accounts.errors import InvalidJid
    from accounts.jid import parse_bare_jid

    try:
        address = parse_bare_jid(jid.strip())
    except InvalidJid as err:
        raise ModerationError(str(err)) from None
    if address.is_local:
        raise ModerationError(f"{address} is an account of this server: suspend it instead.")
    policy.block_address(str(address), reason)
    record("federation.block_address", target=str(address), details=reason, request=request)


def unblock_address(jid: str, *, request: HttpRequest) -> None:
    if policy.unblock_address(jid.strip()):
        record("federation.unblock_address", target=jid.strip().lower(), request=request)
