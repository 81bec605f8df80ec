"""The Jinja2 environment of the partials that every message passes through (templates/jinja2/chat/): a message,
its status line, a conversation-list row. They are rendered once per new message for everyone who sees them
(chat.delivery), so their cost is the delivery path's: Jinja2 compiles a template to Python and renders these in
a tenth of the time of Django's template language (measured: 1.4 ms → 0.15 ms for a message, bench/RESULTS.md).
Pages written in Django's language include them through the tags in chat.templatetags.chat_rendering, so each
thing on screen still has exactly one template.

Autoescaping is on, as in every Django template; values marked safe (the sanitised message HTML, chat.rendering)
pass as they are.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache

from django.template.defaultfilters import slugify
from django.urls import reverse
from django.utils import dateformat, formats
from django.utils.timezone import get_current_timezone, template_localtime
from django.utils.translation import get_language
from jinja2 import Environment
from markupsafe import Markup

from chat import rendering


def _date(value: datetime | None, format_string: str) -> str:
    """Django's `date` filter: the same formats (and named ones such as DATETIME_FORMAT), in the current zone."""
    if value is None:
        return ""
    return _formatted(value, format_string, get_current_timezone(), get_language())


@lru_cache(maxsize=512)
def _formatted(value: datetime, format_string: str, zone: tzinfo, language: str) -> str:
    # Kept: the messages stored together share their timestamp, and each shows it three ways.
    local = template_localtime(value)
    # The two formats every message shows, without dateformat's general (and slow) machinery.
    if format_string == "c":
        return local.isoformat()
    if format_string == "H:i":
        return local.strftime("%H:%M")
    if format_string.isupper():
        return formats.date_format(local, format_string)
    return dateformat.format(local, format_string)


def environment(**options: object) -> Environment:
    # Always escaping, whatever the settings say: these partials show what strangers wrote.
    options.pop("autoescape", None)
    env = Environment(autoescape=True, **options)  # type: ignore[arg-type]
    env.filters.update(
        {
            "message_html": lambda text: rendering.message_html(text, linkify=True),
            "message_html_plain": lambda text: rendering.message_html(text, linkify=False),
            "message_preview": lambda text, limit=80: rendering.preview_text(text, int(limit)),
            "date": _date,
            "slugify": slugify,
        }
    )
    env.globals["url"] = url
    env.globals["unread_badge"] = lambda pk, unread: Markup(unread_badge(pk, unread))  # noqa: S704  (ints only)
    return env


# Two numbers no id has: reversing a route with them once gives its shape, and every later URL of that route is
# that shape with the real ids put in (reverse() itself costs tens of microseconds, several times per message).
_PROBES = (9_876_543_201, 9_876_543_202, 9_876_543_203)
_shapes: dict[str, tuple[str, int]] = {}


def url(name: str, *args: int) -> str:
    """`reverse(name, args=args)` for routes whose arguments are ids (ints)."""
    shape = _shapes.get(name)
    if shape is None or shape[1] != len(args):
        probed = reverse(name, args=_PROBES[: len(args)])
        for n, probe in enumerate(_PROBES[: len(args)]):
            probed = probed.replace(str(probe), f"{{{n}}}")
        shape = _shapes[name] = (probed, len(args))
    return shape[0].format(*(int(arg) for arg in args))


def unread_badge(conversation_id: int, unread: int) -> str:
    """A conversation's unread count as its list row shows it (static/js/chat.js sums them for the title); the
    same markup rides alone on pushes that move only the count. Numbers only, so nothing needs escaping."""
    count = int(unread)
    hidden = "" if count else " hidden"
    label = '<span class="visually-hidden"> unread</span>' if count else ""
    return (
        f'<span id="unread-{int(conversation_id)}" class="convrow__unread badge" data-unread="{count}"'
        f' title="{count} unread"{hidden}>{count}{label}</span>'
    )
