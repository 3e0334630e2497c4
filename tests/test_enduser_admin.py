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


def test_an_edit_keeps_the_stored_keys_it_leaves_alone(admin_client):
    # Keys registered from user_ids the runtime stored: padded, past what a person may type.
    stored_email, stored_id = " ann@example.com", " u_1" + "x" * 300
    person = EndUser.objects.create(email=stored_email, external_id=stored_id)
    url = reverse("admin:memories_enduser_change", args=[person.pk])
    form = admin_client.get(url).context["adminform"].form
    assert (form["email"].value(), form["external_id"].value()) == (stored_email, stored_id)
    data = {**add_data("{}"), "email": stored_email, "external_id": stored_id, "first_name": "Ann"}
    assert admin_client.post(url, data).status_code == 302
    person.refresh_from_db()
    assert (person.email, person.external_id, person.first_name) == (stored_email, stored_id, "Ann")
    # A key typed anew is trimmed and limited, as on the register page.
    assert admin_client.post(url, {**data, "external_id": " u_2 "}).status_code == 302
    person.refresh_from_db()
    assert person.external_id == "u_2"
    refused = admin_client.post(url, {**data, "external_id": "u" * 256})
    assert "An id you type is at most 255 characters" in refused.content.decode()
    person.refresh_from_db()
    assert person.external_id == "u_2"
