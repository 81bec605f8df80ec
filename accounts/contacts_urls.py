from django.urls import path

from accounts import contacts_views as views

urlpatterns = [
    path("", views.contacts_fragment, name="contacts"),
    path("add", views.add_contact, name="contact_add"),
    path("accept", views.accept_request, name="contact_accept"),
    path("decline", views.decline_request, name="contact_decline"),
    path("remove", views.remove_contact, name="contact_remove"),
    path("rename", views.rename_contact, name="contact_rename"),
    path("groups", views.set_groups, name="contact_groups"),
    path("block", views.block, name="contact_block"),
    path("unblock", views.unblock, name="contact_unblock"),
    path("blocked", views.blocklist, name="blocklist"),
    path("search", views.search, name="contact_search"),
    path("presence", views.set_presence, name="presence_set"),
]
