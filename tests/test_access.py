"""Nobody gets in where they don't belong: anonymous people, non-staff, viewers, forged posts."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from memories import runtime
from memories.runtime.memories import insert_memory
from tests.factories import memory_url

HTMX = {"HTTP_HX_REQUEST": "true"}


def dashboard_urls(agent) -> list[str]:
    """Every route of the dashboard (Django admin guards itself), with sample arguments."""
    samples = {
        "slug": agent.slug,
        "memory_id": "m-1",
        "session_id": "s-1",
        "job_id": 1,
        "receipt_id": 1,
    }
    urls = []

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name not in ("login",):
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                kwargs = {key: samples[key] for key in pattern.pattern.converters}
                urls.append(reverse(name, kwargs=kwargs))

    walk(get_resolver().url_patterns)
    return urls


def test_the_url_map_is_closed_to_anonymous_people(client, agent):
    insert_memory(agent, "ann", text="Secret.", topics=[])
    urls = dashboard_urls(agent)
    assert len(urls) >= 24
    for url in urls:
        if url.startswith("/api/"):
            # Running agents authenticate with a bearer token, not a staff login.
            assert client.get(url).status_code == 401, url
            continue
        if url == reverse("healthz"):
            # Probes need no login; the answer names databases, never what they hold.
            health = client.get(url)
            assert health.status_code == 200 and "Secret" not in health.content.decode()
            continue
        for method in (client.get, client.post):
            response = method(url + "?user_id=ann", {"user_id": "ann", "text": "x"})
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("login")), url
            htmx = method(url + "?user_id=ann", {"user_id": "ann"}, **HTMX)
            assert htmx.status_code == 403 and htmx["HX-Redirect"].startswith(reverse("login")), url
    assert [m.text for m in runtime.user_memories(agent, "ann").items] == ["Secret."]


def test_a_logged_in_non_staff_account_is_refused(db, agent):
    client = Client()
    client.force_login(User.objects.create_user("customer", password="x" * 12))
    response = client.get(reverse("agents:memory_tab", args=[agent.slug]))
    assert response.status_code == 403
    assert "not a staff account" in response.content.decode()


def test_staff_without_a_role_sees_nothing(db, agent):
    client = Client()
    client.force_login(User.objects.create_user("intern", password="x" * 12, is_staff=True))
    assert client.get(reverse("agents:list")).status_code == 403
    assert client.get(reverse("agents:memory_tab", args=[agent.slug])).status_code == 403
    assert client.get(reverse("memories:audit")).status_code == 403


def write_requests(agent, memory) -> list[tuple[str, dict]]:
    return [
        (
            reverse("agents:update_settings", args=[agent.slug]),
            {
                "session_storage": "on",
                "user_memories_on": "on",
                "user_memories_agentic": "on",
                "num_history_runs": "3",
                "max_tool_calls_from_history": "0",
                "compress_tool_results_threshold": "0",
            },
        ),
        (reverse("memories:add", args=[agent.slug]), {"user_id": "ann", "text": "Injected."}),
        (
            memory_url(agent, memory.memory_id, "edit"),
            {"user_id": "ann", "text": "Changed.", "version": memory.version},
        ),
        (
            memory_url(agent, memory.memory_id, "delete"),
            {"user_id": "ann", "version": memory.version},
        ),
        (
            reverse("memories:bulk_delete", args=[agent.slug]),
            {"user_id": "ann", "memory_ids": [memory.memory_id], "confirmed": "1"},
        ),
    ]


def assert_nothing_changed(agent, memory) -> None:
    agent.refresh_from_db()
    assert agent.memory_settings.mode == "manual"
    assert [m.text for m in runtime.user_memories(agent, "ann").items] == [memory.text]


@pytest.mark.parametrize("htmx", [False, True])
def test_every_write_needs_the_csrf_token(csrf_client, agent, htmx):
    memory, _ = insert_memory(agent, "ann", text="Original.", topics=[])
    for url, data in write_requests(agent, memory):
        response = csrf_client.post(url, data, **(HTMX if htmx else {}))
        assert response.status_code == 403, url
    assert_nothing_changed(agent, memory)


def test_the_csrf_token_from_the_page_is_accepted(csrf_client, agent):
    memory, _ = insert_memory(agent, "ann", text="Original.", topics=[])
    page = csrf_client.get(reverse("memories:user", args=[agent.slug]), {"user_id": "ann"})
    token = str(page.context["csrf_token"])
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'' in page.content.decode()
    response = csrf_client.post(
        memory_url(agent, memory.memory_id, "delete"),
        {"user_id": "ann", "version": memory.version},
        HTTP_X_CSRFTOKEN=token,
        **HTMX,
    )
    assert response.status_code == 200
    assert runtime.user_memories(agent, "ann").items == []


@pytest.mark.parametrize("htmx", [False, True])
def test_a_viewers_writes_are_refused_and_change_nothing(viewer_client, agent, htmx):
    memory, _ = insert_memory(agent, "ann", text="Original.", topics=[])
    for url, data in write_requests(agent, memory):
        response = viewer_client.post(url, data, **(HTMX if htmx else {}))
        assert response.status_code == 403, url
    assert_nothing_changed(agent, memory)
    edit_form = viewer_client.get(memory_url(agent, memory.memory_id, "edit", user_id="ann"))
    assert edit_form.status_code == 403


def test_pages_send_a_strict_content_security_policy(editor_client, agent):
    response = editor_client.get(reverse("agents:list"))
    policy = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy
        and "unsafe-eval" not in policy
    )
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in response.content.decode()  # no inline script anywhere


@pytest.mark.django_db
def test_the_session_user_brings_the_same_permissions_django_would_load(editor, viewer):
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import Group, Permission

    from studio.auth import OneQueryPermissionsBackend

    direct = User.objects.create_user("direct", is_staff=True)
    direct.user_permissions.add(Permission.objects.get(codename="view_enduser"))
    direct.groups.add(Group.objects.get(name="Viewer"))
    boss = User.objects.create_superuser("boss")
    gone = User.objects.create_user("gone", is_staff=True, is_active=False)
    ours = OneQueryPermissionsBackend()
    for person in (editor, viewer, direct, boss):
        loaded = ours.get_user(person.pk)
        expected = ModelBackend().get_all_permissions(User.objects.get(pk=person.pk))
        assert expected and loaded.get_all_permissions() == expected, person.username
        assert loaded.has_perm("memories.view_enduser")
    assert editor.has_perm("memories.change_enduser") != viewer.has_perm("memories.change_enduser")
    assert ours.get_user(gone.pk) is None and ours.get_user(10**9) is None
