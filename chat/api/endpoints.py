"""The `/api/v1/` endpoints (django-ninja: request validation and the OpenAPI document at /api/v1/openapi.json,
interactive docs at /api/v1/docs). Each endpoint authenticates the bearer token, calls one action, and
returns the shapes in `chat.api.schemas`; errors leave through the handlers at the bottom, as
`{"error": {"code", "message"}}` with the status `chat.api.errors` assigns."""

from __future__ import annotations

import logging

from allauth.account.adapter import get_adapter
from allauth.core import ratelimit
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import File, Form, NinjaAPI, Status, Swagger, UploadedFile
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from accounts import actions as account_actions
from accounts.errors import RateLimited
from accounts.jid import parse_bare_jid
from accounts.models import BlockedJid, User
from accounts.roster import roster_view
from accounts.tokens import issue_token, revoke_token, tokens_of
from chat import actions, batching, files, files_views
from chat.access import membership, parse_seq
from chat.actions.conversations import set_marked_unread, set_muted, set_pinned
from chat.actions.messages import SendRequest
from chat.api import schemas as s
from chat.api.auth import BearerAuth
from chat.api.errors import DOMAIN_ERRORS, ApiError, BodyTooLarge, InvalidCredentials, describe
from chat.errors import InvalidArgument, NoSuchMessage

logger = logging.getLogger(__name__)

DEFAULT_BODY_MAX_BYTES = 256 * 1024  # a 10,000-character message, even with every character \\u-escaped


def body_max_bytes() -> int:
    return getattr(settings, "IMWEB_API_BODY_MAX_BYTES", DEFAULT_BODY_MAX_BYTES)


class LimitedParser(Parser):
    """JSON bodies up to IMWEB_API_BODY_MAX_BYTES; larger ones get 413 before any parsing."""

    def parse_body(self, request: HttpRequest) -> dict:
        limit = body_max_bytes()
        if len(request.body) > limit:
            raise BodyTooLarge(limit)
        return super().parse_body(request)


api = NinjaAPI(
    title="imweb API",
    version="1",
    description=(
        "Bots and integrations: send and receive messages, manage contacts and presence. Authenticate with "
        "`Authorization: Bearer <token>` (get a token from `POST /api/v1/token`). Live events arrive on the "
        "WebSocket `/api/v1/stream`; see the README's API section."
    ),
    auth=BearerAuth(),
    parser=LimitedParser(),
    urls_namespace="api-v1",
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_url="/docs",
    openapi_url="/openapi.json",
)

ERRORS = {400: s.ErrorOut, 401: s.ErrorOut, 404: s.ErrorOut, 409: s.ErrorOut, 413: s.ErrorOut, 422: s.ErrorOut}
LIMITED = {**ERRORS, 429: s.ErrorOut}


def _user(request: HttpRequest) -> User:
    return request.auth.user


# --- Tokens -----------------------------------------------------------------------------------------------


@api.post("/token", auth=None, response={201: s.IssuedTokenOut, **LIMITED}, tags=["tokens"])
def create_token(request: HttpRequest, payload: s.TokenIn) -> Status[s.IssuedTokenOut]:
    """Exchange a username (or email) and password for a new token. Counted against the same failed-login
    limits as the sign-in page; the answer is the same whether or not the account exists."""
    if not ratelimit.consume(request, action="login"):
        raise RateLimited("Too many sign-in attempts from this address. Try again in a minute.")
    try:
        user = get_adapter(request).authenticate(request, username=payload.username, password=payload.password)
    except DjangoValidationError:  # allauth's "too many failed attempts" for this IP or this login
        raise RateLimited("Too many failed sign-in attempts. Try again in a few minutes.") from None
    if user is None or not user.is_active:
        raise InvalidCredentials
    row, token = issue_token(user, payload.name)
    return Status(201, s.IssuedTokenOut(token=token, id=row.pk, name=row.name, created_at=row.created_at))


@api.delete("/token", response={204: None, **ERRORS}, tags=["tokens"])
def delete_current_token(request: HttpRequest) -> Status[None]:
    """Revoke the token this request is made with."""
    revoke_token(_user(request), request.auth.pk)
    return Status(204, None)


@api.get("/tokens", response={200: list[s.TokenOut], **ERRORS}, tags=["tokens"])
def list_tokens(request: HttpRequest) -> list[s.TokenOut]:
    return [s.token_out(row, request.auth) for row in tokens_of(_user(request))]


