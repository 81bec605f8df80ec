from django.urls import path

from accounts import export_views, views

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/privacy/", views.privacy, name="privacy"),
    path("profile/avatar/", views.upload_avatar, name="avatar_upload"),
    path("profile/avatar/remove/", views.remove_avatar, name="avatar_remove"),
    path("avatar/<str:username>/", views.avatar, name="avatar"),
    path("delete/", views.delete_account, name="account_delete"),
    path("sessions/<int:session_id>/sign-out/", views.sign_out_session, name="usersession_sign_out"),
    path("data/", export_views.data_export, name="data_export"),
    path("data/status/", export_views.data_export_status, name="data_export_status"),
    path("data/<str:token>/download/", export_views.data_export_download, name="data_export_download"),
]
