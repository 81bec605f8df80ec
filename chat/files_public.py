"""Links to a sent file for people on other servers: `GET /files/s/<signed>/<name>`, opened without a session.

Someone on another XMPP server has no account here, so the file goes to them as a link (XEP-0066) that carries
its own permission: the attachment's token signed with the site's SECRET_KEY (a salt of its own, so no other
signed value of the site is accepted here) and a timestamp. It is as unguessable as the token and lasts
IMWEB_SHARED_LINK_DAYS days; after that, or once the message is deleted (its files go with it), or with any
change to the link, the answer is the same 404 as for a file that never existed.
"""

from __future__ import annotations

import os
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from chat import files_views
from chat.models import Attachment, Message

SALT = "imweb.chat.files_public.shared"
DEFAULT_LINK_DAYS = 7


def link_days() -> int:
    """How long a shared link opens the file, in days (IMWEB_SHARED_LINK_DAYS, default 7)."""
    configured = getattr(settings, "IMWEB_SHARED_LINK_DAYS", None)
    if configured is None:
        configured = os.environ.get("IMWEB_SHARED_LINK_DAYS") or DEFAULT_LINK_DAYS
    return max(1, int(configured))


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def shared_url(attachment: Attachment) -> str:
    """The absolute link (IMWEB_SITE_URL) that opens this sent file for anyone who has it, for link_days()."""
    signed = _signer().sign(attachment.token)
    return f"{settings.IMWEB_SITE_URL}/files/s/{signed}/{quote(attachment.name, safe='')}"


def shared_files(message: Message) -> list[tuple[str, str]]:
    """(shared_url, name) of each file of `message`, oldest first: what goes to its remote recipients."""
    return [(shared_url(attachment), attachment.name) for attachment in message.files]


def attachment_for(signed: str) -> Attachment | None:
    """The sent, stored attachment a shared link names, or None when the link is expired, altered or unknown."""
    try:
        token = _signer().unsign(signed, max_age=timedelta(days=link_days()))
    except signing.BadSignature:  # SignatureExpired is one too
        return None
    return (
        Attachment.objects.filter(token=token, message__isnull=False, message__deleted_at__isnull=True)
        .exclude(file="")
        .first()
    )


def file_response(attachment: Attachment) -> HttpResponse:
    """The file as /files/<token>/<name> serves it (chat.files_views: its type, inline only for raster pictures,
    never sniffed, sandboxed), except that other sites may embed it: the web client of the person it was sent to
    runs on their own server's origin."""
    try:
        handle = attachment.file.storage.open(attachment.file.name, "rb")
    except FileNotFoundError:
        raise Http404("No such file.") from None
    response = FileResponse(handle, content_type=files_views._served_type(attachment))
    response["Content-Disposition"] = files_views.content_disposition(attachment)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = files_views.FILE_CSP
    response["Cache-Control"] = "private"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_http_methods(["GET", "HEAD"])
def shared_file(request: HttpRequest, signed: str, name: str) -> HttpResponse:
    """Serve a sent file to whoever holds a valid shared link (the name in the path is only for people)."""
    attachment = attachment_for(signed)
    if attachment is None:
        raise Http404("No such file.")
    return file_response(attachment)