@api.delete("/tokens/{token_id}", response={204: None, **ERRORS}, tags=["tokens"])
def delete_token(request: HttpRequest, token_id: int) -> Status[None]:
    """Revoke one of my tokens by its id."""
    if not revoke_token(_user(request), token_id):
        raise Http404
    return Status(204, None)


# --- Me, presence, contacts -------------------------------------------------------------------------------


@api.get("/me", response={200: s.MeOut, **ERRORS}, tags=["me"])
def me(request: HttpRequest) -> s.MeOut:
    user = _user(request)
    return s.me_out(user, account_actions.presence_of(user))


@api.put("/presence", response={200: s.MeOut, **ERRORS}, tags=["me"])
def put_presence(request: HttpRequest, payload: s.PresenceIn) -> s.MeOut:
    """Set my chosen presence and (if given) status message. I count as online while a stream is connected."""
    user = account_actions.set_presence(_user(request), show=payload.show, status=payload.status)
    return s.me_out(user, account_actions.presence_of(user))


def _contacts(user: User) -> s.ContactsOut:
    view = roster_view(user)
    rows = {}
    for row in [*(r for group in view.groups for r in group.rows), *view.offline]:
        rows.setdefault(row.jid, row)  # a contact in several groups is listed in each
    return s.ContactsOut(
        contacts=[s.contact_out(row) for row in sorted(rows.values(), key=lambda r: (r.name.lower(), r.jid))],
        requests=[s.request_out(row) for row in view.requests],
        blocked=list(BlockedJid.objects.filter(owner=user).values_list("jid", flat=True)),
    )


def _contact(user: User, jid: str) -> s.ContactOut:
    wanted = str(parse_bare_jid(jid))
    found = next((c for c in _contacts(user).contacts if c.jid == wanted), None)
    if found is None:  # the action succeeded, so only a concurrent removal gets here
        raise Http404
    return found


@api.get("/contacts", response={200: s.ContactsOut, **ERRORS}, tags=["contacts"])
def list_contacts(request: HttpRequest) -> s.ContactsOut:
    """My contacts (with subscription, groups and presence), the requests waiting for me, and my blocks."""
    return _contacts(_user(request))


@api.post("/contacts", response={201: s.ContactOut, **LIMITED}, tags=["contacts"])
def add_contact(request: HttpRequest, payload: s.ContactIn) -> Status[s.ContactOut]:
    """Ask someone to become a contact (if they already asked me, this accepts)."""
    user = _user(request)
    account_actions.request_subscription(user, payload.jid, message=payload.message)
    return Status(201, _contact(user, payload.jid))


@api.post("/contacts/{jid}/accept", response={200: s.ContactOut, **ERRORS}, tags=["contacts"])
def accept_contact(request: HttpRequest, jid: str) -> s.ContactOut:
    user = _user(request)
    account_actions.accept_subscription(user, jid)
    return _contact(user, jid)


@api.post("/contacts/{jid}/decline", response={204: None, **ERRORS}, tags=["contacts"])
def decline_contact(request: HttpRequest, jid: str) -> Status[None]:
    account_actions.decline_subscription(_user(request), jid)
    return Status(204, None)


@api.delete("/contacts/{jid}", response={204: None, **ERRORS}, tags=["contacts"])
def remove_contact(request: HttpRequest, jid: str) -> Status[None]:
    """Remove a contact or withdraw my request; presence stops both ways."""
    account_actions.remove_contact(_user(request), jid)
    return Status(204, None)


@api.post("/contacts/{jid}/block", response={204: None, **ERRORS}, tags=["contacts"])
def block(request: HttpRequest, jid: str) -> Status[None]:
    """Block a person (user@domain) or a whole server (domain)."""
    account_actions.block_jid(_user(request), jid)
    return Status(204, None)


@api.post("/contacts/{jid}/unblock", response={204: None, **ERRORS}, tags=["contacts"])
def unblock(request: HttpRequest, jid: str) -> Status[None]:
    account_actions.unblock_jid(_user(request), jid)
    return Status(204, None)


# --- Conversations and messages ---------------------------------------------------------------------------


@api.get("/conversations", response={200: list[s.ConversationOut], **ERRORS}, tags=["messages"])
def list_conversations(request: HttpRequest, limit: int | None = None) -> list[s.ConversationOut]:
    """My conversations, the ones I pinned first, then by most recent activity, with unread counts, the last
    message and my own settings (muted, pinned, marked unread)."""
    if limit is not None and limit < 1:
        raise InvalidArgument("limit must be a whole number, 1 or more.")
    return [s.conversation_out(row) for row in actions.conversations_for(_user(request), limit=limit)]


