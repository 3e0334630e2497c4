"""The rules pages show, decided in Python once: templates only display their answers."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from agents.memory_settings import (
    COMPRESSION_THRESHOLD_RANGE,
    MAX_TOOL_CALLS_RANGE,
    NUM_HISTORY_RUNS_RANGE,
    MemorySettings,
)
from agents.models import Agent
from memories import cost, flags, import_export, pruning, runtime, tokens
from memories.context_cost import ENCODING_NAME
from memories.forms import (
    MAX_MEMORY_CHARS,
    MAX_TOPIC_CHARS,
    MAX_TOPICS,
    MemoryForm,
    UserSearchForm,
)
from memories.models import EndUser, SensitiveScan, UserTokens
from memories.runtime.memories import insert_memory
from memories.users import CHARS_PER_TOKEN, UserRow, agent_users, user_rows, wrong_key_message
from tests.factories import make_person, memory_url, table_row


@pytest.mark.parametrize(
    ("settings", "label"),
    [
        (MemorySettings(session_storage=True, agentic_memory=True), "Agentic"),
        (MemorySettings(session_storage=True, user_memories=True), "Manual"),
        (MemorySettings(session_storage=True), "Off"),
        (MemorySettings(), "Off"),
    ],
)
def test_the_mode_label_names_the_mode(settings, label):
    assert settings.mode_label == label


def test_every_page_shows_the_same_mode_label(editor_client, make_agent):
    agent = make_agent(settings=MemorySettings(session_storage=True, agentic_memory=True))
    insert_memory(agent, "ann@example.com", text="Prefers tea.", topics=[])
    user_page = reverse("memories:user", args=[agent.slug])
    pages = {
        "list": editor_client.get(reverse("agents:list")),
        "tab": editor_client.get(reverse("agents:memory_tab", args=[agent.slug])),
        "user": editor_client.get(user_page, {"user_id": "ann@example.com"}),
    }
    html = {name: page.content.decode() for name, page in pages.items()}
    assert all(page.status_code == 200 for page in pages.values())
    assert '<span class="mode mode-agentic">Agentic</span>' in html["list"]
    assert '<span class="mode mode-agentic">Agentic</span>' in html["tab"]
    assert '<span class="stat-value">Agentic</span>' in html["user"]


@pytest.mark.parametrize(
    ("budget", "counted", "over"),
    [(100, 101, True), (100, 100, False), (100, 0, False), (100, None, False), (0, 10**9, False)],
)
def test_over_budget_means_more_tokens_than_a_budget_that_is_set(budget, counted, over):
    assert Agent(token_budget=budget).is_over_budget(counted) is over
    assert (
        UserRow("ann", counted_tokens=counted, agent=Agent(token_budget=budget)).is_over_budget
        is over
    )


@pytest.mark.parametrize("budget", [0, 100])
def test_the_over_budget_filter_agrees_with_the_rule(make_agent, budget):
    agent = make_agent(token_budget=budget)
    for user_id, counted in (("light", 50), ("even", 100), ("heavy", 101)):
        UserTokens.objects.create(agent=agent, user_id=user_id, tokens=counted, memories=1)
    rows = UserTokens.objects.filter(agent=agent)
    over = set(rows.filter(agent.over_budget_tokens()).values_list("user_id", flat=True))
    assert over == {row.user_id for row in rows if row.is_over_budget}
    assert over == ({"heavy"} if budget else set())
    assert cost.cost_overview(agent).over_budget == len(over)
    assert [row.user_id for row in tokens.heaviest_users(agent, over_budget=True).items] == sorted(
        over
    )


def test_a_row_without_its_agent_is_never_over_budget():
    assert not UserRow("ann", counted_tokens=10**9).is_over_budget


def test_pages_flag_exactly_the_users_over_budget(editor_client, agent):
    insert_memory(agent, "heavy", text="A long memory. " * 20, topics=[])
    insert_memory(agent, "light", text="Short.", topics=[])
    tokens.recount_user(agent, "heavy")
    agent.token_budget = tokens.recount_user(agent, "light")  # light is at the budget, not over
    agent.save()
    rows = user_rows(agent, ["heavy", "light"])  # with their counted tokens
    assert [row.is_over_budget for row in rows] == [True, False]
    tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    assert tab.count(">Over budget</a>") == 1
    assert tab.index(">heavy<") < tab.index(">Over budget</a>") < tab.index(">light<")
    panel = editor_client.get(reverse("memories:cost", args=[agent.slug])).content.decode()
    assert panel.count("Over budget</span>") == 1
    assert panel.index(">heavy<") < panel.index("Over budget</span>") < panel.index(">light<")
    context_url = reverse("memories:context", args=[agent.slug])
    heavy = editor_client.get(context_url, {"user_id": "heavy"}).content.decode()
    light = editor_client.get(context_url, {"user_id": "light"}).content.decode()
    budget = f"the budget is {agent.token_budget}"
    assert "Over budget" in heavy and budget in heavy
    assert "Over budget" not in light and budget in light


@pytest.mark.parametrize(
    ("kind", "person", "sentence"),
    [
        (
            "id",
            EndUser(email="dana@example.com", external_id="u_9", first_name="Dana"),
            "This user_id is the email of Dana, but Support keys memories by id (u_9).",
        ),
        (
            "id",
            EndUser(email="dana@example.com"),
            "This user_id is the email of dana@example.com, but Support keys memories by id "
            "(none set).",
        ),
        (
            "email",
            EndUser(email="dana@example.com", external_id="u_9", last_name="Lee"),
            "This user_id is the id of Lee, but Support keys memories by email (dana@example.com).",
        ),
    ],
)
def test_the_wrong_key_sentence_names_the_key_the_agent_expects(kind, person, sentence):
    message = wrong_key_message(Agent(name="Support", user_id_kind=kind), person)
    assert message == f"{sentence} The running agent will not load these memories for that person."


@pytest.mark.parametrize(("kind", "user_id"), [("email", "u_9"), ("id", "dana@example.com")])
def test_both_pages_show_the_same_wrong_key_sentence(editor_client, make_agent, kind, user_id):
    agent = make_agent(name="Support", user_id_kind=kind)
    person = make_person("dana@example.com", external_id="u_9", first_name="Dana")
    insert_memory(agent, user_id, text="Prefers tea.", topics=[])
    sentence = escape(wrong_key_message(agent, person))
    (row,) = agent_users(agent, prefix=user_id).items
    assert row.wrong_key == wrong_key_message(agent, person)
    tab = editor_client.get(reverse("agents:memory_tab", args=[agent.slug]), {"q": user_id})
    page = editor_client.get(reverse("memories:user", args=[agent.slug]), {"user_id": user_id})
    assert tab.status_code == 200 and page.status_code == 200
    assert sentence in tab.content.decode() and sentence in page.content.decode()


def test_a_registered_user_id_has_no_wrong_key_sentence(make_agent):
    agent = make_agent(user_id_kind="email")
    make_person("dana@example.com", external_id="u_9")
    rows = {row.user_id: row for row in agent_users(agent).items}
    assert rows["dana@example.com"].wrong_key == ""


def test_the_topics_hint_and_its_errors_come_from_the_limits():
    hint = MemoryForm().fields["topics"].help_text
    assert hint == (
        f"One topic per box, commas allowed; each is at most {MAX_TOPIC_CHARS} letters, "
        f"{MAX_TOPICS} at most."
    )
    too_long = MemoryForm({"text": "ok", "topics": "y" * (MAX_TOPIC_CHARS + 1)})
    too_many = MemoryForm({"text": "ok", "topics": [f"t{n}" for n in range(MAX_TOPICS + 1)]})
    assert f"each is at most {MAX_TOPIC_CHARS} letters" in too_long.errors["topics"][0]
    assert f"At most {MAX_TOPICS} topics" in too_many.errors["topics"][0]


def test_the_memory_forms_carry_their_limits_to_the_page(editor_client, agent):
    insert_memory(agent, "ann", text="Likes tea.", topics=["drinks"])
    page = editor_client.get(reverse("memories:user", args=[agent.slug]), {"user_id": "ann"})
    html = page.content.decode()
    assert html.count(f'maxlength="{MAX_MEMORY_CHARS}"') == 1  # the add form's text
    assert MemoryForm().fields["topics"].help_text in html
    memory_id = html.split('data-memory-id="')[1].split('"')[0]
    edit = editor_client.get(
        memory_url(agent, memory_id, "edit", user_id="ann"),
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert f'maxlength="{MAX_MEMORY_CHARS}"' in edit and "Likes tea.</textarea>" in edit


def test_the_settings_inputs_carry_the_ranges_the_rules_allow(editor_client, agent):
    html = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    for name, (low, high) in (
        ("num_history_runs", NUM_HISTORY_RUNS_RANGE),
        ("max_tool_calls_from_history", MAX_TOOL_CALLS_RANGE),
        ("compress_tool_results_threshold", COMPRESSION_THRESHOLD_RANGE),
    ):
        tag = html.split(f'name="{name}"')[1].split(">")[0]
        assert f'min="{low}" max="{high}"' in tag


def test_the_import_form_accepts_the_files_an_import_reads(editor_client, agent):
    html = editor_client.get(reverse("memories:import", args=[agent.slug])).content.decode()
    assert 'accept=".jsonl,.ndjson,.json,.csv"' in html


def test_a_prune_preview_names_the_most_affected_users_and_counts_the_rest(editor_client, agent):
    for n in range(pruning.AFFECTED_USERS_SHOWN + 3):
        insert_memory(agent, f"user{n:02d}", text="x", topics=[])
    job = pruning.preview_prune(agent, pruning.PruneCriteria(keep_newest=0), None)
    affected = pruning.prune_affected_users(job)
    assert len(affected.most) == pruning.AFFECTED_USERS_SHOWN and affected.more == 3
    assert pruning.prune_affected_users(job, limit=30).more == 0
    html = editor_client.get(
        reverse("memories:prune_job", args=[agent.slug, job.pk])
    ).content.decode()
    assert "… and 3 more users." in html


def test_an_import_lists_the_first_rejected_rows_and_counts_the_rest(editor_client, agent):
    report = import_export.ImportReport(
        rejected=[(n, "bad") for n in range(import_export.REJECTED_SHOWN + 5)]
    )
    assert len(report.rejected_shown) == import_export.REJECTED_SHOWN and report.rejected_more == 5
    assert import_export.ImportReport(rejected=[(1, "bad")]).rejected_more == 0
    data = b"not json\n" * (import_export.REJECTED_SHOWN + 5)
    response = editor_client.post(
        reverse("memories:import", args=[agent.slug]),
        {"file": SimpleUploadedFile("bad.jsonl", data)},
    )
    html = response.content.decode()
    assert html.count("<li>Line ") == import_export.REJECTED_SHOWN and "… and 5 more." in html


def test_the_per_day_chart_spans_the_days_its_title_says(editor_client, agent):
    overview = cost.cost_overview(agent)
    assert len(overview.per_day) == cost.PER_DAY_DAYS == overview.per_day_days
    html = editor_client.get(reverse("memories:cost", args=[agent.slug])).content.decode()
    assert f"Memories created per day (last {cost.PER_DAY_DAYS} days)" in html


def test_the_users_list_explains_its_counts_with_the_counting_rules(editor_client, agent):
    insert_memory(agent, "ann", text="x" * 41, topics=[])
    (row,) = agent_users(agent).items
    assert row.approx_tokens == -(-41 // CHARS_PER_TOKEN)
    html = editor_client.get(reverse("agents:memory_tab", args=[agent.slug])).content.decode()
    assert f"Estimate: stored bytes ÷ {CHARS_PER_TOKEN}, not counted yet" in html
    assert f"(tiktoken {ENCODING_NAME})" in html


def test_the_token_estimate_reads_a_texts_bytes_from_its_stored_size(agent):
    insert_memory(agent, "ann", text="x" * 41, topics=[])
    insert_memory(agent, "ann", text="y" * 500, topics=[])  # a 4-byte header past 126 bytes
    insert_memory(agent, "bo", text="日本語" * 10, topics=[])  # 30 letters, 90 bytes
    rows = {row.user_id: row for row in agent_users(agent).items}
    assert 541 <= rows["ann"].memory_chars <= 544
    assert rows["bo"].memory_chars == 90


def test_a_heavy_users_estimate_is_scaled_from_a_sample_of_their_memories(agent, monkeypatch):
    from memories.runtime import users as runtime_users
    from memories.runtime.memories import insert_memory as add

    monkeypatch.setattr(runtime_users, "ESTIMATE_SAMPLE", 3)
    for _ in range(6):
        add(agent, "heavy", text="z" * 100, topics=[])
    for _ in range(3):
        add(agent, "light", text="w" * 40, topics=[])
    add(agent, None, text="v" * 50, topics=[])
    rows = {row.user_id: row for row in agent_users(agent).items}
    assert rows["heavy"].memory_count == 6 and rows["heavy"].memory_chars == 600  # 3 read, × 2
    assert rows["light"].memory_chars == 120 and rows[None].memory_chars == 50  # read whole


def test_a_scan_runs_until_it_finishes(editor_client, agent):
    insert_memory(agent, "ann", text="Prefers tea.", topics=[])
    insert_memory(agent, "bob", text="Prefers coffee.", topics=[])
    url = reverse("memories:sensitive", args=[agent.slug])
    state = flags.scan_next_batch(agent, batch=1)
    assert state.is_running
    running = editor_client.get(url).content.decode()
    # The worker drives the scan now; the page polls while it runs instead of asking for batches.
    assert "so far" in running and "A background worker is scanning" in running
    assert 'hx-trigger="every 2s"' in running and "Scan the agent" not in running
    while state.is_running:
        state = flags.scan_next_batch(agent, batch=1)
    assert SensitiveScan.objects.get(agent=agent).is_running is False
    done = editor_client.get(url).content.decode()
    assert "Scanned all 2 memories" in done and 'hx-trigger="every 2s"' not in done


def test_the_bulk_confirmation_warns_when_a_memory_is_not_the_users(editor_client, agent):
    ann, _ = insert_memory(agent, "ann", text="Prefers tea.", topics=[])
    bob, _ = insert_memory(agent, "bob", text="Prefers coffee.", topics=[])
    url = reverse("memories:bulk_delete", args=[agent.slug])
    mine = editor_client.post(url, {"user_id": "ann", "memory_ids": [ann.memory_id]})
    mixed = editor_client.post(
        url, {"user_id": "ann", "memory_ids": [ann.memory_id, bob.memory_id]}
    )
    assert "not this user" not in mine.content.decode()
    assert "Some selected memories are not this user" in mixed.content.decode()
    assert len(runtime.memories_by_id(agent, [ann.memory_id, bob.memory_id])) == 2  # nothing gone


def test_the_agents_list_notes_estimates_when_any_agent_is_estimated(
    editor_client, make_agent, monkeypatch
):
    from memories.runtime import overview

    make_agent(name="Alpha")
    zed = make_agent(name="Zed")
    insert_memory(zed, "ann", text="Prefers tea.", topics=[])
    insert_memory(zed, "bob", text="Likes jazz.", topics=[])
    with runtime.in_agent_schema(zed) as tables, tables.cursor() as cursor:
        cursor.execute(tables.sql("ANALYZE {memories}"))  # the planner now counts 2 rows
    monkeypatch.setattr(overview, "EXACT_COUNT_LIMIT", 2)  # Zed is "large"
    html = editor_client.get(reverse("agents:list")).content.decode()
    assert "≈ counts come from Postgres' statistics" in html
    assert "≈2" in table_row(html, "Zed")


def test_the_error_page_titles_its_status(editor_client, agent):
    missing = editor_client.get(reverse("memories:user", args=[agent.slug]), {"user_id": "nobody"})
    broken = editor_client.get(reverse("memories:user", args=[agent.slug]))
    assert missing.status_code == 404 and "<h1>Not found</h1>" in missing.content.decode()
    assert broken.status_code == 400 and "<h1>That did not work</h1>" in broken.content.decode()


def test_the_users_list_offers_the_orders_its_form_accepts(editor_client, agent):
    url = reverse("agents:memory_tab", args=[agent.slug])
    html = editor_client.get(url, {"sort": "over"}).content.decode()
    for value, label in UserSearchForm().fields["sort"].choices:
        selected = " selected" if value == "over" else " "
        assert f'<option value="{value}"{selected}>{label}</option>' in html
