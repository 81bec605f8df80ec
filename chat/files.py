"""Files people share in conversations: checking an upload (size, the person's quota, its type by content),
storing it as a `chat.models.Attachment`, who may see it, and the URLs it is served at (chat.files_views).

An upload's type is found from its bytes, never from its name: Pillow decides whether it is a picture (PNG, JPEG,
GIF, WebP), the `filetype` package recognises the other formats people share (documents, archives, audio,
video), and valid UTF-8 without NUL bytes is text. Web pages, SVG, any XML, programs and anything unrecognised
are refused with a message that names the file and says why, so a shared file can never run script in a browser
or be mistaken for something it is not. Location (the EXIF GPS block) is stripped from pictures before storing.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import struct
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

# `filetype` is a small pure-Python signature matcher with no native dependency (unlike libmagic bindings),
# covering the document, archive, audio and video formats accepted below; it only reads the first bytes.
import filetype
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.models import User
from chat.access import membership
from chat.errors import ChatError, NotFound
from chat.models import Attachment
from imweb import ratelimit as counters

MAX_PIXELS = 40_000_000  # a picture larger than this is refused: decoding it could take gigabytes of memory
HEAD_BYTES = 8192  # what the type detectors read
UNSENT_LIFETIME = timedelta(hours=24)  # an upload never sent is removed after this (chat.tasks)
MiB = 1024 * 1024
logger = logging.getLogger(__name__)

# Pillow's name of each picture format imweb shows inline, and its MIME type.
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
INLINE_TYPES = frozenset(IMAGE_TYPES.values())

# Everything else that may be shared, as `filetype` names it, with the label shown on the card.
FILE_TYPES = {
    "application/pdf": "PDF document",
    "application/zip": "ZIP archive",
    "application/epub+zip": "EPUB book",
    "application/msword": "Word document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word document",
    "application/vnd.ms-excel": "Excel spreadsheet",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel spreadsheet",
    "application/vnd.ms-powerpoint": "PowerPoint presentation",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint presentation",
    "application/vnd.oasis.opendocument.text": "OpenDocument text",
    "application/vnd.oasis.opendocument.spreadsheet": "OpenDocument spreadsheet",
    "application/vnd.oasis.opendocument.presentation": "OpenDocument presentation",
    "application/gzip": "gzip archive",
    "application/x-bzip2": "bzip2 archive",
    "application/x-xz": "xz archive",
    "application/x-7z-compressed": "7z archive",
    "application/x-tar": "tar archive",
    "audio/mpeg": "MP3 audio",
    "audio/ogg": "Ogg audio",
    "audio/mp4": "M4A audio",
    "audio/aac": "AAC audio",
    "audio/x-wav": "WAV audio",
    "audio/x-flac": "FLAC audio",
    "video/mp4": "MP4 video",
    "video/x-m4v": "MP4 video",
    "video/webm": "WebM video",
    "video/quicktime": "QuickTime video",
}
TEXT_TYPES = {"text/plain": "Text", "text/csv": "CSV table", "text/markdown": "Markdown text"}
IMAGE_LABELS = {
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "image/gif": "GIF image",
    "image/webp": "WebP image",
}
PROGRAM_TYPES = frozenset(
    {
        "application/x-msdownload",
        "application/x-executable",
        "application/vnd.microsoft.portable-executable",
        "application/x-shockwave-flash",
        "application/x-google-chrome-extension",
        "application/wasm",
        "application/x-deb",
        "application/x-rpm",
        "application/vnd.ms-cab-compressed",
    }
)

IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "jpe", "jfif", "gif", "webp"})
# Names a browser or desktop opens as a web page whatever their content.
WEB_PAGE_EXTENSIONS = frozenset({"html", "htm", "xhtml", "xht", "shtml", "mht", "mhtml", "svg", "svgz", "xml", "xsl"})
# Names Windows and desktops run on a double click whatever their content (scripts are text).
PROGRAM_EXTENSIONS = frozenset(
    "exe com scr pif msi msp bat cmd vbs vbe js jse wsf wsh ws ps1 psm1 hta cpl lnk reg jar apk app "
    "desktop appimage dll sys inf msc gadget application url".split()
)
_MARKUP = re.compile(rb"<(?:!doctype\s+html|html[\s>]|svg[\s>]|script[\s>]|iframe[\s>]|\?xml)", re.IGNORECASE)
_MARKUP_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<(?:[a-z!?])", re.IGNORECASE)

ACCEPT = ",".join(
    [
        *sorted(INLINE_TYPES),
        ".pdf,.zip,.epub,.doc,.docx,.xls,.xlsx,.ppt,.pptx,.odt,.ods,.odp,.gz,.tgz,.bz2,.xz,.7z,.tar",
        "audio/*,video/mp4,video/webm,video/quicktime,.mp3,.ogg,.opus,.m4a,.wav,.flac,.mp4,.m4v,.webm,.mov",
        "text/plain,text/csv,text/markdown,.txt,.csv,.md,.markdown,.log",
    ]
)


class FileRefused(ChatError):
    """A file that cannot be shared; str() says why in words a person understands. `status` is the HTTP answer:
    413 too large (or no room left), 415 a type imweb does not share, 400 anything else (remote fetches: 502 the
    other server failed, 413 too large, 403 refused)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class UploadsTooFast(FileRefused):
    """Too many uploads in a short time (IMWEB_UPLOAD_RATE_LIMITS); `retry_after` is in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"You are uploading files too fast. Try again in {retry_after} {unit}.", status=429)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FileLimits:
    """What the composer shows before an upload: the size limit, the quota and what is left of it."""

    max_file_bytes: int
    quota_bytes: int
    used_bytes: int
    left_bytes: int
    accept: str
    summary: str


@dataclass(frozen=True)
class Checked:
    """An upload's type as found from its content, and its (possibly re-saved) bytes when they changed."""

    kind: str
    content_type: str
    width: int | None = None
    height: int | None = None
    data: bytes | None = None


