from __future__ import annotations

import html
import itertools
import re

import pytest
from agno.db.schemas.memory import UserMemory
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.models import Agent
from memories.models import AuditEvent, EndUser
from memories.runtime.memories import insert_memory
from memories.users import agent_users, registered_user
from tests.factories import user_page

# What Postgres text can hold (no NUL, no lone surrogate): anything agno can store.
CHARACTER = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
STORED_IDS = (
    st.text(CHARACTER, min_size=1, max_size=40)
    | st.sampled_from([" ann", "ann ", " ", "a/b", "../x", "50% off", "ключ 💡", "line\nbreak"])
    | st.builds(
        lambda pad, core: pad + core + pad,
        st.sampled_from([" ", "\t", "\u3000"]),
        st.text(CHARACTER, min_size=1, max_size=20),
    )
    # Past the 255 characters a person may type; the runtime's index holds ~2,700 bytes.
    | st.builds(lambda c, n: c * n, CHARACTER, st.integers(256, 600))
)
_example = itertools.count()
_handles: dict = {}  # one agno handle per agent: examples share the test's fixtures


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


def _register_from_the_user_page(client, agent, user_id: str):
    """Follow the user page's "Register this user" link and send its form back as a browser
    would: the prefilled key untouched (a text box drops line breaks), a name typed."""
    page = client.get(user_page(agent, user_id)).content.decode()
    link = re.search(r'<a href="([^"]*)">Register this user</a>', page)
    assert link, "no register link"
    form = client.get(html.unescape(link.group(1))).content.decode()
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="[a-z]+" name="(\w+)" value="([^"]*)"', form)
    }
    key = "email" if agent.user_id_kind == Agent.UserIdKind.EMAIL else "external_id"
    fields[key] = fields[key].replace("\r", "").replace("\n", "")
    fields.setdefault("email", f"p{next(_example)}@example.com")
    return client.post(html.unescape(link.group(1)), {**fields, "first_name": "Ann"})


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(user_id=STORED_IDS)
def test_a_stored_user_id_is_registered_byte_for_byte(editor_client, agent, agno_db_for, user_id):
    Agent.objects.filter(pk=agent.pk).update(user_id_kind=Agent.UserIdKind.ID)
    agent.user_id_kind = Agent.UserIdKind.ID
    agno = _handles.get(agent.pk) or _handles.setdefault(agent.pk, agno_db_for(agent))
    if EndUser.objects.filter(external_id=user_id).exists():
        return  # an example repeated: registered already
    memory_id = f"m{next(_example)}"
    agno.upsert_user_memory(UserMemory(memory_id=memory_id, memory="Likes tea.", user_id=user_id))
    response = _register_from_the_user_page(editor_client, agent, user_id)
    assert response.status_code == 302, response.content.decode()[:500]
    person = EndUser.objects.get(external_id=user_id)
    assert registered_user(agent, user_id) == (person, None)
    event = AuditEvent.objects.filter(action=AuditEvent.Action.USER_REGISTERED).latest("id")
    assert event.user_id == user_id
    # The runtime is the judge: agno finds the memory under the id now registered.
    found = agno.get_user_memories(user_id=person.external_id)
    assert [m.memory_id for m in found] == [memory_id]
    page = editor_client.get(user_page(agent, user_id)).content.decode()
    assert "Unregistered" not in page and "Registered:" in page


@pytest.mark.parametrize(
    "stored",
    [
        " ann@example.com",
        "ann@example.com\t",
        # 312 characters: an address past the 254 a person may type.
        "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "com",
    ],
)
def test_a_stored_email_is_registered_as_stored(editor_client, agent, stored):
    insert_memory(agent, stored, text="x", topics=[])
    response = _register_from_the_user_page(editor_client, agent, stored)
    assert response.status_code == 302, response.content.decode()[:500]
    person = EndUser.objects.get()
    assert person.email == stored
    assert agent_users(agent).items[0].registered == person


def test_a_stored_user_id_that_is_no_email_still_needs_an_email(editor_client, agent):
    insert_memory(agent, "u_1", text="x", topics=[])
    response = _register_from_the_user_page(editor_client, agent, "u_1")
    assert response.status_code == 422
    assert "Enter an email address such as ann@example.com." in response.content.decode()
    assert not EndUser.objects.exists()


def test_what_a_person_types_is_trimmed_and_limited(editor_client, make_agent):
    agent = make_agent(user_id_kind=Agent.UserIdKind.ID)
    insert_memory(agent, " u_1", text="x", topics=[])
    typed = {"user_id": " u_1", "email": "  ann@example.com ", "external_id": " u_9 "}
    assert editor_client.post(register_url(agent), typed).status_code == 302
    person = EndUser.objects.get()
    assert (person.email, person.external_id) == ("ann@example.com", "u_9")
    too_long = {"user_id": " u_1", "email": "bob@example.com", "external_id": "u" * 256}
    response = editor_client.post(register_url(agent), too_long)
    assert response.status_code == 422
    assert "An id you type is at most 255 characters (this one has 256)" in (
        response.content.decode()
    )
    assert EndUser.objects.count() == 1
