"""The only code that changes chat state. Each action validates, authorises (only a conversation's current
participants may read or write it), writes in one transaction, and wakes the affected users' sockets on commit.
Views, consumers, the JSON API, federation and commands call these. The delivery contract is written down in
`chat.actions.messages`."""

from chat.actions.conversations import (
    ConversationSummary,
    accept_conversation_request,
    conversations_for,
    create_room,
    invite,
    leave,
    remove_member,
    rename_room,
    set_topic,
)
from chat.actions.messages import (
    SendRequest,
    Sent,
    clean_emoji,
    delete_message,
    direct_key,
    edit_message,
    has_reacted,
    mark_delivered,
    mark_read,
    messages_after,
    messages_before,
    react,
    receive_remote_message,
    send_message,
    send_messages,
    unreact,
)
from chat.actions.search import SearchHit, search_messages
from chat.actions.typing import set_typing

__all__ = [
    "ConversationSummary",
    "SearchHit",
    "SendRequest",
    "Sent",
    "accept_conversation_request",
    "clean_emoji",
    "conversations_for",
    "create_room",
    "delete_message",
    "direct_key",
    "edit_message",
    "has_reacted",
    "invite",
    "leave",
    "mark_delivered",
    "mark_read",
    "messages_after",
    "messages_before",
    "react",
    "receive_remote_message",
    "remove_member",
    "rename_room",
    "search_messages",
    "send_message",
    "send_messages",
    "set_topic",
    "set_typing",
    "unreact",
]