@api.patch("/conversations/{conversation_id}", response={200: s.ConversationOut, **ERRORS}, tags=["messages"])
def update_conversation(
    request: HttpRequest, conversation_id: str, payload: s.ConversationSettingsIn
) -> s.ConversationOut:
    """Change my own settings for a conversation: `muted`, `pinned`, `marked_unread` (only those given). Nobody
    else sees them; my web tabs and streams hear of it (a `conversation` event, change `updated`)."""
    user = _user(request)
    mine = membership(user, conversation_id)
    if payload.muted is not None:
        set_muted(user, mine.conversation_id, payload.muted)
    if payload.pinned is not None:
        set_pinned(user, mine.conversation_id, payload.pinned)
    if payload.marked_unread is not None:
        set_marked_unread(user, mine.conversation_id, payload.marked_unread)
    found = next((row for row in actions.conversations_for(user) if row.id == mine.conversation_id), None)
    if found is None:  # left meanwhile
        raise Http404
    return s.conversation_out(found)


@api.get("/conversations/{conversation_id}/messages", response={200: s.MessagesOut, **ERRORS}, tags=["messages"])
def list_messages(
    request: HttpRequest,
    conversation_id: str,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 100,
) -> s.MessagesOut:
    """Messages oldest first. `after_seq=N`: the ones after N (catch-up; ask again from the last seq while a
    page comes back full). `before_seq=N`: the page just before N (scrolling up). Neither: the newest page."""
    user = _user(request)
    if after_seq is not None and before_seq is not None:
        raise InvalidArgument("Give after_seq or before_seq, not both.")
    if after_seq is not None:
        rows = actions.messages_after(user, conversation_id, after_seq, limit=limit)
    else:
        rows = actions.messages_before(user, conversation_id, before_seq, limit=limit)
    return s.MessagesOut(messages=[s.message_out(m, user.jid) for m in rows])


@api.post("/files", response={201: s.UploadOut, 415: s.ErrorOut, **LIMITED}, tags=["messages"])
def upload_file(
    request: HttpRequest, file: File[UploadedFile], conversation: Form[int | None] = None
) -> Status[s.UploadOut]:
    """Upload one file (multipart `file`; `conversation` optional, then you must be in it) to send with a message:
    the same checks as the composer's (size, your quota, the type by its content). 415 (or 413) says why a file
    is refused."""
    attachment = files.store_upload(_user(request), file, conversation_id=conversation)
    return Status(
        201, s.UploadOut(**{k: v for k, v in files.as_json(attachment).items() if k in s.UploadOut.model_fields})
    )


@api.get("/files/{token}", response={200: None, **ERRORS}, tags=["messages"])
def download_file(request: HttpRequest, token: str) -> HttpResponse:
    """A file of a message you can see (or your own upload), as the conversation's pages serve it: the same
    headers, and a file shared from another server is fetched the first time."""
    request.user = _user(request)
    return files_views.serve(request, token, "")


@api.post("/messages", response={200: s.MessageOut, 201: s.MessageOut, **LIMITED}, tags=["messages"])
async def post_message(request: HttpRequest, payload: s.MessageIn) -> Status[s.MessageOut]:
    """Send a message to a person (`to` = their JID) or a conversation (`to` = its id). 201 with the stored
    message; a retry with the same `client_id` is not stored again and gets 200 with the same message."""
    user = _user(request)
    # Async, so that concurrent sends of this process are stored together (chat.batching).
    send = SendRequest(user, payload.to, payload.body, payload.client_id, payload.reply_to, payload.attachments)
    result = await batching.send(send)
    if isinstance(result, Exception):
        raise result
    if result.created:  # just stored: everything it shows is at hand
        return Status(201, s.message_out(result.message, user.jid))
    return Status(200, await database_sync_to_async(s.message_out)(result.message, user.jid))


def _message(user: User, conversation_id: str, seq: str) -> s.MessageOut:
    number = parse_seq(seq)
    page = actions.messages_after(user, conversation_id, max(number - 1, 0), limit=1)
    if not page or page[0].seq != number:
        raise NoSuchMessage(number)
    return s.message_out(page[0], user.jid)


@api.post("/conversations/{conversation_id}/read", response={200: s.MarkerOut, **ERRORS}, tags=["messages"])
def read(request: HttpRequest, conversation_id: str, payload: s.MarkerIn) -> s.MarkerOut:
    """Mark everything up to `seq` read (tells the others, unless I turned read markers off)."""
    seq = actions.mark_read(_user(request), conversation_id, payload.seq)
    return s.MarkerOut(conversation=int(conversation_id), seq=seq)


