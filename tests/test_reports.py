"""Stored reports (memories.reports): the scoping check and the duplicate search run as jobs,
their pages show what the job stored, and the fixing actions keep the reports right."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.urls import reverse

from agents.models import Agent
from memories import actions, duplicates, reports, scoping
from memories.models import Job, Report
from tests.factories import make_memories, make_memory, make_person, run_queued_tasks


@pytest.fixture(autouse=True)
def trigrams(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")


def scoping_url(agent: Agent) -> str:
    return reverse("memories:scoping", args=[agent.slug])


def duplicates_url(agent: Agent, **params: str) -> str:
    return f"{reverse('memories:duplicates', args=[agent.slug])}?{urlencode(params)}"


def stored_user_ids(agent: Agent) -> list[str | None]:
    return [row["user_id"] for row in reports.scoping_report(agent).rows]


def scope(user_id: str | None = None, *, all_users: bool = False, near: bool = True):
    return reports.DuplicateScope(user_id=user_id, all_users=all_users, threshold=0.8, near=near)


def stored_groups(agent: Agent, search) -> list[list[str]]:
    return [group["members"] for group in reports.duplicate_report(agent, search).rows]


def test_the_check_walks_in_batches_and_finds_what_scoping_problems_finds(agent):
    make_person("ann@example.com", external_id="u-ann", additional_attributes={"aliases": ["a"]})
    for user_id in ("ann@example.com", "ANN@example.com", "u-ann", "a", "ghost", "", "zed"):
        make_memory(agent, user_id)
    make_memories(agent, None, 2)
    expected = [reports.stored_problem(p) for p in scoping.scoping_problems(agent)]
    job = actions.start_scoping_check(actor=None, agent=agent, batch=2)
    assert run_queued_tasks() == 4  # 7 user_ids, 2 a batch
    job.refresh_from_db()
    report = reports.scoping_report(agent)
    assert (job.state, job.done, job.result) == (Job.State.DONE, 7, {"problems": 7})
    assert report.rows == expected and report.total == 7
    suggested_first = ["ANN@example.com", "a", "u-ann", None, "", "ghost", "zed"]
    assert [row["user_id"] for row in report.rows] == suggested_first
    assert report.made_at == job.started_at and report.job == job
    assert "kept" not in job.cursor  # the finished job keeps no copy of the rows


def test_a_check_keeps_the_first_rows_in_the_pages_order_and_counts_the_rest(agent, monkeypatch):
    monkeypatch.setattr(reports, "SCOPING_ROWS", 3)
    make_person("zed@example.com")
    for user_id in ("b1", "b2", "b3", "b4", "ZED@example.com"):
        make_memory(agent, user_id)
    actions.start_scoping_check(actor=None, agent=agent, batch=2)
    run_queued_tasks()
    report = reports.scoping_report(agent)
    assert stored_user_ids(agent) == ["ZED@example.com", "b1", "b2"]  # found in the last batch
    assert report.total == 5


def test_the_page_says_it_was_not_checked_and_an_editor_checks_it_with_htmx(editor_client, agent):
    make_memory(agent, "ghost")
    html = editor_client.get(scoping_url(agent)).content.decode()
    assert "Not checked yet." in html and "Check now" in html and ">ghost<" not in html
    url = reverse("memories:check_scoping", args=[agent.slug])
    response = editor_client.post(url, HTTP_HX_REQUEST="true")
    partial = response.content.decode()
    assert response.status_code == 200 and "<html" not in partial
    assert 'hx-trigger="every 2s"' in partial and "Check now" not in partial
    job = Job.objects.get(kind=Job.Kind.SCOPING_CHECK)
    assert f"#job-{job.pk}" in partial
    again = editor_client.post(url)  # a second click while it runs starts nothing new
    assert again.status_code == 302 and Job.objects.filter(kind=job.kind).count() == 1
    run_queued_tasks()
    polled = editor_client.get(scoping_url(agent), HTTP_HX_REQUEST="true").content.decode()
    assert "every 2s" not in polled and "Checked <time" in polled and ">ghost<" in polled
    assert "Check again" in polled


def test_a_viewer_reads_the_report_but_cannot_start_a_check(viewer_client, agent):
    make_memory(agent, "ghost")
    html = viewer_client.get(scoping_url(agent)).content.decode()
    assert "an Editor can start one" in html and "Check now" not in html
    response = viewer_client.post(reverse("memories:check_scoping", args=[agent.slug]))
    assert response.status_code == 403 and not Job.objects.exists()
    actions.start_scoping_check(actor=None, agent=agent)
    run_queued_tasks()
    html = viewer_client.get(scoping_url(agent)).content.decode()
    assert ">ghost<" in html and "Check again" not in html


def test_a_move_takes_its_user_id_off_the_report(editor_client, agent, monkeypatch):
    make_person("ann@example.com")
    make_person("bob@example.com")
    make_memories(agent, "ANN@example.com", 2)
    make_memories(agent, "BOB@example.com", 8)
    make_memory(agent, "ghost")
    actions.start_scoping_check(actor=None, agent=agent)
    run_queued_tasks()
    assert stored_user_ids(agent) == ["ANN@example.com", "BOB@example.com", "ghost"]
    move = reverse("memories:move_user", args=[agent.slug])
    response = editor_client.post(move, {"user_id": "ANN@example.com", "to": "ghost"})
    assert response.status_code == 302
    report = reports.scoping_report(agent)
    assert stored_user_ids(agent) == ["BOB@example.com", "ghost"] and report.total == 2
    assert report.rows[1]["memories"] == 3  # the target holds the moved memories now
    monkeypatch.setattr(scoping, "MOVE_JOB_THRESHOLD", 5)  # the move job keeps it right too
    editor_client.post(move, {"user_id": "BOB@example.com", "to": "bob@example.com"})
    assert stored_user_ids(agent) == ["BOB@example.com", "ghost"]  # not moved yet
    run_queued_tasks()
    assert stored_user_ids(agent) == ["ghost"]
    html = editor_client.get(scoping_url(agent)).content.decode()
    assert "BOB@example.com" not in html and ">ghost<" in html


def test_a_move_while_the_check_runs_is_left_out_of_what_it_stores(agent):
    make_person("ann@example.com")
    make_memory(agent, "ANN@example.com")
    make_memory(agent, "zed")
    actions.start_scoping_check(actor=None, agent=agent, batch=1)
    run_queued_tasks(max_tasks=1)  # "ANN@example.com" is kept in the job's cursor
    actions.move_user_memories(
        actor=None, agent=agent, source="ANN@example.com", target="ann@example.com"
    )
    run_queued_tasks()
    assert stored_user_ids(agent) == ["zed"]
    assert reports.scoping_report(agent).total == 1


def test_the_duplicate_search_stores_what_find_duplicates_finds(agent):
    make_memories(agent, "ann", 3, text="Same thing.")
    make_memories(agent, "bob", 2, text="Same thing.")
    make_memories(agent, None, 2, text="Other thing.")
    for search, user_id, all_users in (
        (scope("ann"), "ann", False),
        (scope(all_users=True), None, True),
        (scope(None, near=False), None, False),
    ):
        expected = duplicates.find_duplicates(
            agent, user_id=user_id, all_users=all_users, near=search.near
        )
        job = actions.start_duplicate_search(actor=None, agent=agent, scope=search)
        run_queued_tasks()
        job.refresh_from_db()
        assert job.state == Job.State.DONE and job.result["groups"] == len(expected.groups)
        assert stored_groups(agent, search) == [
            [m.memory_id for m in group.members] for group in expected.groups
        ]
        shown = reports.duplicates_of(agent, reports.duplicate_report(agent, search))
        assert [g.members for g in shown.groups] == [g.members for g in expected.groups]
    assert len(stored_groups(agent, scope(all_users=True))) == 3
    # Another threshold is another report; exact only is one report whatever the threshold.
    assert reports.duplicate_report(agent, replace(scope("ann"), threshold=0.5)) is None
    exact = reports.DuplicateScope(user_id=None, all_users=False, threshold=0.5, near=False)
    assert reports.duplicate_report(agent, exact) is not None


def test_the_page_shows_the_stored_search_of_the_scope_asked_for(editor_client, agent):
    make_memories(agent, "ann", 2, text="Same thing.")
    html = editor_client.get(duplicates_url(agent, user_id="ann")).content.decode()
    assert "Not searched yet for this user at this threshold." in html
    assert "Search now" in html and "duplicate-group" not in html
    search = reverse("memories:search_duplicates", args=[agent.slug])
    response = editor_client.post(search, {"user_id": "ann", "threshold": "0.8"})
    assert response.status_code == 302
    assert response["Location"] == duplicates_url(agent, threshold="0.8", user_id="ann")
    job = Job.objects.get(kind=Job.Kind.DUPLICATE_SEARCH)
    assert job.params == {
        "user_id": "ann",
        "all_users": False,
        "threshold": 0.8,
        "exact_only": False,
    }
    running = editor_client.get(duplicates_url(agent, user_id="ann")).content.decode()
    assert "A background worker is searching" in running and 'hx-trigger="every 2s"' in running
    run_queued_tasks()
    html = editor_client.get(duplicates_url(agent, user_id="ann")).content.decode()
    assert "Searched <time" in html and html.count("duplicate-group") == 1
    assert "Search again" in html
    other = editor_client.get(duplicates_url(agent, user_id="ann", threshold="0.5"))
    assert "Not searched yet" in other.content.decode()  # another scope, not searched
    bad = editor_client.post(search, {"user_id": "ann", "threshold": "7"})
    assert bad.status_code == 400 and "at most 1" in bad.content.decode()


def test_a_viewer_cannot_start_a_search(viewer_client, agent):
    make_memories(agent, "ann", 2, text="Same thing.")
    html = viewer_client.get(duplicates_url(agent, user_id="ann")).content.decode()
    assert "an Editor can start one" in html and "Search now" not in html
    response = viewer_client.post(
        reverse("memories:search_duplicates", args=[agent.slug]), {"user_id": "ann"}
    )
    assert response.status_code == 403 and not Job.objects.exists()


def test_removing_repeats_takes_them_off_every_stored_search(editor_client, agent):
    ann = make_memories(agent, "ann", 3, text="Same thing.")
    bob = make_memories(agent, "bob", 2, text="Same thing.")
    for search in (scope("ann"), scope(all_users=True)):
        actions.start_duplicate_search(actor=None, agent=agent, scope=search)
    run_queued_tasks()
    group = {m.memory_id for m in ann}
    newest, *older = stored_groups(agent, scope("ann"))[0]
    response = editor_client.post(
        reverse("memories:remove_duplicates", args=[agent.slug]),
        {"user_id": "ann", "remove": older[:1]},
    )
    assert response.status_code == 302
    assert stored_groups(agent, scope("ann")) == [[newest, older[1]]]
    every = stored_groups(agent, scope(all_users=True))
    assert sorted(map(sorted, every)) == sorted(
        [sorted(group - {older[0]}), sorted(m.memory_id for m in bob)]
    )
    editor_client.post(
        reverse("memories:remove_duplicates", args=[agent.slug]),
        {"user_id": "ann", "remove": older[1:]},
    )
    assert stored_groups(agent, scope("ann")) == []  # a group of one is no group
    html = editor_client.get(duplicates_url(agent, user_id="ann")).content.decode()
    assert "No repeats found" in html and "Searched <time" in html


def test_a_memory_gone_since_the_search_leaves_its_group_on_the_page(editor_client, agent):
    kept, gone = make_memories(agent, "ann", 2, text="Same thing.")
    actions.start_duplicate_search(actor=None, agent=agent, scope=scope("ann"))
    run_queued_tasks()
    actions.delete_memory(actor=None, agent=agent, user_id="ann", memory_id=gone.memory_id)
    html = editor_client.get(duplicates_url(agent, user_id="ann")).content.decode()
    assert "duplicate-group" not in html and "No repeats found" in html


def test_cancel_and_retry_work_as_for_other_jobs(editor_client, agent, monkeypatch):
    from memories import job_batches

    make_memory(agent, "ghost")
    job = actions.start_scoping_check(actor=None, agent=agent)
    response = editor_client.post(reverse("memories:cancel_job", args=[job.pk]))
    assert response.status_code == 302
    run_queued_tasks()
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    html = editor_client.get(scoping_url(agent)).content.decode()
    assert "The last check was cancelled." in html and "Check now" in html

    def broken(job):
        raise RuntimeError("the runtime went away")

    monkeypatch.setitem(job_batches.BATCHES, Job.Kind.SCOPING_CHECK, broken)
    job = actions.start_scoping_check(actor=None, agent=agent)
    run_queued_tasks()
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    html = editor_client.get(scoping_url(agent)).content.decode()
    assert "The last check failed" in html and "it can be retried there" in html
    monkeypatch.undo()
    response = editor_client.post(reverse("memories:retry_job", args=[job.pk]))
    assert response.status_code == 302
    run_queued_tasks()
    job.refresh_from_db()
    assert job.state == Job.State.DONE and stored_user_ids(agent) == ["ghost"]
    jobs_page = editor_client.get(reverse("memories:agent_jobs", args=[agent.slug]))
    assert "Scoping check" in jobs_page.content.decode()


def test_a_forget_takes_the_person_off_every_report(agent):
    make_person("ann@example.com")
    make_memories(agent, "ann", 2, text="Same thing.")
    make_memories(agent, "ANN@example.com", 1)
    make_memories(agent, "bob", 2, text="Same thing.")
    actions.start_scoping_check(actor=None, agent=agent)
    for search in (scope("ann"), scope(all_users=True)):
        actions.start_duplicate_search(actor=None, agent=agent, scope=search)
    run_queued_tasks()
    actions.forget_user(actor=None, agents=[agent], user_id="ann")
    actions.forget_user(actor=None, agents=[agent], user_id="ann@example.com")
    assert reports.duplicate_report(agent, scope("ann")) is None
    assert {g["user_id"] for g in reports.duplicate_report(agent, scope(all_users=True)).rows} == {
        "bob"
    }
    # ANN@example.com pointed to ann@example.com: still a stray user_id, with no clue now.
    assert stored_user_ids(agent) == ["ANN@example.com", "bob"]
    assert "target" not in reports.scoping_report(agent).rows[0]
    text = str(list(Report.objects.values_list("rows", "params", "user_id", "details")))
    assert "ann@example.com" not in text and "'ann'" not in text
