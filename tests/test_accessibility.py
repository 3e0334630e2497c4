"""Every page passes axe-core (bundled by axe-playwright-python, no CDN) without a serious or
critical violation, in light and dark mode; the main pages fit 800 px; and the Memory tab and
user page work with the keyboard alone. Headless Debian Chromium, real Postgres, agno's rows."""

from __future__ import annotations

import os
from collections import Counter
from urllib.parse import quote

import pytest

from agents.memory_settings import MemorySettings
from memories import pruning, runtime
from memories.models import PruneJob
from memories.runtime.memories import insert_memory
from tests.factories import PASSWORD, agno_session_with_run, make_person

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
playwright_api = pytest.importorskip("playwright.sync_api")
axe_api = pytest.importorskip("axe_playwright_python.sync_playwright")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BLOCKING = {"serious", "critical"}  # the impacts the issue allows none of


def log_in(browser, base_url: str, username: str, **context_options):
    context = browser.new_context(base_url=base_url, **context_options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Agents")
    return context, page


@pytest.fixture
def agent_with_everything(make_agent, agno_db_for):
    """An agent whose every page has something to show: memories, a NULL user_id entry,
    a registered and an unregistered user, a session with a run, counted tokens."""
    from agno.db.schemas.memory import UserMemory

    agent = make_agent(
        name="Support Assistant",
        slug="support",
        settings=MemorySettings(session_storage=True, user_memories=True, num_history_runs=4),
    )
    make_person("ann@example.com", first_name="Ann", last_name="Lee")
    for text, topics in [
        ("Prefers concise answers.", ["style"]),
        ("Renewal is in November.", ["billing"]),
        ("Her password is Tulip-2024!", []),
    ]:
        insert_memory(agent, "ann@example.com", text=text, topics=topics)
    insert_memory(agent, "bob@example.com", text="Prefers email.", topics=[])
    agno = agno_db_for(agent)
    agno.upsert_user_memory(UserMemory(memory_id="n1", memory="Orphan: likes jazz.", user_id=None))
    agno_session_with_run(agno, "s-1", "ann@example.com", 1_760_000_000, "Hello there")
    # A preview whose topic misses "style" by a space: it names the stored topic to use.
    pruning.preview_prune(agent, pruning.PruneCriteria(topic="style "), None)
    return agent


def pages_of(agent) -> dict[str, str]:
    ann = "user_id=" + quote("ann@example.com", safe="")
    memory_id = runtime.user_memories(agent, "ann@example.com").items[0].memory_id
    base = f"/agents/{agent.slug}"
    return {
        "agents list": "/",
        "discover agents": "/discover/",
        "memory tab": f"{base}/",
        "user page": f"{base}/user/?{ann}",
        "user page, NULL user_id": f"{base}/user/?no_user_id=1",
        "sessions": f"{base}/user/sessions/?{ann}",
        "transcript": f"{base}/session/?session_id=s-1",
        "search": f"{base}/memories/?q=prefers",
        "cost": f"{base}/cost/",
        "prune": f"{base}/prune/",
        "prune, NULL user_id": f"{base}/prune/?no_user_id=1",
        "prune preview, topic off by a space": f"{base}/prune/{PruneJob.objects.get().pk}/",
        "sensitive": f"{base}/sensitive/",
        "import": f"{base}/import/",
        "forget": "/forget/",
        "audit": "/audit/",
        "register": f"{base}/user/register/?user_id=bob%40example.com",
        "edit page": f"{base}/memory/edit/?{ann}&memory_id={quote(memory_id, safe='')}",
    }


def axe_violations(page) -> list[dict]:
    return axe_api.Axe().run(page).response["violations"]


def audit_pages(browser, base_url: str, username: str, agent, **context_options) -> str:
    """Run axe on the login page and every page of `pages_of`, failing on any serious or
    critical violation; returns the page background the colour scheme gave."""
    found: Counter = Counter()
    blocking: list[str] = []

    def record(name: str, page) -> None:
        for violation in axe_violations(page):
            found[(violation["impact"], violation["id"])] += len(violation["nodes"])
            if violation["impact"] in BLOCKING:
                targets = [node["target"] for node in violation["nodes"]][:3]
                blocking.append(f"{name}: {violation['id']} ({violation['impact']}) {targets}")

    anonymous = browser.new_context(base_url=base_url, **context_options)
    login = anonymous.new_page()
    login.goto("/login/")
    record("login", login)
    anonymous.close()

    context, page = log_in(browser, base_url, username, **context_options)
    for name, url in pages_of(agent).items():
        response = page.goto(url)
        assert response.status == 200, f"{name} ({url}) answered {response.status}"
        record(name, page)
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    context.close()
    print(f"axe violations by impact ({context_options}):", dict(sorted(found.items())))
    assert not blocking, "\n".join(blocking)
    return background


def test_every_page_passes_axe_in_light_mode(browser, live_server, editor, agent_with_everything):
    background = audit_pages(
        browser, live_server.url, editor.username, agent_with_everything, color_scheme="light"
    )
    assert background == "rgb(246, 247, 249)"


def test_every_page_passes_axe_in_dark_mode(browser, live_server, editor, agent_with_everything):
    # The system's dark setting really switched the palette: axe judged the dark colours.
    background = audit_pages(
        browser, live_server.url, editor.username, agent_with_everything, color_scheme="dark"
    )
    assert background == "rgb(15, 20, 28)"


def test_every_page_fits_800_pixels_without_scrolling_sideways(
    browser, live_server, editor, agent_with_everything
):
    context, page = log_in(
        browser, live_server.url, editor.username, viewport={"width": 800, "height": 900}
    )
    too_wide = {}
    for name, url in pages_of(agent_with_everything).items():
        page.goto(url)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        if width > 800:
            too_wide[name] = width
    assert not too_wide, f"pages wider than 800 px: {too_wide}"

    # The cost page's chart labels stay legible when the chart shrinks to fit: at least 12 px.
    page.goto(f"/agents/{agent_with_everything.slug}/cost/")
    label_sizes = page.eval_on_selector_all(
        "svg.chart .axis text",
        "texts => texts.map(t => { const m = t.getScreenCTM(); "
        "return Math.hypot(m.a, m.b) * parseFloat(getComputedStyle(t).fontSize); })",
    )
    context.close()
    assert label_sizes and min(label_sizes) >= 12, label_sizes


def tab_to(page, target, presses: int = 200) -> None:
    """Press Tab until `target` has the focus, as a keyboard user would; fail if it never does."""
    for _ in range(presses):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reaches {target}")


def focus_ring(page) -> str:
    return page.evaluate("getComputedStyle(document.activeElement).outlineStyle")


def test_the_memory_flows_work_with_the_keyboard_alone(
    browser, live_server, editor, agent_with_everything
):
    agent = agent_with_everything
    context, page = log_in(
        browser, live_server.url, editor.username, viewport={"width": 1200, "height": 900}
    )
    dialogs: list[str] = []

    def confirm(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", confirm)
    assert page.locator("#toasts").get_attribute("aria-live") == "polite"

    # Memory tab: Space on a focused switch turns agentic mode on, and again off.
    page.goto(f"/agents/{agent.slug}/")
    agentic = page.locator("#settings-panel input[name=user_memories_agentic]")
    tab_to(page, agentic)
    slider_ring = agentic.evaluate("box => getComputedStyle(box.nextElementSibling).outlineStyle")
    assert slider_ring == "solid"  # the focused switch shows its ring
    page.keyboard.press("Space")
    expect(page.locator("#settings-panel .mode")).to_have_text("Agentic")
    agent.refresh_from_db()
    assert agent.agno_settings["agentic_memory"] is True
    tab_to(page, page.locator("#settings-panel input[name=user_memories_agentic]"))
    page.keyboard.press("Space")
    expect(page.locator("#settings-panel .mode")).to_have_text("Manual")
    agent.refresh_from_db()
    assert agent.agno_settings["agentic_memory"] is False
    assert agent.agno_settings["user_memories"] is True

    # Inline edit: Enter on the text opens the editor, Enter saves.
    page.goto(f"/agents/{agent.slug}/user/?user_id=ann%40example.com")
    tab_to(page, page.locator(".memory-row", has_text="Renewal is in November.").locator("a"))
    assert focus_ring(page) == "solid"
    page.keyboard.press("Enter")
    expect(page.locator("tr.editing textarea")).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("Renewal is in December.")
    page.keyboard.press("Enter")
    expect(page.locator(".memory-row", has_text="Renewal is in December.")).to_be_visible()
    texts = {m.text for m in runtime.user_memories(agent, "ann@example.com").items}
    assert "Renewal is in December." in texts and "Renewal is in November." not in texts

    # Esc leaves the editor and keeps the memory as it was.
    tab_to(page, page.locator(".memory-row", has_text="Prefers concise").locator("a.memory-text"))
    page.keyboard.press("Enter")
    expect(page.locator("tr.editing textarea")).to_be_focused()
    page.keyboard.type(" Or not.")
    page.keyboard.press("Escape")
    expect(page.locator("tr.editing")).to_have_count(0)
    expect(page.locator(".memory-row", has_text="Prefers concise answers.")).to_be_visible()
    assert "Prefers concise answers." in {
        m.text for m in runtime.user_memories(agent, "ann@example.com").items
    }

    # Delete: Enter on the row's button, the confirmation accepted, the row gone.
    secret = page.locator(".memory-row", has_text="Her password is")
    tab_to(page, secret.get_by_role("button", name="Delete"))
    page.keyboard.press("Enter")
    expect(page.locator(".memory-row", has_text="Her password is")).to_have_count(0)
    assert dialogs[-1].startswith("Delete this memory?")
    assert not any("Tulip" in m.text for m in runtime.user_memories(agent, "ann@example.com").items)

    # Bulk select: Space on each checkbox, Enter on "Delete selected", the count confirmed.
    for text in ("Prefers concise answers.", "Renewal is in December."):
        tab_to(page, page.locator(".memory-row", has_text=text).locator("input[type=checkbox]"))
        page.keyboard.press("Space")
    expect(page.locator("[data-selected-count]")).to_have_text("2 selected")
    tab_to(page, page.get_by_role("button", name="Delete selected"))
    page.keyboard.press("Enter")
    expect(page.locator(".memory-row")).to_have_count(0)
    assert dialogs[-1] == "Delete 2 selected memories? They stay in the trash for 7 days."
    expect(page.locator(".toast").last).to_contain_text("2 memories deleted.")
    assert runtime.user_memories(agent, "ann@example.com").items == []
    context.close()
