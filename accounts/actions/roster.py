"""Contact-list actions: consent-based subscriptions (RFC 6121 §3), nicknames and groups, blocking (XEP-0191).

Rules every function here keeps:
- Nobody lands in a contact list or sees presence without consent: a request puts the asker in the other
  side's Requests (`pending_in`); only `accept_subscription` grants presence.
- Accepting is mutual by default: the asker asked to be connected, which we take as consent to see the
  accepter's presence and to share their own back (as XMPP clients do when they pre-approve on "add").
- Blocked and nonexistent accounts are indistinguishable to the asker (`NoSuchUser` for both).
- Each function validates, writes in one transaction, then (on commit) wakes the affected users' sockets.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format

from accounts import events, signals
from accounts.actions.presence import send_presence_to_remote
from accounts.errors import ContactError, InvalidJid, NoSuchUser, RateLimited
from accounts.events import notify_users
from accounts.jid import BareJid, parse_bare_jid
from accounts.lookups import is_blocked, local_user_for
from accounts.models import BlockedJid, RosterGroup, RosterItem, Subscription, User
from federation import outbox
from imweb import ratelimit as counters

__all__ = ["is_blocked", "local_user_for"]

GROUP_NAME_MAX = 64
MAX_GROUPS_PER_CONTACT = 16
REQUEST_MESSAGE_MAX = 280

_ADD_TO = {Subscription.NONE: Subscription.TO, Subscription.FROM: Subscription.BOTH}
_ADD_FROM = {Subscription.NONE: Subscription.FROM, Subscription.TO: Subscription.BOTH}
_DROP_TO = {Subscription.TO: Subscription.NONE, Subscription.BOTH: Subscription.FROM}
_DROP_FROM = {Subscription.FROM: Subscription.NONE, Subscription.BOTH: Subscription.TO}


def _gain_to(item: RosterItem) -> None:
    item.subscription = _ADD_TO.get(item.subscription, item.subscription)


def _gain_from(item: RosterItem) -> None:
    item.subscription = _ADD_FROM.get(item.subscription, item.subscription)


def _lose_to(item: RosterItem) -> None:
    item.subscription = _DROP_TO.get(item.subscription, item.subscription)


def _lose_from(item: RosterItem) -> None:
    item.subscription = _DROP_FROM.get(item.subscription, item.subscription)


def _to_remote(user: User, jid: str, presence_type: str) -> None:
    """Queue a subscription presence (or `unavailable`/`probe`) from `user` to a remote JID, in the caller's
    transaction: the contact's server learns of the change exactly when it is committed here."""
    outbox.subscription(user.jid, jid, presence_type)


def _current_presence_to_remote(user: User, jid: str) -> None:
    send_presence_to_remote(user, jid)


def farewell_remote_contacts(user: User) -> None:
    """Before `user`'s account is deleted: tell every remote contact's server, in the caller's transaction.

    As a roster remove does (RFC 6121 §2.5.2): `unavailable` and `unsubscribed` to those we share presence with,
    `unsubscribe` to those whose presence we see or asked for, and a refusal for requests still waiting. Their
    servers then drop the subscription, so nobody keeps trusting the address if the username is taken again.
    """
    for item in RosterItem.objects.filter(owner=user).exclude(jid__endswith=f"@{settings.IMWEB_DOMAIN}"):
        shares = item.subscription in (Subscription.FROM, Subscription.BOTH)
        sees = item.subscription in (Subscription.TO, Subscription.BOTH) or item.ask_out
        if shares:
            _to_remote(user, item.jid, "unavailable")
        if sees:
            _to_remote(user, item.jid, "unsubscribe")
        if shares or item.pending_in:
            _to_remote(user, item.jid, "unsubscribed")


def _reachable_peer(user: User, jid: BareJid) -> User | None:
    """The local account a request may reach, or NoSuchUser (also when it blocks `user`); None for a JID on
    another server, whose server answers later (there is no account to check from here)."""
    if not jid.is_local:
        return None
    peer = local_user_for(jid)
    if peer is None or is_blocked(peer, user.jid):
        raise NoSuchUser(str(jid))
    return peer


def _item(owner: User, jid: str) -> RosterItem:
    item, _ = RosterItem.objects.select_for_update().get_or_create(owner=owner, jid=jid)
    return item


def _existing_item(owner: User, jid: str) -> RosterItem | None:
    return RosterItem.objects.select_for_update().filter(owner=owner, jid=jid).first()