# --- Sizes and labels -----------------------------------------------------------------------------------------


def size_label(size: int) -> str:
    """A size as people read it: "812 bytes", "4.2 KB", "31 MB", "1 GB" (binary units, one decimal below 10)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return f"{text.removesuffix('.0')} {unit}"


def _size_against(size: int, limit: int) -> str:
    """`size` labelled so it never reads the same as the `limit` it exceeds ("25.3 MB", not "25 MB")."""
    label = size_label(size)
    if label == size_label(limit):
        return f"{size / MiB:.1f} MB" if size >= MiB else f"{size:,} bytes"
    return label


def type_label(content_type: str) -> str:
    """The kind of file in words, for a card: "PDF document", "JPEG image", "Text"; "File" when unknown."""
    base = content_type.split(";", 1)[0].strip()
    return IMAGE_LABELS.get(base) or FILE_TYPES.get(base) or TEXT_TYPES.get(base) or "File"


def limits_for(user: User) -> FileLimits:
    """The limits that apply to `user`'s next upload, with an `accept` list for a file input and a summary."""
    max_bytes = settings.IMWEB_MAX_FILE_BYTES
    quota = settings.IMWEB_FILE_QUOTA_BYTES
    used = used_bytes(user)
    left = max(0, quota - used)
    if left == 0:
        summary = f"No room left of your {size_label(quota)} for files"
    else:
        summary = f"Up to {size_label(min(max_bytes, left))} per file · {size_label(left)} left"
    return FileLimits(max_bytes, quota, used, left, ACCEPT, summary)


def used_bytes(user: User) -> int:
    """What all of `user`'s attachments take, sent or not."""
    return Attachment.objects.filter(uploader=user).aggregate(total=Sum("size"))["total"] or 0


# --- URLs -----------------------------------------------------------------------------------------------------

_RESERVED_SEGMENTS = frozenset({"", "thumb", "remove"})


def file_url(attachment: Attachment) -> str:
    """Where the file is served: /files/<token>/<name> (the name is for people and for saving; the token decides)."""
    segment = quote(attachment.name, safe="")
    if segment in _RESERVED_SEGMENTS or segment.startswith("."):
        segment = f"file{segment}" if segment.startswith(".") else "file"
    return f"/files/{attachment.token}/{segment}"


def thumbnail_url(attachment: Attachment) -> str:
    """Where the thumbnail is served, or "" until it is made."""
    return f"/files/{attachment.token}/thumb" if attachment.thumbnail else ""


def as_json(attachment: Attachment) -> dict[str, object]:
    """The upload's answer to the browser (POST /files/)."""
    return {
        "token": attachment.token,
        "name": attachment.name,
        "size": attachment.size,
        "size_label": size_label(attachment.size),
        "content_type": attachment.content_type,
        "kind": attachment.kind,
        "url": file_url(attachment),
        "thumbnail_url": thumbnail_url(attachment),
    }


