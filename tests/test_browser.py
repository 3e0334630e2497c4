"""The three flows a person does by hand, in headless Debian Chromium driven by Playwright.

Each step checks the database afterwards and saves a screenshot under test-results/screenshots/
(ignored by git), or under SCREENSHOTS_DIR: `make screenshots` refreshes docs/screenshots/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.memory_settings import MemorySettings
from memories import runtime
from memories.runtime.memories import insert_memory
from tests.factories import PASSWORD, make_person

# Playwright's sync API runs an event loop; the test's own ORM calls are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Not docs/ by default: running the tests must leave a clone as clean as it found it.
SCREENSHOTS = Path(__file__).resolve().parent.parent / (
    os.environ.get("SCREENSHOTS_DIR") or "test-results/screenshots"
)


@pytest.fixture
def worker(transactional_db):
    """A background worker (django-tasks-db's own loop) in a thread beside the live server."""
    import threading

    from django.db import connection
    from django_tasks_db.management.commands.db_worker import Worker

    loop = Worker(
        queue_names=["default"],
        interval=0.2,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="browser-test-worker",
        excluded_queue_names=[],
    )

    def run() -> None:
        try:
            loop.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield loop
    loop.running = False
    thread.join(timeout=10)


@pytest.fixture
def page(browser, live_server, editor):
    context = browser.new_context(viewport={"width": 1400, "height": 950}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations a person clicks OK on
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} at {m.location} on {page.url}")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto("/login/")
    page.fill("input[name=username]", editor.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Agents")
    yield page
    context.close()
    # The strict Content-Security-Policy must not block anything the dashboard itself needs.
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    assert not [p for p in problems if "status of 5" in p], problems


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_operator_switches_an_agent_from_manual_to_agentic_and_back(page, make_agent):
    agent = make_agent(
        name="Support Assistant",
        slug="support",
        settings=MemorySettings(session_storage=True, user_memories=True, num_history_runs=4),
    )
    make_person("ann@example.com", first_name="Ann", last_name="Lee")
    insert_memory(agent, "ann@example.com", text="Prefers concise answers.", topics=["style"])
    insert_memory(agent, "ann.lee@example.com", text="Prefers email.", topics=[])
    page.goto("/")
    expect(page.get_by_role("link", name="Support Assistant")).to_be_visible()
    screenshot(page, "agents-list")

    page.get_by_role("link", name="Support Assistant").click()
    expect(page.locator("#settings-panel .mode")).to_have_text("Manual")
    screenshot(page, "memory-tab")

    managed = page.locator(
        "#settings-panel label.switch", has=page.locator("input[name=user_memories_agentic]")
    )
    managed.click()
    expect(page.locator("#settings-panel .mode")).to_have_text("Agentic")
    expect(page.locator(".toast").last).to_contain_text("Settings saved.")
    agent.refresh_from_db()
    assert (
        agent.agno_settings["agentic_memory"] is True
        and agent.agno_settings["user_memories"] is False
    )

    page.locator(
        "#settings-panel label.switch", has=page.locator("input[name=user_memories_agentic]")
    ).click()
    expect(page.locator("#settings-panel .mode")).to_have_text("Manual")
    agent.refresh_from_db()
    assert (
        agent.agno_settings["user_memories"] is True
        and agent.agno_settings["agentic_memory"] is False
    )

    # Session storage off takes the memory mode with it, and the page says why.
    page.locator(
        "#settings-panel label.switch", has=page.locator("input[name=session_storage]")
    ).click()
    expect(page.locator("#settings-panel .callout.warning")).to_contain_text("need session storage")
    agent.refresh_from_db()
    assert agent.memory_settings.mode == "off" and not agent.memory_settings.session_storage
    assert [m.text for m in runtime.user_memories(agent, "ann@example.com").items] == [
        "Prefers concise answers."
    ]


def test_an_operator_edits_deletes_and_bulk_deletes_memories(page, make_agent):
    agent = make_agent(name="Support Assistant", slug="support")
    make_person("ann@example.com", first_name="Ann", last_name="Lee", timezone="Europe/Berlin")
    facts = [
        ("Prefers concise answers.", ["preferences", "style"], "Keep it short, please."),
        ("Renewal is in November.", ["billing", "renewal"], ""),
        ("Her password is Tulip-2024!", ["security"], "my password is Tulip-2024!"),
        ("Asked about the API rate limit.", ["product"], ""),
        ("Asked about CSV imports.", ["product"], ""),
    ]
    for text, topics, said in facts:
        insert_memory(agent, "ann@example.com", text=text, topics=topics, input_text=said)

    page.goto("/agents/support/")
    page.locator("#users").get_by_role("link", name="ann@example.com").click()
    expect(page.locator("h1")).to_contain_text("Ann Lee")
    expect(page.locator(".memory-row")).to_have_count(5)
    screenshot(page, "user-memories")

    # Inline edit: click the text, type, Enter saves.
    row = page.locator(".memory-row", has_text="Renewal is in November.")
    row.locator("a.memory-text").click()
    editor_box = page.locator("tr.editing textarea")
    expect(editor_box).to_be_focused()
    editor_box.fill("Renewal is in December.")
    screenshot(page, "inline-edit")
    editor_box.press("Enter")
    expect(page.locator(".memory-row", has_text="Renewal is in December.")).to_be_visible()
    expect(page.locator("tr.editing")).to_have_count(0)
    texts = {m.text for m in runtime.user_memories(agent, "ann@example.com").items}
    assert "Renewal is in December." in texts and "Renewal is in November." not in texts

    # Esc cancels and restores the row untouched.
    page.locator(".memory-row", has_text="Prefers concise answers.").locator(
        "a.memory-text"
    ).click()
    page.locator("tr.editing textarea").fill("Something else")
    page.locator("tr.editing textarea").press("Escape")
    expect(page.locator(".memory-row", has_text="Prefers concise answers.")).to_be_visible()
    assert "Something else" not in {
        m.text for m in runtime.user_memories(agent, "ann@example.com").items
    }

    # Delete by click: the row leaves in place, the count follows.
    secret = page.locator(".memory-row", has_text="Her password is")
    secret.get_by_role("button", name="Delete").click()
    expect(page.locator(".memory-row", has_text="Her password is")).to_have_count(0)
    expect(page.locator("#user-summary .stat-value").first).to_have_text("4")
    assert not any("Tulip" in m.text for m in runtime.user_memories(agent, "ann@example.com").items)

    # Bulk delete two, count confirmed in the dialog.
    for text in ("Asked about the API rate limit.", "Asked about CSV imports."):
        page.locator(".memory-row", has_text=text).locator("input[type=checkbox]").check()
    expect(page.locator("[data-selected-count]")).to_have_text("2 selected")
    page.get_by_role("button", name="Delete selected").click()
    expect(page.locator(".memory-row")).to_have_count(2)
    expect(page.locator(".toast").last).to_contain_text("2 memories deleted.")
    assert sorted(m.text for m in runtime.user_memories(agent, "ann@example.com").items) == [
        "Prefers concise answers.",
        "Renewal is in December.",
    ]
    screenshot(page, "after-bulk-delete")

    # Undo in the toast: both come back from the trash, on the page and in the runtime.
    page.locator(".toast", has_text="2 memories deleted.").get_by_role(
        "button", name="Undo"
    ).click()
    expect(page.locator(".memory-row")).to_have_count(4)
    expect(page.locator(".memory-row", has_text="Asked about CSV imports.")).to_be_visible()
    back = {m.text for m in runtime.user_memories(agent, "ann@example.com").items}
    assert {"Asked about the API rate limit.", "Asked about CSV imports."} <= back


def test_adding_a_memory_on_the_first_page_and_during_a_search(page, make_agent):
    """From the list as it first opens, the add answers with the new row only: it goes on top,
    the count follows, and an edit open below keeps its text and saves. During a search, the
    add answers with the list as a first visit shows it: the search box and the address bar
    say so too, rather than naming a search it left."""
    import re

    agent = make_agent(name="Coach", slug="coach")
    insert_memory(agent, "ann", text="Likes tea.", topics=[])
    insert_memory(agent, "ann", text="Lives in Porto.", topics=[])
    page.goto("/agents/coach/user/?user_id=ann")
    page.locator(".memory-row", has_text="Likes tea.").locator("a.memory-text").click()
    page.locator("tr.editing textarea").fill("Likes green tea.")
    page.locator("details.add-card > summary", has_text="Add a memory").click()
    page.fill("#add-form textarea[name=text]", "Prefers calls in the morning.")
    page.get_by_role("button", name="Add memory").click()
    expect(page.locator(".toast").last).to_contain_text("Memory added.")
    expect(page.locator("#memory-rows > tr").first).to_contain_text("Prefers calls in the morning.")
    expect(page.locator(".memory-row:not(.editing)")).to_have_count(2)
    expect(page.locator("tr.editing textarea")).to_have_value("Likes green tea.")
    expect(page.locator("tr.editing textarea")).not_to_be_focused()
    expect(page.locator("#user-summary .stat-value").first).to_have_text("3")
    expect(page.locator("#add-form textarea[name=text]")).to_have_value("")
    page.locator("tr.editing textarea").press("Enter")  # the kept edit still saves
    expect(page.locator(".memory-row", has_text="Likes green tea.")).to_be_visible()
    texts = {m.text for m in runtime.user_memories(agent, "ann").items}
    assert texts == {"Likes green tea.", "Lives in Porto.", "Prefers calls in the morning."}

    page.fill("#filters input[name=q]", "tea")
    expect(page.locator(".memory-row")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"[?&]q=tea"))
    page.fill("#add-form textarea[name=text]", "Plays chess on Sundays.")
    page.get_by_role("button", name="Add memory").click()
    expect(page.locator(".memory-row")).to_have_count(4)
    expect(page.locator(".memory-row").first).to_contain_text("Plays chess on Sundays.")
    expect(page.locator("#filters input[name=q]")).to_have_value("")
    expect(page).not_to_have_url(re.compile(r"[?&]q=tea"))
    page.fill("#filters input[name=q]", "porto")  # the reset filters still filter
    expect(page.locator(".memory-row")).to_have_count(1)


def test_adding_a_memory_in_the_browser(page, make_agent):
    agent = make_agent(name="Onboarding Coach", slug="onboarding")
    make_person("new@example.com", first_name="Nia")
    page.goto("/agents/onboarding/user/?user_id=new%40example.com")
    expect(page.locator(".empty-state")).to_contain_text("has not run yet")
    page.fill("#add-form textarea[name=text]", "Starts on Monday; prefers video walkthroughs.")
    # One box per topic: a comma would stay inside a topic.
    page.fill("#add-form input[name=topics] >> nth=-1", "onboarding")
    page.click("#add-form [data-add-topic]")
    page.fill("#add-form input[name=topics] >> nth=-1", "preferences")
    page.get_by_role("button", name="Add memory").click()
    expect(page.locator(".memory-row")).to_have_count(1)
    expect(page.locator(".memory-row .chip")).to_have_text(["onboarding", "preferences"])
    expect(page.locator("#add-form textarea[name=text]")).to_have_value("")
    memory = runtime.user_memories(agent, "new@example.com").items[0]
    assert memory.text == "Starts on Monday; prefers video walkthroughs."
    assert memory.topics == ["onboarding", "preferences"]
    page.get_by_role("button", name="Add memory").click()  # empty: the browser's own check stops it
    assert len(runtime.user_memories(agent, "new@example.com").items) == 1


def test_an_operator_sees_the_cost_and_prunes_with_a_preview(page, make_agent, worker):
    agent = make_agent(
        name="Support Assistant",
        slug="support",
        settings=MemorySettings(session_storage=True, agentic_memory=True),
    )
    make_person("ann@example.com", first_name="Ann", last_name="Lee")
    for n in range(12):
        insert_memory(
            agent,
            "ann@example.com",
            text=f"Asked about feature {n} in a long support chat.",
            topics=["product"],
        )
    insert_memory(agent, "bob@example.com", text="Her password is Tulip-2024!", topics=[])
    page.goto("/agents/support/user/?user_id=ann%40example.com")
    page.locator("#context-cost summary").click()
    expect(page.locator("#context-panel")).to_contain_text("tokens on every turn")
    expect(page.locator("#context-panel pre")).to_contain_text(
        "<memories_from_previous_interactions>"
    )

    page.goto("/agents/support/cost/")
    page.fill("input[name=token_budget]", "50")
    page.locator("input[name=token_budget]").press("Tab")
    expect(page.locator(".toast").last).to_contain_text("Saved.")
    agent.refresh_from_db()
    assert agent.token_budget == 50
    page.reload()
    expect(page.locator("svg.chart").first).to_be_visible()
    screenshot(page, "cost-panel")

    page.goto("/agents/support/prune/?user_id=ann%40example.com")
    page.fill("input[name=keep_newest]", "4")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#prune-progress")).to_contain_text("deletes 8 memories of 1 user")
    assert len(runtime.user_memories(agent, "ann@example.com").items) == 12
    page.get_by_role("button", name="Delete 8 memories").click()
    expect(page.locator("#prune-progress")).to_contain_text("Done: 8 memories deleted")
    assert len(runtime.user_memories(agent, "ann@example.com").items) == 4

    page.goto("/agents/support/sensitive/")
    page.get_by_role("button", name="Scan the agent's memories").click()
    expect(page.locator("#flagged")).to_contain_text("Tulip-2024!")
    screenshot(page, "sensitive")
