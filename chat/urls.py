"""The messenger's URLs: the home, conversations and their history, message changes, Requests and rooms."""

from django.urls import path

from chat import views

urlpatterns = [
    path("", views.home, name="home"),
    path("_/topbar", views.topbar, name="topbar"),
    path("chat/new", views.new_chat, name="chat_new"),
    path("chat/new/people", views.new_chat_people, name="chat_new_people"),
    path("rooms/new", views.create_room, name="room_create"),
    path("c/<int:conversation_id>/", views.conversation, name="conversation"),
    path("c/<int:conversation_id>/messages", views.history, name="conversation_messages"),
    path("c/<int:conversation_id>/around/<int:seq>", views.around, name="conversation_around"),
    path("c/<int:conversation_id>/m/<int:seq>/edit", views.edit_message, name="message_edit"),
    path("c/<int:conversation_id>/m/<int:seq>/delete", views.delete_message, name="message_delete"),
    path("c/<int:conversation_id>/m/<int:seq>/react", views.react, name="message_react"),
    path("c/<int:conversation_id>/accept", views.accept_request, name="conversation_accept"),
    path("c/<int:conversation_id>/block", views.block_request, name="conversation_block"),
    path("c/<int:conversation_id>/invite", views.invite, name="room_invite"),
    path("c/<int:conversation_id>/remove", views.remove_member, name="room_remove"),
    path("c/<int:conversation_id>/leave", views.leave, name="room_leave"),
    path("c/<int:conversation_id>/rename", views.rename, name="room_rename"),
    path("c/<int:conversation_id>/topic", views.set_topic, name="room_topic"),
    path("c/<int:conversation_id>/mute", views.mute, name="conversation_mute"),
    path("c/<int:conversation_id>/pin", views.pin, name="conversation_pin"),
    path("c/<int:conversation_id>/unread", views.mark_unread, name="conversation_unread"),
]