# --- Who may see a file ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def visible_attachment(user: User, token: object) -> Attachment:
    """The attachment `token` names if `user` may see it, else NotFound (the same for a token that does not exist):
    an unsent upload only to its uploader; a sent one to the current participants of its conversation; none of a
    deleted message."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token) or not getattr(user, "is_authenticated", False):
        raise NotFound
    attachment = Attachment.objects.select_related("message").filter(token=token).first()
    if attachment is None:
        raise NotFound
    if attachment.message is None:
        if attachment.uploader_id is None or attachment.uploader_id != user.pk:
            raise NotFound
        return attachment
    if attachment.message.deleted_at is not None:
        raise NotFound
    membership(user, attachment.message.conversation_id)
    return attachment


def remove_unsent(user: User, token: object) -> None:
    """Remove an upload of `user`'s that was not sent yet (a cancelled upload); NotFound for anything else."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise NotFound
    removed, _ = Attachment.objects.filter(token=token, uploader=user, message__isnull=True).delete()
    if not removed:
        raise NotFound


def remove_for_message(message: object) -> int:
    """Remove every attachment of a message (deleted by its sender or a moderator); their files go too
    (chat.signals). Returns how many there were."""
    removed, _ = Attachment.objects.filter(message=message).delete()
    return removed


def sweep_unsent(now: object | None = None) -> int:
    """Remove uploads that were never sent, UNSENT_LIFETIME after they were made; returns how many."""
    cutoff = (now or timezone.now()) - UNSENT_LIFETIME
    removed, _ = Attachment.objects.filter(message__isnull=True, remote_url="", created_at__lt=cutoff).delete()
    return removed


# --- Storing an upload ----------------------------------------------------------------------------------------


def upload_limits() -> tuple[tuple[int, int], ...]:
    """(count, seconds) pairs: IMWEB_UPLOAD_RATE_LIMITS (imweb.settings)."""
    return tuple(getattr(settings, "IMWEB_UPLOAD_RATE_LIMITS", ()))


def clean_name(name: object) -> str:
    """The name to show and offer for saving: no folders, no control or direction-changing characters (which
    could make "photo\u202egnp.exe" read as "photoexe.png"), at most 255 characters, keeping the extension."""
    text = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] not in "C" and c not in "\u2028\u2029")
    text = " ".join(text.split()).strip(" .") or "file"
    if len(text) > 255:
        stem, dot, ext = text.rpartition(".")
        text = (stem[: 254 - len(ext)] + dot + ext) if dot and len(ext) <= 16 else text[:255]
    return text


def _extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def check_size(name: str, size: int, user: User) -> None:
    """Refuse a file over IMWEB_MAX_FILE_BYTES, or over what is left of the person's quota."""
    limit = settings.IMWEB_MAX_FILE_BYTES
    if size > limit:
        raise FileRefused(
            f"{name} is {_size_against(size, limit)}; files can be up to {size_label(limit)}.", status=413
        )
    if size == 0:
        raise FileRefused(f"{name} is empty; there is nothing in it to share.")
    quota = settings.IMWEB_FILE_QUOTA_BYTES
    left = max(0, quota - used_bytes(user))
    if size > left:
        have = f"You have {size_label(left)} of your" if left else "You have nothing left of your"
        raise FileRefused(
            f"{have} {size_label(quota)} left for files; delete some messages with files to make room.", status=413
        )


def _a(label: str) -> str:
    return f"an {label}" if label[0] in "AEIOU" else f"a {label}"


def _described(content_type: str | None) -> str:
    """What a content is, for a refusal: "a PDF document", "text", "a BMP picture", "not a format imweb knows"."""
    if content_type is None:
        return "not a format imweb knows"
    if content_type in TEXT_TYPES:
        return "text"
    label = type_label(content_type)
    if label != "File":
        return _a(label)
    if content_type.startswith("image/"):
        return _a(content_type.removeprefix("image/").removeprefix("x-").removeprefix("vnd.").upper() + " picture")
    return f"a file of type {content_type}"


def _open_image(source: io.BytesIO | File, name: str) -> Image.Image | None:
    """The picture in `source` if Pillow reads it as PNG, JPEG, GIF or WebP and it is intact, else None; a
    picture too large to decode safely is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source.seek(0)
            image = Image.open(source)
            if image.format not in IMAGE_TYPES:
                return None
            if image.width * image.height > MAX_PIXELS:
                raise Image.DecompressionBombError("too many pixels")
            image.verify()
            source.seek(0)
            image = Image.open(source)  # verify() leaves the image unusable: open it again
            return image
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise FileRefused(
            f"{name} is a picture too large to show: more than {MAX_PIXELS // 1_000_000} million pixels.",
            status=413,
        ) from None
    except UnidentifiedImageError:
        return None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise FileRefused(f"{name} is a damaged or incomplete picture; please try another file.") from None


def _is_text(source: File) -> bool:
    """Valid UTF-8 (a byte-order mark allowed) with no NUL byte, read in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    source.seek(0)
    try:
        for chunk in _chunks(source):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _chunks(source: File) -> Iterable[bytes]:
    while chunk := source.read(64 * 1024):
        yield chunk


