"""Operators look at conversations in the Django admin: who is in what, how busy it is. They change nothing
(every change goes through `chat.actions`), and message bodies are not shown: private messages stay private."""

from django.contrib import admin
from django.http import HttpRequest

from chat.models import Conversation, Message, Participant
from imweb.admin import ReadOnlyAdmin


class ParticipantInline(admin.TabularInline):
    model = Participant
    fields = ("jid", "role", "joined_at", "left_at", "last_read_seq", "last_delivered_seq", "is_request")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "name", "direct_key", "last_seq", "last_message_at", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "direct_key", "participants__jid")
    ordering = ("-last_message_at",)
    inlines = [ParticipantInline]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """Metadata only: the body's length, never its text."""

    list_display = ("conversation_id", "seq", "sender_jid", "length", "created_at", "edited_at", "deleted_at")
    fields = ("conversation", "seq", "sender_jid", "client_id", "length", "created_at", "edited_at", "deleted_at")
    readonly_fields = fields
    search_fields = ("sender_jid",)
    list_filter = ("created_at",)
    ordering = ("-created_at",)
    show_full_result_count = False  # COUNT(*) over every message ever sent is the slowest part of the page

    @admin.display(description="characters")
    def length(self, message: Message) -> int:
        return len(message.body)
