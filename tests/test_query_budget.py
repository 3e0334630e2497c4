"""The pages the benchmark times answer in at most 8 queries, however much the agent holds.

Transactional, so the count is what production runs (no test savepoints around it); the
BEGIN and COMMIT around each switch into the agent's schema are not statements of their own.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from memories.models import SensitiveFlag, UserTokens
from memories.runtime import encode_cursor
from tests.factories import make_memories, make_person, run_queued_tasks

QUERY_BUDGET = 8


def statements(client, url: str, params: dict, **headers: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params, **headers)
    assert response.status_code == 200, (url, params, response.status_code)
    sql = [q["sql"] for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    return len(sql), response.content.decode()


def fill(agent, start: int, users: int) -> None:
    """`users` people with memories from number `start`, a flagged memory and a token count
    each; once, two registered people and memories stored with user_id NULL."""
    for n in range(start, users):
        user_id = f"user{n:04d}@example.com"
        memories = make_memories(agent, user_id, 2)
        UserTokens.objects.update_or_create(
            agent=agent, user_id=user_id, defaults={"tokens": 40 + n, "memories": 2}
        )
        SensitiveFlag.objects.get_or_create(
            agent=agent,
            memory_id=memories[0].memory_id,
            defaults={"user_id": user_id, "kinds": ["password"], "memory_changed_at": 1},
        )
    if start == 0:
        make_person("user0001@example.com", external_id="id-0001")
        make_person("only-registered@example.com")
        make_memories(agent, None, 1)


@pytest.mark.django_db(transaction=True)
def test_the_users_list_stays_within_its_query_budget_at_any_size(editor_client, agent):
    url = reverse("agents:memory_tab", args=[agent.slug])
    pages = {
        "first page": {},
        "prefix search": {"q": "user00"},
        "by tokens": {"sort": "tokens"},
        "over the budget": {"sort": "over"},
    }
    counts = {}
    for start, users in ((0, 3), (3, 60)):
        fill(agent, start, users)
        for name, params in pages.items():
            counts[name, users], html = statements(editor_client, url, params)
            if name == "first page":
                assert "no user_id" in html and "only-registered@example.com" in html
    deep, html = statements(editor_client, url, {"after": encode_cursor("user0030@example.com")})
    assert "user0031@example.com" in html and "user0030@example.com" not in html
    for (name, users), count in counts.items():
        assert count <= QUERY_BUDGET, (name, users, count)
        assert count == counts[name, 3], (name, "grew with the data", counts)
    assert deep <= QUERY_BUDGET


@pytest.mark.django_db(transaction=True)
def test_a_users_memories_stay_within_the_query_budget_with_every_filter(editor_client, agent):
    make_person("ann@example.com", timezone="Europe/Berlin")
    make_memories(agent, "ann@example.com", 60, topics=lambda n: ["billing", f"t{n % 5}"])
    url = reverse("memories:user", args=[agent.slug])
    user = {"user_id": "ann@example.com"}
    for params in ({}, {"q": "Fact 1"}, {"topic": "billing"}, {"sort": "created"}):
        count, html = statements(editor_client, url, {**user, **params})
        assert 'class="memory-row"' in html
        assert count <= QUERY_BUDGET, (params, count)
    for name in ("memories:sessions", "memories:search"):
        params = user if name == "memories:sessions" else {"q": "Fact"}
        count, _ = statements(editor_client, reverse(name, args=[agent.slug]), params)
        assert count <= QUERY_BUDGET, (name, count)


@pytest.mark.django_db(transaction=True)
def test_the_agents_list_asks_the_same_few_queries_for_two_agents_or_six(
    editor_client, agent, make_agent
):
    from agents.models import Agent
    from memories.runtime.memories import insert_memory

    insert_memory(agent, "ann", text="Prefers tea.", topics=[])
    counts = {}
    for total in (2, 6):
        while Agent.objects.count() < total:
            other = make_agent()
            if Agent.objects.count() % 2:  # some that ran, some that never did
                insert_memory(other, "bob", text="Likes jazz.", topics=[])
        counts[total], html = statements(editor_client, reverse("agents:list"), {})
        assert html.count("Memory tab →") == total
    assert counts[6] <= QUERY_BUDGET
    assert counts[2] == counts[6], counts


def every_page(agent, user_id: str) -> dict[str, tuple[str, dict]]:
    """Every page an operator opens, by name: (url, query)."""
    slug = [agent.slug]
    user = {"user_id": user_id}
    return {
        "agents list": (reverse("agents:list"), {}),
        "Memory tab": (reverse("agents:memory_tab", args=slug), {}),
        "recent memories": (reverse("agents:recent", args=slug), {}),
        "discover": (reverse("agents:discover"), {}),
        "user page": (reverse("memories:user", args=slug), user),
        "user page, sensitive only": (
            reverse("memories:user", args=slug),
            {**user, "sensitive": "1"},
        ),
        "topics": (reverse("memories:topics", args=slug), user),
        "sessions": (reverse("memories:sessions", args=slug), user),
        "search": (reverse("memories:search", args=slug), {"q": "Fact"}),
        "context": (reverse("memories:context", args=slug), user),
        "cost": (reverse("memories:cost", args=slug), {}),
        "prune": (reverse("memories:prune", args=slug), {}),
        "sensitive": (reverse("memories:sensitive", args=slug), {}),
        "scoping problems, no check yet": (reverse("memories:scoping", args=slug), {}),
        "duplicates, no search yet": (reverse("memories:duplicates", args=slug), user),
        "agent's jobs": (reverse("memories:agent_jobs", args=slug), {}),
        "trash": (reverse("memories:trash", args=slug), {}),
        "import": (reverse("memories:import", args=slug), {}),
        "jobs": (reverse("memories:jobs"), {}),
        "forget": (reverse("memories:forget"), {}),
        "audit log": (reverse("memories:audit"), {}),
    }


@pytest.mark.django_db(transaction=True)
def test_every_page_stays_within_the_budget_and_flat_in_the_data(editor_client, agent):
    """Each page, opened after the data grew from 3 users to 40 (and a user's memories from
    2 to 42), asks no more than 8 queries and no more than it did with less. The flags `fill`
    makes are stale (changed_at 1), so the sensitive page's on-the-spot recheck is counted."""
    pages = every_page(agent, "user0001@example.com")
    counts: dict[str, list[int]] = {name: [] for name in pages}
    for start, users in ((0, 3), (3, 40)):
        fill(agent, start, users)
        make_memories(agent, "user0001@example.com", 20)
        for name, (url, params) in pages.items():
            counts[name].append(statements(editor_client, url, params)[0])
    over = {name: n for name, n in counts.items() if max(n) > QUERY_BUDGET or n[1] > n[0]}
    assert not over, over


