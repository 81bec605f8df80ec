from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_search_index(using: str, **kwargs: object) -> None:
    from django.db import connections

    from chat import search

    search.ensure_index(connections[using])


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import signals
        from chat import delivery, requests
        from federation import outbox

        # Blocks hide (and unblocks restore) strangers' first messages in Requests; a new name or picture also
        # reaches the people one shares a conversation with.
        signals.blocked.connect(requests.hide_blocked_requests, dispatch_uid="chat.requests.hide")
        signals.unblocked.connect(requests.restore_unblocked_requests, dispatch_uid="chat.requests.restore")
        signals.profile_viewers.connect(requests.conversation_members, dispatch_uid="chat.requests.members")

        # A migration that rebuilds chat_message on SQLite drops the search triggers: put them back (chat.search).
        post_migrate.connect(_ensure_search_index, sender=self, dispatch_uid="chat.search.ensure_index")
        # An attachment's files leave storage with its row (chat.signals).
        from chat import signals as chat_signals

        chat_signals.connect()
        # When a remote copy of a message moves (handed over, delivered, failed), its sender's screens show it.
        outbox.watch_hops(delivery.hops_changed)
