"""Template filters and tags that show chat content: `{{ message.body|message_html }}` for the conversation page,
`message_html_plain` for Requests (links not clickable), `message_preview` for one-line previews; and tags that
include the partials of the delivery path (Jinja2, chat.jinja) in pages: `{% chat_messages ... %}`,
`{% conversation_row ... %}`, `{% unread_badge id count %}`."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from chat import fragments, rendering

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


@register.simple_tag
def unread_badge(conversation_id: int, unread: int) -> SafeString:
    return mark_safe(fragments.unread_badge(conversation_id, unread))  # noqa: S308  (ints only, see chat.jinja)


@register.simple_tag
def chat_messages(
    items: list, conversation_id: int, plain: bool, viewer_jid: str | None, highlight: int | None = None
) -> SafeString:
    """Decorated messages (chat.queries.decorate), rendered by their one template (templates/jinja2/chat/)."""
    html = fragments.messages(conversation_id, items, plain=bool(plain), viewer_jid=viewer_jid, highlight=highlight)
    return mark_safe(html)  # noqa: S308  (an autoescaping template)


@register.simple_tag
def conversation_row(summary: object, open_id: int | None, viewer_jid: str) -> SafeString:
    return mark_safe(fragments.row(summary, viewer_jid=viewer_jid, open_id=open_id))  # noqa: S308  (autoescaping)