def checked(client, agent, name: str, params: dict) -> None:
    """Start the page's check as an Editor and let the worker run it."""
    response = client.post(reverse(name, args=[agent.slug]), params)
    assert response.status_code == 302, (name, response.status_code)
    run_queued_tasks()


@pytest.mark.django_db(transaction=True)
def test_the_scoping_page_reads_its_report_in_the_same_few_queries_at_any_size(
    editor_client, agent
):
    url = reverse("memories:scoping", args=[agent.slug])
    counts = {}
    for start, users in ((0, 3), (3, 60)):
        fill(agent, start, users)
        checked(editor_client, agent, "memories:check_scoping", {})
        counts["page", users], html = statements(editor_client, url, {})
        assert "user0059@example.com" in html or users == 3
        assert "Checked <time" in html and "no user_id" in html
        counts["partial", users], partial = statements(
            editor_client, url, {}, HTTP_HX_REQUEST="true"
        )
        assert '<div id="report">' in partial and "<html" not in partial
    for (name, users), count in counts.items():
        assert count <= QUERY_BUDGET, (name, users, count)
        assert count == counts[name, 3], (name, "grew with the data", counts)


@pytest.mark.django_db(transaction=True)
def test_the_duplicates_page_reads_its_report_in_the_same_few_queries_at_any_size(
    editor_client, agent
):
    url = reverse("memories:duplicates", args=[agent.slug])
    scopes = {
        "every user": {},
        "one user": {"user_id": "user0001@example.com"},
        "no user_id": {"no_user_id": "1", "exact_only": "1"},
    }
    counts = {}
    for start, users in ((0, 3), (3, 60)):
        for n in range(start, users):
            make_memories(agent, f"user{n:04d}@example.com", 2, text="Same thing.")
        if start == 0:
            make_memories(agent, None, 2, text="Same thing.")
        for name, params in scopes.items():
            checked(editor_client, agent, "memories:search_duplicates", params)
            counts[name, users], html = statements(editor_client, url, params)
            assert "Searched <time" in html and 'class="data-table duplicate-group"' in html
    assert html.count("duplicate-group") == 1  # the NULL user's one group
    for (name, users), count in counts.items():
        assert count <= QUERY_BUDGET, (name, users, count)
        assert count == counts[name, 3], (name, "grew with the data", counts)
