from __future__ import annotations

import pytest
from django.urls import reverse

from memories.models import AuditEvent, EndUser
from memories.runtime.memories import insert_memory
from memories.users import agent_users


def register_url(agent) -> str:
    return reverse("memories:register", args=[agent.slug])


def test_an_unregistered_user_can_be_registered_from_their_page(editor_client, agent):
    insert_memory(agent, "ann@example.com", text="x", topics=[])
    page = editor_client.get(
        reverse("memories:user", args=[agent.slug]), {"user_id": "ann@example.com"}
    )
    assert "Register this user" in page.content.decode()
    form = editor_client.get(register_url(agent), {"user_id": "ann@example.com"})
    assert 'value="ann@example.com"' in form.content.decode()
    response = editor_client.post(
        register_url(agent),
        {
            "user_id": "ann@example.com",
            "email": "ann@example.com",
            "first_name": "Ann",
            "timezone": "Europe/Berlin",
            "additional_attributes": '{"plan": "pro"}',
        },
    )
    assert response.status_code == 302
    person = EndUser.objects.get()
    assert (person.first_name, person.timezone, person.additional_attributes) == (
        "Ann",
        "Europe/Berlin",
        {"plan": "pro"},
    )
    assert AuditEvent.objects.get().action == "user.registered"
    assert agent_users(agent).items[0].registered == person


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-email"}, "Enter an email address such as ann@example.com."),
        ({"email": ""}, "This field is required."),
        ({"email": "a@example.com", "timezone": "Mars/Olympus"}, "is not a time zone we know"),
        ({"email": "a@example.com", "additional_attributes": "[1, 2]"}, "a JSON object"),
        ({"email": "a@example.com", "additional_attributes": "{oops"}, "a JSON object"),
        (
            {"email": "a@example.com", "additional_attributes": '{"aliases": "annie"}'},
            "is a list of the other user_ids this person goes by",
        ),
        (
            {"email": "a@example.com", "additional_attributes": '{"aliases": ["", 3]}'},
            "is a list of the other user_ids this person goes by",
        ),
        (
            {"email": "a@example.com", "additional_attributes": '{"n": ' + "9" * 5_000 + "}"},
            "at most 4,300 digits",
        ),
    ],
)
def test_bad_registrations_are_refused_with_a_message(editor_client, agent, data, message):
    response = editor_client.post(register_url(agent), {"user_id": "a", **data})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not EndUser.objects.exists() and not AuditEvent.objects.exists()


def test_a_duplicate_email_or_id_is_refused(editor_client, agent):
    EndUser.objects.create(email="a@example.com", external_id="u_1")
    twice = editor_client.post(register_url(agent), {"email": "a@example.com"})
    assert "registered already" in twice.content.decode()
    same_id = editor_client.post(
        register_url(agent), {"email": "b@example.com", "external_id": "u_1"}
    )
    assert (
        same_id.status_code == 422
        and "Another user already has this id." in same_id.content.decode()
    )
    assert EndUser.objects.count() == 1


def test_a_viewer_cannot_register(viewer_client, agent):
    assert viewer_client.post(register_url(agent), {"email": "a@example.com"}).status_code == 403
    assert not EndUser.objects.exists()
