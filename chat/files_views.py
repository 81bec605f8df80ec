"""The /files/ views: upload a file (JSON for the composer's script), cancel an upload, and serve files and
thumbnails to the people chat.files.visible_attachment allows, with headers that keep any file inert in a
browser (never sniffed, never run, downloaded unless it is a raster picture)."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.template.defaultfilters import escape
from django.views.decorators.http import require_http_methods, require_POST

from chat import files
from chat.errors import NotFound
from chat.files import FileRefused, UploadsTooFast
from chat.models import Attachment

# A multipart body carries more than the file: boundaries, headers and the other fields.
MULTIPART_OVERHEAD = 64 * 1024
FILE_CSP = "default-src 'none'; sandbox"


def _error(text: str, status: int, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": text}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _not_found() -> JsonResponse:
    return _error("There is no such file.", 404)


NOT_FOUND_PAGE = (
    '<!doctype html><html lang="en"><meta charset="utf-8"><title>There is no such file</title>'
    "<h1>There is no such file</h1><p>It was removed with its message, or it is not shared with you.</p></html>"
)


def _no_such_file(request: HttpRequest) -> HttpResponse:
    """The one answer to every file someone may not open, whatever the reason: a small page for a person who
    followed a link, JSON for a script."""
    if "application/json" in request.headers.get("Accept", ""):
        return _not_found()
    response = HttpResponse(NOT_FOUND_PAGE, status=404, content_type="text/html; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    """Store one file (`file`) as an unsent upload of the signed-in person, optionally for a `conversation`;
    201 with its JSON, or an error saying why (400/413/415, 404 for a conversation that is not theirs, 429)."""
    if not request.user.is_authenticated:
        return _error("Sign in to share files.", 403)
    limit = settings.IMWEB_MAX_FILE_BYTES
    declared = _declared_length(request)
    if declared > 2 * limit + MULTIPART_OVERHEAD:
        # Far too large: refused from its declared length, before the body is parsed into a file (anything
        # closer to the limit is parsed, so the refusal can name the file).
        return _error(f"This file is {files.size_label(declared)}; files can be up to {files.size_label(limit)}.", 413)
    uploads = request.FILES.getlist("file")
    if not uploads:
        return _error("Choose a file to share.", 400)
    if len(uploads) > 1:
        return _error("Send one file per upload.", 400)
    conversation = request.POST.get("conversation") or None
    try:
        attachment = files.store_upload(request.user, uploads[0], conversation_id=conversation)
    except NotFound as error:
        return _error(str(error), 404)
    except UploadsTooFast as error:
        return _error(str(error), 429, **{"Retry-After": str(error.retry_after)})
    except FileRefused as error:
        return _error(str(error), error.status if error.status in (400, 413, 415) else 400)
    return JsonResponse(files.as_json(attachment), status=201)


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


@require_POST
def remove(request: HttpRequest, token: str) -> HttpResponse:
    """Remove an upload of the signed-in person's that was not sent yet: 204, else 404."""
    if not request.user.is_authenticated:
        return _not_found()
    try:
        files.remove_unsent(request.user, token)
    except NotFound:
        return _not_found()
    return HttpResponse(status=204)


def _inert(response: HttpResponse) -> HttpResponse:
    """Headers every served file carries: never sniffed, never run (a sandbox with nothing allowed), kept only
    in the person's own browser."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cache-Control"] = "private"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Referrer-Policy"] = "no-referrer"
    return response


def content_disposition(attachment: Attachment) -> str:
    """`inline` for raster pictures, which browsers show and never run; a download for everything else, under
    the name it was shared with (RFC 6266: an ASCII fallback and the UTF-8 name)."""
    disposition = "inline" if attachment.content_type in files.INLINE_TYPES else "attachment"
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in attachment.name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(attachment.name, safe='')}"


def _served_type(attachment: Attachment) -> str:
    content_type = attachment.content_type or "application/octet-stream"
    if content_type.startswith("text/") and "charset" not in content_type:
        content_type += "; charset=utf-8"
    return content_type


def _refused_page(request: HttpRequest, error: FileRefused) -> HttpResponse:
    """Why a file shared from another server cannot be opened: 502 (its server failed), 413 (too large) or 403
    (refused), as JSON for a script and as a small page for a person."""
    status = {413: 413, 403: 403, 415: 403, 502: 502}.get(error.status, 502)
    if "application/json" in request.headers.get("Accept", ""):
        return _inert(_error(str(error), status))
    page = (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>This file cannot be opened</title>'
        f"<h1>This file cannot be opened</h1><p>{escape(str(error))}</p></html>"
    )
    response = HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "HEAD"])
def serve(request: HttpRequest, token: str, name: str) -> HttpResponse:
    """The file, to those who may see it; the same 404 for everyone else and for a token that does not exist.
    A file shared from another server is fetched the first time someone opens it."""
    try:
        attachment = files.visible_attachment(request.user, token)
    except NotFound:
        return _no_such_file(request)
    if attachment.is_remote and not attachment.file:
        from chat import remote_files

        try:
            attachment = remote_files.ensure_fetched(attachment)
        except FileRefused as error:
            return _refused_page(request, error)
    if not attachment.file:
        return _no_such_file(request)
    try:
        handle = attachment.file.storage.open(attachment.file.name, "rb")
    except FileNotFoundError:
        return _no_such_file(request)
    response = FileResponse(handle, content_type=_served_type(attachment))
    response["Content-Disposition"] = content_disposition(attachment)
    return _inert(response)


@require_http_methods(["GET", "HEAD"])
def thumbnail(request: HttpRequest, token: str) -> HttpResponse:
    """The webp thumbnail of a picture, to those who may see the picture; 404 until it is made."""
    try:
        attachment = files.visible_attachment(request.user, token)
    except NotFound:
        return _no_such_file(request)
    if not attachment.thumbnail:
        return _no_such_file(request)
    try:
        handle = attachment.thumbnail.storage.open(attachment.thumbnail.name, "rb")
    except FileNotFoundError:
        return _no_such_file(request)
    response = FileResponse(handle, content_type="image/webp")
    response["Content-Disposition"] = "inline"
    return _inert(response)
