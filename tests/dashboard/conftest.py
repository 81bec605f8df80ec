"""An operator (a superuser, so every dashboard permission) and a browser client signed in as them."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def operator(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def staff(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client
