"""Message search, mounted at /search."""

from django.urls import path

from chat import search_views

urlpatterns = [
    path("", search_views.search, name="search"),
]