def _answerable_request(user: User, jid: BareJid) -> RosterItem:
    """The user's row for a request from `jid`, marked answered; ContactError if it was withdrawn."""
    mine = _existing_item(user, str(jid))
    if mine is None or not mine.pending_in:
        raise ContactError(f"There is no request from {jid} any more; it may have been withdrawn.")
    mine.pending_in = False
    mine.request_message = ""
    return mine


def _discard_if_empty(item: RosterItem) -> None:
    """A row that is neither listed, nor a request either way, nor a subscription has no reason to exist."""
    if not (item.listed or item.ask_out or item.pending_in or item.subscription != Subscription.NONE):
        item.delete()
    else:
        item.save()


def _asking_too_fast(retry_after: int) -> RateLimited:
    unit = "second" if retry_after == 1 else "seconds"
    error = RateLimited(f"You have sent many contact requests in a short time. Try again in {retry_after} {unit}.")
    error.retry_after = retry_after
    return error


def request_subscription(user: User, jid_text: str, *, message: str = "") -> RosterItem:
    """ "Add contact": ask `jid` for consent. Returns the user's roster item, now listed and pending out."""
    jid = parse_bare_jid(jid_text)
    if str(jid) == user.jid:
        raise ContactError("That is your own address; you cannot add yourself.")
    if is_blocked(user, str(jid)):
        raise ContactError(f"You have blocked {jid}. Unblock them first to add them.")
    message = message.strip()
    if len(message) > REQUEST_MESSAGE_MAX:
        raise ContactError(f"The note can be at most {REQUEST_MESSAGE_MAX} characters long.")
    peer = _reachable_peer(user, jid)
    target = str(jid)
    now = timezone.now()
    with transaction.atomic():
        mine = _item(user, target)
        if mine.pending_in:
            # They already asked us: adding them back is accepting.
            return accept_subscription(user, target)
        if mine.sees_presence and mine.listed:
            raise ContactError(f"{target} is already in your contacts.")
        if mine.ask_out:
            raise ContactError(f"You already asked {target}; their answer is pending.")
        cooldown = timedelta(seconds=settings.IMWEB_REREQUEST_COOLDOWN_SECONDS)
        if mine.declined_at and now < mine.declined_at + cooldown:
            when = date_format(timezone.localtime(mine.declined_at + cooldown), "j M Y, H:i T")
            raise RateLimited(f"{target} declined your request. You can ask again after {when}.")
        # Asking strangers is what spam looks like: each person may ask only so many at a time.
        counters.charge("contact-request", user.pk, settings.IMWEB_CONTACT_REQUEST_RATE_LIMITS, refuse=_asking_too_fast)
        mine.listed = True
        mine.ask_out = True
        mine.requested_at = now
        if mine.sees_presence:  # they already share presence with us: just list them
            mine.ask_out = False
        mine.save()
        if mine.ask_out and peer is None:
            # RFC 6121 §3.1.1: the request travels as <presence type='subscribe'/>; the note stays here, as
            # standard XMPP has no place for it.
            _to_remote(user, target, "subscribe")
        elif mine.ask_out:
            theirs = _item(peer, user.jid)
            theirs.pending_in = True
            theirs.request_message = message
            theirs.requested_at = now
            theirs.save()
    notify_users([user.pk, peer.pk if peer else None], events.roster_changed())
    return mine


def accept_subscription(user: User, jid_text: str) -> RosterItem:
    """Accept a request in Requests: both sides now see each other's presence and list each other."""
    jid = parse_bare_jid(jid_text)
    with transaction.atomic():
        mine = _answerable_request(user, jid)
        asker = local_user_for(jid)
        mine.listed = True
        _gain_from(mine)
        if asker is not None:
            theirs = _item(asker, user.jid)
            _gain_to(theirs)
            theirs.ask_out = False
            theirs.declined_at = None
            theirs.listed = True
            # Mutual by default: the asker's request counts as consent to share their presence back.
            _gain_from(theirs)
            _gain_to(mine)
            mine.ask_out = False
            theirs.save()
        elif not jid.is_local:
            # RFC 6121 §3.1.5: approve, then send our current presence. Mutual by default, as for a local asker,
            # but their server decides whether we may see theirs: we ask back, and wait for 'subscribed'.
            _to_remote(user, str(jid), "subscribed")
            _current_presence_to_remote(user, str(jid))
            if not mine.sees_presence and not mine.ask_out:
                mine.ask_out = True
                mine.requested_at = timezone.now()
                _to_remote(user, str(jid), "subscribe")
        mine.save()
    notify_users([user.pk, asker.pk if asker else None], events.roster_changed())
    return mine


