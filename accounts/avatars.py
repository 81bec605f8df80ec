"""Avatar checking and normalisation: any accepted upload becomes a 256x256 PNG with no metadata."""

from __future__ import annotations

import io
import warnings

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.errors import InvalidAvatar

AVATAR_SIZE = 256
ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "GIF": "GIF", "WEBP": "WebP"}
MAX_PIXELS = 40_000_000  # refuse decompression bombs long before Pillow's own 89 Mpx warning


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_avatar_size(size: int) -> None:
    limit = settings.AVATAR_MAX_BYTES
    if size > limit:
        raise InvalidAvatar(f"The image is {_megabytes(size)}; avatars can be at most {_megabytes(limit)}.")


def normalise_avatar(data: io.BufferedIOBase | io.BytesIO | object) -> bytes:
    """Validate an uploaded file and return PNG bytes: square-cropped, 256x256, re-encoded (drops EXIF/GPS)."""
    accepted = ", ".join(ACCEPTED_FORMATS.values())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(data)  # type: ignore[arg-type]
            if image.format not in ACCEPTED_FORMATS:
                raise InvalidAvatar(f"Avatars must be {accepted} images; this file is {image.format or 'unknown'}.")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidAvatar(f"The image is {width}x{height} pixels; that is too large to be an avatar.")
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidAvatar(f"This file is not an image we can read. Avatars must be {accepted} images.") from None
    except (OSError, SyntaxError, ValueError):
        raise InvalidAvatar("The image file is damaged or incomplete. Please try another file.") from None
    image = ImageOps.exif_transpose(image)
    image = image.convert("RGBA")
    image = ImageOps.fit(image, (AVATAR_SIZE, AVATAR_SIZE), method=Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
