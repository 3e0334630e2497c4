"""Django admin's EndUser pages (memories.admin): additional_attributes through the register
form's validation, never raw JSON that jsonb cannot hold."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from memories.models import EndUser


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "x" * 16))
    return client


def add_data(attributes: str) -> dict[str, str]:
    return {"email": "ann@example.com", "timezone": "", "additional_attributes": attributes}


@pytest.mark.parametrize(
    ("attributes", "says"),
    [
        ('{"note": "a\\u0000b"}', "U+0000"),
        ('{"size": 1e999}', "must be finite"),
        ('{"aliases": "Annie"}', '"aliases" is a list'),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_additional_attributes_are_refused_in_words(admin_client, attributes, says):
    response = admin_client.post(reverse("admin:memories_enduser_add"), add_data(attributes))
    assert response.status_code == 200  # the form again, with its error
    errors = " ".join(response.context["adminform"].form.errors["additional_attributes"])
    assert says in errors
    assert not EndUser.objects.exists()


def test_good_additional_attributes_are_saved(admin_client):
    response = admin_client.post(
        reverse("admin:memories_enduser_add"), add_data('{"plan": "pro", "aliases": ["Annie"]}')
    )
    assert response.status_code == 302
    saved = EndUser.objects.get(email="ann@example.com")
    assert saved.additional_attributes == {"plan": "pro", "aliases": ["Annie"]}