def decline_subscription(user: User, jid_text: str) -> None:
    """Decline a request: the asker is told (as XMPP's `unsubscribed` would) and may ask again later."""
    jid = parse_bare_jid(jid_text)
    with transaction.atomic():
        mine = _answerable_request(user, jid)
        _discard_if_empty(mine)
        asker = local_user_for(jid)
        if asker is not None:
            theirs = _existing_item(asker, user.jid)
            if theirs is not None:
                theirs.ask_out = False
                theirs.declined_at = timezone.now()
                theirs.save()
        elif not jid.is_local:
            _to_remote(user, str(jid), "unsubscribed")  # RFC 6121 §3.2.1: a refused request
    notify_users([user.pk, asker.pk if asker else None], events.roster_changed())


def remove_contact(user: User, jid_text: str) -> None:
    """Remove a contact (or withdraw a request): cancels presence in both directions."""
    jid = parse_bare_jid(jid_text)
    with transaction.atomic():
        mine = _existing_item(user, str(jid))
        if mine is None or not (mine.listed or mine.ask_out or mine.subscription != Subscription.NONE):
            raise ContactError(f"{jid} is not in your contacts.")
        keep_request = mine.pending_in  # their request to us stays answerable
        if keep_request:
            mine.listed = False
            mine.ask_out = False
            mine.subscription = Subscription.NONE
            mine.save()
            mine.groups.clear()
        else:
            mine.delete()
        other = local_user_for(jid)
        if other is not None:
            theirs = _existing_item(other, user.jid)
            if theirs is not None:
                theirs.subscription = Subscription.NONE
                theirs.ask_out = False
                theirs.pending_in = False
                theirs.request_message = ""
                _discard_if_empty(theirs)
        elif not jid.is_local:
            # RFC 6121 §3.3 and §3.4 (as a roster remove does, §2.5.2): stop seeing theirs, stop sharing ours;
            # a request of theirs that is still waiting here stays answerable, so it is not refused.
            _to_remote(user, str(jid), "unsubscribe")
            if not keep_request:
                _to_remote(user, str(jid), "unsubscribed")
    notify_users([user.pk, other.pk if other else None], events.roster_changed())


def receive_subscription(user: User, jid_text: str, presence_type: str) -> None:
    """A subscription presence from a remote JID to `user` (RFC 6121 §3), applied to `user`'s roster.

    `subscribe` lands in Requests like a local request (or is answered at once if `user` already shares presence
    with them, §3.1.3, or had asked them too: asking each other is agreeing); `subscribed` answers our pending
    request (§3.1.6: ignored without one); `unsubscribe` ends what we share (§3.3.3); `unsubscribed` ends or
    refuses what we see (§3.2.3). The caller has checked that `user` exists and does not block them.
    """
    jid = parse_bare_jid(jid_text)
    if jid.is_local:
        raise ContactError(f"{jid} is on this server; its requests do not arrive over federation.")
    target = str(jid)
    now = timezone.now()
    with transaction.atomic():
        if presence_type == "subscribe":
            mine = _item(user, target)
            if mine.shares_presence:
                _to_remote(user, target, "subscribed")
                return
            if mine.ask_out and mine.listed:
                _gain_from(mine)
                mine.save()
                _to_remote(user, target, "subscribed")
                _current_presence_to_remote(user, target)
            else:
                mine.pending_in = True
                mine.request_message = ""
                mine.requested_at = now
                mine.save()
        elif presence_type in ("subscribed", "unsubscribe", "unsubscribed"):
            mine = _existing_item(user, target)
            if mine is None:
                return
            if presence_type == "subscribed":
                if not mine.ask_out:
                    return
                mine.ask_out = False
                mine.declined_at = None
                _gain_to(mine)
            elif presence_type == "unsubscribe":
                mine.pending_in = False
                mine.request_message = ""
                _lose_from(mine)
            else:
                if mine.ask_out:
                    mine.declined_at = now
                mine.ask_out = False
                _lose_to(mine)
            _discard_if_empty(mine)
        else:
            raise ValueError(f"not a subscription presence type: {presence_type!r}")
    notify_users([user.pk], events.roster_changed())


def rename_contact(user: User, jid_text: str, name: str) -> RosterItem:
    jid = parse_bare_jid(jid_text)
    name = name.strip()
    if len(name) > 64:
        raise ContactError("A nickname can be at most 64 characters long.")
    with transaction.atomic():
        item = _existing_item(user, str(jid))
        if item is None or not item.listed:
            raise ContactError(f"{jid} is not in your contacts.")
        item.name = name
        item.save(update_fields=["name"])
    notify_users([user.pk], events.roster_changed())
    return item