@api.post("/conversations/{conversation_id}/delivered", response={200: s.MarkerOut, **ERRORS}, tags=["messages"])
def delivered(request: HttpRequest, conversation_id: str, payload: s.MarkerIn) -> s.MarkerOut:
    """Mark everything up to `seq` delivered to this client."""
    seq = actions.mark_delivered(_user(request), conversation_id, payload.seq)
    return s.MarkerOut(conversation=int(conversation_id), seq=seq)


@api.get("/conversations/{conversation_id}/messages/{seq}", response={200: s.MessageOut, **ERRORS}, tags=["messages"])
def get_message(request: HttpRequest, conversation_id: str, seq: str) -> s.MessageOut:
    return _message(_user(request), conversation_id, seq)


@api.patch(
    "/conversations/{conversation_id}/messages/{seq}", response={200: s.MessageOut, **LIMITED}, tags=["messages"]
)
def edit(request: HttpRequest, conversation_id: str, seq: str, payload: s.EditIn) -> s.MessageOut:
    """Change the text of one of my messages."""
    user = _user(request)
    actions.edit_message(user, conversation_id, seq, payload.body)
    return _message(user, conversation_id, seq)


@api.delete(
    "/conversations/{conversation_id}/messages/{seq}", response={200: s.MessageOut, **ERRORS}, tags=["messages"]
)
def delete(request: HttpRequest, conversation_id: str, seq: str) -> s.MessageOut:
    """Delete one of my messages: it stays as a tombstone (empty body, `deleted` true), so seqs never gap."""
    user = _user(request)
    actions.delete_message(user, conversation_id, seq)
    return _message(user, conversation_id, seq)


@api.post(
    "/conversations/{conversation_id}/messages/{seq}/reactions",
    response={200: s.MessageOut, **LIMITED},
    tags=["messages"],
)
def react(request: HttpRequest, conversation_id: str, seq: str, payload: s.ReactionIn) -> s.MessageOut:
    """Add my reaction: one emoji, or a short :name:."""
    user = _user(request)
    actions.react(user, conversation_id, seq, payload.emoji)
    return _message(user, conversation_id, seq)


@api.delete(
    "/conversations/{conversation_id}/messages/{seq}/reactions/{emoji}",
    response={200: s.MessageOut, **LIMITED},
    tags=["messages"],
)
def unreact(request: HttpRequest, conversation_id: str, seq: str, emoji: str) -> s.MessageOut:
    user = _user(request)
    actions.unreact(user, conversation_id, seq, emoji)
    return _message(user, conversation_id, seq)


# --- Errors -----------------------------------------------------------------------------------------------


def error_response(request: HttpRequest, error: ApiError) -> HttpResponse:
    response = api.create_response(request, error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _domain_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, describe(exc))


for _cls in DOMAIN_ERRORS:
    api.add_exception_handler(_cls, _domain_error)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    message = "Send a valid API token as 'Authorization: Bearer <token>' (get one from POST /api/v1/token)."
    error = ApiError(401, "unauthenticated", message, {"WWW-Authenticate": 'Bearer realm="imweb"'})
    return error_response(request, error)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if isinstance(cause, BodyTooLarge):
        return _domain_error(request, cause)
    if exc.status_code == 400:
        return error_response(request, ApiError(400, "invalid_json", "The request body is not valid JSON."))
    return error_response(request, ApiError(exc.status_code, "http_error", str(exc)))


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _domain_error(request, BodyTooLarge(body_max_bytes()))


def _field_name(loc: tuple | list) -> str:
    # ninja locates body fields as ("body", <parameter name>, field, ...) and others as ("query", name).
    parts = list(loc)[2:] if loc and loc[0] == "body" else list(loc)[1:]
    return ".".join(str(part) for part in parts)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = [{"field": _field_name(e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors]
    names = ", ".join(sorted({d["field"] for d in details if d["field"]})) or "the request"
    error = ApiError(422, "invalid_request", f"Check these fields: {names}.", details=details)
    return error_response(request, error)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, ApiError(404, "not_found", "There is no such thing here."))


@api.exception_handler(Exception)
def _internal(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("API request %s %s failed", request.method, request.path)
    return error_response(request, ApiError(500, "internal_error", "Something went wrong on the server."))


def not_found_view(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any /api/v1/ path no endpoint matches (an empty id, a typo): the same JSON 404 as everything else."""
    return error_response(request, ApiError(404, "not_found", "There is no such thing here."))
