"""Template filters that show message bodies: `{{ message.body|message_html }}` for the conversation page,
`message_html_plain` for Requests (links not clickable), `message_preview` for one-line previews."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from chat import rendering

register = template.Library()


@register.filter(is_safe=True)
def message_html(text: str) -> SafeString:
    return rendering.message_html(text, linkify=True)


@register.filter(is_safe=True)
def message_html_plain(text: str) -> SafeString:
    return rendering.message_html(text, linkify=False)


@register.filter
def message_preview(text: str, limit: int = 80) -> str:
    return rendering.preview_text(text, int(limit))