def set_contact_groups(user: User, jid_text: str, group_names: list[str]) -> RosterItem:
    """Put a contact in exactly these named groups (created as needed; empty groups are removed)."""
    jid = parse_bare_jid(jid_text)
    names = sorted({name.strip() for name in group_names if name.strip()})
    for name in names:
        if len(name) > GROUP_NAME_MAX:
            raise ContactError(f"A group name can be at most {GROUP_NAME_MAX} characters long.")
    if len(names) > MAX_GROUPS_PER_CONTACT:
        raise ContactError(f"A contact can be in at most {MAX_GROUPS_PER_CONTACT} groups.")
    with transaction.atomic():
        item = _existing_item(user, str(jid))
        if item is None or not item.listed:
            raise ContactError(f"{jid} is not in your contacts.")
        groups = [RosterGroup.objects.get_or_create(owner=user, name=name)[0] for name in names]
        item.groups.set(groups)
        RosterGroup.objects.filter(owner=user, items__isnull=True).delete()
    notify_users([user.pk], events.roster_changed())
    return item


def block_jid(user: User, jid_text: str) -> BlockedJid:
    """Block a person or a whole server: nothing from them reaches the user, and they stop seeing presence."""
    jid = parse_bare_jid(jid_text, allow_domain=True)
    if str(jid) == user.jid:
        raise ContactError("You cannot block yourself.")
    if not jid.localpart and jid.is_local:
        raise ContactError("You cannot block your own server; block people on it one by one.")
    with transaction.atomic():
        block, created = BlockedJid.objects.get_or_create(owner=user, jid=str(jid))
        if not created:
            raise ContactError(f"{jid} is already blocked.")
        # Their pending requests vanish from Requests; subscriptions stay (XEP-0191 §3.3), but carry nothing.
        matches = Q(jid=str(jid)) if jid.localpart else Q(jid__endswith=f"@{jid.domain}")
        for item in RosterItem.objects.select_for_update().filter(matches, owner=user, pending_in=True):
            item.pending_in = False
            item.request_message = ""
            _discard_if_empty(item)
        # XEP-0191 §3.3: a blocked contact stops receiving our presence, so remote ones see us go offline.
        for item in RosterItem.objects.filter(matches, owner=user):
            if item.shares_presence and item.is_remote:
                _to_remote(user, item.jid, "unavailable")
        # Their first messages leave Requests too (chat.requests; unblocking brings them back).
        signals.blocked.send(sender=BlockedJid, user=user, jid=jid)
    affected = _local_users_matching(jid)
    notify_users([user.pk, *affected], events.roster_changed())
    return block


def unblock_jid(user: User, jid_text: str) -> None:
    jid = parse_bare_jid(jid_text, allow_domain=True)
    with transaction.atomic():
        deleted, _ = BlockedJid.objects.filter(owner=user, jid=str(jid)).delete()
        if not deleted:
            raise ContactError(f"{jid} is not blocked.")
        matches = Q(jid=str(jid)) if jid.localpart else Q(jid__endswith=f"@{jid.domain}")
        for item in RosterItem.objects.filter(matches, owner=user):
            if item.shares_presence and item.is_remote and not is_blocked(user, item.jid):
                _current_presence_to_remote(user, item.jid)
        # Requests hidden by the block come back, unless another block stands (chat.requests).
        signals.unblocked.send(sender=BlockedJid, user=user, jid=jid)
    notify_users([user.pk, *_local_users_matching(jid)], events.roster_changed())


def _local_users_matching(jid: BareJid) -> list[int]:
    """The local account a blocked JID names, whose view of the blocker changes (a domain names none)."""
    peer = local_user_for(jid) if jid.localpart else None
    return [peer.pk] if peer else []


def search_directory(user: User, query: str, *, limit: int = 20) -> list[User]:
    """Local people matching a username or display-name prefix who chose to be findable and don't block `user`."""
    query = query.strip().lower()
    if query.startswith("@"):
        query = query[1:]
    query = query.split("@", 1)[0]
    if len(query) < 2:
        return []
    blocked_me = BlockedJid.objects.filter(jid__in=[user.jid, settings.IMWEB_DOMAIN]).values("owner")
    return list(
        User.objects.filter(Q(username__startswith=query) | Q(display_name__icontains=query))
        .filter(is_active=True, directory_visible=True)
        .exclude(pk=user.pk)
        .exclude(pk__in=blocked_me)
        .order_by("username")[:limit]
    )


__all__ = [
    "InvalidJid",
    "accept_subscription",
    "block_jid",
    "decline_subscription",
    "is_blocked",
    "local_user_for",
    "receive_subscription",
    "remove_contact",
    "rename_contact",
    "request_subscription",
    "search_directory",
    "set_contact_groups",
    "unblock_jid",
]