def identify(name: str, source: File) -> Checked:
    """The type of the upload from its content, or FileRefused saying why it cannot be shared."""
    extension = _extension(name)
    source.seek(0)
    head = source.read(HEAD_BYTES)
    program = f"{name} is a program; imweb does not share programs, which could harm the computer that opens them."
    image = _open_image(source, name)
    if image is not None:
        if extension in WEB_PAGE_EXTENSIONS:
            raise FileRefused(_web_page(name, _markup_kind(extension)), status=415)
        if extension in PROGRAM_EXTENSIONS:
            raise FileRefused(program, status=415)
        return _checked_image(image, name, source)
    guessed = filetype.guess_mime(head) if head else None
    if guessed is None and (_MARKUP.search(head) or _MARKUP_START.match(head)):
        kind = _markup_kind(extension, head)
        if extension in IMAGE_EXTENSIONS:
            raise FileRefused(f"{name} is not a picture: its content is {kind}.", status=415)
        raise FileRefused(_web_page(name, kind), status=415)
    text = guessed is None and _is_text(source)
    content_type = guessed or (_text_type(extension) if text else None)
    if extension in IMAGE_EXTENSIONS:
        raise FileRefused(f"{name} is not a picture: its content is {_described(content_type)}.", status=415)
    if extension in WEB_PAGE_EXTENSIONS:
        raise FileRefused(_web_page(name, _markup_kind(extension)), status=415)
    if content_type in PROGRAM_TYPES or extension in PROGRAM_EXTENSIONS:
        raise FileRefused(program, status=415)
    if content_type is None:
        raise FileRefused(
            f"{name} is not a kind of file imweb shares: it shares pictures, documents, archives, audio, video "
            "and text.",
            status=415,
        )
    if content_type not in FILE_TYPES and content_type not in TEXT_TYPES:
        raise FileRefused(
            f"{name} is {_described(content_type)}; imweb shares pictures (PNG, JPEG, GIF, WebP), documents, "
            "archives, audio, video and text.",
            status=415,
        )
    return Checked(Attachment.Kind.FILE, content_type)


def _markup_kind(extension: str, head: bytes = b"") -> str:
    """What markup a file is, in words: "an HTML page", "an SVG image", "an XML document"."""
    lowered = head.lower()
    if extension in ("svg", "svgz") or b"<svg" in lowered:
        return "an SVG image"
    if extension in ("xml", "xsl") or (
        lowered.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml") and b"<html" not in lowered
    ):
        return "an XML document"
    return "an HTML page"


def _web_page(name: str, kind: str) -> str:
    return f"{name} is {kind}; imweb does not share web pages or SVG images, which could run scripts."


def _text_type(extension: str) -> str:
    if extension == "csv":
        return "text/csv"
    if extension in ("md", "markdown"):
        return "text/markdown"
    return "text/plain"


GPS_IFD = 0x8825


def _checked_image(image: Image.Image, name: str, source: File) -> Checked:
    """A picture's type and size; re-saved without its location when it carries one (EXIF GPS, or XMP that
    mentions GPS), keeping the rest of its metadata (orientation included)."""
    content_type = IMAGE_TYPES[image.format]
    width, height = image.size
    data: bytes | None = None
    exif = image.getexif()
    xmp = image.info.get("xmp") or b""
    xmp_bytes = xmp.encode() if isinstance(xmp, str) else bytes(xmp)
    located = GPS_IFD in exif or b"GPS" in xmp_bytes
    if located and image.format in ("JPEG", "WEBP", "PNG"):
        exif.pop(GPS_IFD, None)
        options: dict[str, object] = {"exif": exif.tobytes()}
        if icc := image.info.get("icc_profile"):
            options["icc_profile"] = icc
        if xmp_bytes and b"GPS" not in xmp_bytes:
            options["xmp"] = xmp_bytes
        if image.format == "JPEG":
            options.update(quality="keep", subsampling="keep")
        elif image.format == "WEBP":
            options.update(lossless=bool(image.info.get("lossless")), quality=90)
            if getattr(image, "n_frames", 1) > 1:
                options["save_all"] = True
        out = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.save(out, format=image.format, **options)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombWarning):
            raise FileRefused(f"{name} is a damaged or incomplete picture; please try another file.") from None
        data = out.getvalue()
    return Checked(Attachment.Kind.IMAGE, content_type, width, height, data)


