"""Shared files, mounted at /files/: uploads, the cancel of an upload, and serving files and thumbnails."""

from django.urls import path

from chat import files_views

urlpatterns = [
    path("", files_views.upload, name="file-upload"),
    path("<str:token>/remove", files_views.remove, name="file-remove"),
    path("<str:token>/thumb", files_views.thumbnail, name="file-thumbnail"),
    path("<str:token>/<path:name>", files_views.serve, name="file"),
]