def charge_upload(user: User) -> None:
    """Count one upload against the person's IMWEB_UPLOAD_RATE_LIMITS, or UploadsTooFast."""
    limits = upload_limits()
    if limits:
        counters.charge("upload", user.pk, limits, refuse=UploadsTooFast)


def store_upload(user: User, upload: UploadedFile, *, conversation_id: int | str | None = None) -> Attachment:
    """Check and store one uploaded file as an unsent attachment of `user`'s; its thumbnail is made in the
    background once stored. FileRefused (why), UploadsTooFast, or NotFound for a conversation `user` is not in."""
    if conversation_id is not None:
        membership(user, conversation_id)
    name = clean_name(upload.name)
    check_size(name, upload.size or 0, user)
    charge_upload(user)
    checked = identify(name, upload)
    data = checked.data
    size = len(data) if data is not None else upload.size
    content: File = ContentFile(data) if data is not None else upload
    content.seek(0)
    attachment = Attachment(
        uploader=user,
        kind=checked.kind,
        name=name,
        content_type=checked.content_type,
        size=size,
        width=checked.width,
        height=checked.height,
    )
    attachment.file.save(name, content, save=False)
    try:
        with transaction.atomic():
            # One upload at a time per person past this point, so two at once cannot both take the last room.
            User.objects.select_for_update().filter(pk=user.pk).first()
            check_size(name, size, user)
            attachment.save()
            if attachment.is_image:
                transaction.on_commit(lambda: schedule_thumbnail(attachment.pk))
    except BaseException:
        attachment.file.storage.delete(attachment.file.name)
        raise
    return attachment


def schedule_thumbnail(attachment_pk: int) -> None:
    """Ask the Celery worker for the thumbnail; if the broker cannot be reached, the periodic sweep makes it."""
    from chat import tasks

    try:
        tasks.make_thumbnail.delay(attachment_pk)
    except Exception:  # noqa: BLE001 - a broker outage must not fail an upload that is already stored
        logger.warning("could not queue the thumbnail of attachment %s", attachment_pk)


# --- Thumbnails -----------------------------------------------------------------------------------------------

THUMBNAIL_SIZE = (480, 480)


def make_thumbnail(attachment_pk: int) -> bool:
    """Make the webp thumbnail of a picture (at most 480x480, EXIF orientation applied) and show it in every open
    tab of the conversation. Idempotent, and nothing happens for a removed attachment; a picture that cannot be
    decoded becomes a plain file card. Returns whether a thumbnail was made."""
    attachment = Attachment.objects.filter(pk=attachment_pk).first()
    if attachment is None or not attachment.is_image or not attachment.file or attachment.thumbnail:
        return False
    try:
        with attachment.file.open("rb") as source, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            if image.width * image.height > MAX_PIXELS:
                raise Image.DecompressionBombError("too many pixels")
            image.seek(0)
            image.draft("RGB", (THUMBNAIL_SIZE[0] * 2, THUMBNAIL_SIZE[1] * 2))
            image.load()
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")
            image.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
            out = io.BytesIO()
            image.save(out, format="WEBP", quality=80, method=4)
    except FileNotFoundError:
        return False
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        if Attachment.objects.filter(pk=attachment_pk).update(kind=Attachment.Kind.FILE):
            _show_change(attachment_pk)
        return False
    storage = attachment.thumbnail.storage
    wanted = attachment.thumbnail.field.generate_filename(attachment, "thumb.webp")
    stored = storage.save(wanted, ContentFile(out.getvalue()))
    if not Attachment.objects.filter(pk=attachment_pk, thumbnail="").update(thumbnail=stored):
        storage.delete(stored)  # removed meanwhile, or another run made it first
        return False
    _show_change(attachment_pk)
    return True


def _show_change(attachment_pk: int) -> None:
    """If the attachment's message was sent, every open tab of its conversation swaps the message for a new one."""
    from chat import delivery

    message = (
        Attachment.objects.filter(pk=attachment_pk, message__isnull=False)
        .values_list("message__conversation_id", "message__seq")
        .first()
    )
    if message is not None:
        delivery.message_changed(message[0], message[1], "attachment")


def missing_thumbnails(limit: int = 100) -> list[int]:
    """Pictures older than a minute that still have no thumbnail (their task was lost): for the sweep."""
    cutoff = timezone.now() - timedelta(minutes=1)
    return list(
        Attachment.objects.filter(kind=Attachment.Kind.IMAGE, thumbnail="", created_at__lt=cutoff)
        .exclude(file="")
        .order_by("-pk")
        .values_list("pk", flat=True)[:limit]
    )
