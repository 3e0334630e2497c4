"""The benchmark's and load run's scratch login and schema: made fresh, removed, nothing else."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, ProgrammingError, connection

from studio.devtools import scratch

pytestmark = pytest.mark.django_db


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def test_a_real_bench_admin_survives_the_benchmark_login():
    real = User.objects.create_user("bench-admin", password="x", is_staff=True)
    with scratch.scratch_login("bench-admin", superuser=True) as login:
        assert login.username.startswith("bench-admin-") and login.is_superuser
        assert User.objects.filter(pk=login.pk).exists()
    assert not User.objects.filter(pk=login.pk).exists()
    real.refresh_from_db()
    assert real.username == "bench-admin" and not real.is_superuser


def test_the_scratch_login_is_removed_when_the_work_fails():
    with pytest.raises(RuntimeError), scratch.scratch_login("load", role="Editor") as login:
        assert list(login.groups.values_list("name", flat=True)) == ["Editor"]
        raise RuntimeError("the run broke")
    assert not User.objects.filter(pk=login.pk).exists()


def test_a_taken_login_name_is_refused_not_reused(monkeypatch):
    monkeypatch.setattr(scratch.secrets, "token_hex", lambda nbytes: "abcd1234")
    taken = User.objects.create_user("bench-admin-abcd1234", password="x")
    with pytest.raises(IntegrityError), scratch.scratch_login("bench-admin", superuser=True):
        pass
    taken.refresh_from_db()
    assert not taken.is_superuser


def test_the_scratch_schema_is_dropped_afterwards():
    with scratch.scratch_schema("bench") as name:
        assert name.startswith("bench_") and schema_exists(name)
    assert not schema_exists(name)


def test_a_taken_schema_name_is_refused_and_kept(monkeypatch):
    monkeypatch.setattr(scratch.secrets, "token_hex", lambda nbytes: "abcd1234")
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "load_abcd1234"')
    with pytest.raises(ProgrammingError), scratch.scratch_schema("load"):
        pass
    assert schema_exists("load_abcd1234")


def test_the_scratch_agent_goes_with_its_queued_recounts_and_audit_events_only():
    from django_tasks_db.models import DBTaskResult

    from agents.models import Agent
    from memories import audit
    from memories.models import AuditEvent
    from memories.tasks import recount_user

    scratch_agent = Agent.objects.create(name="Scratch", slug="scratch", db_schema="scratch_x")
    other = Agent.objects.create(name="Real", slug="real", db_schema="real_x")
    recount_user.enqueue(scratch_agent.pk, "a@example.com")
    recount_user.enqueue(scratch_agent.pk, "b@example.com")
    kept = recount_user.enqueue(other.pk, "a@example.com")
    audit.record(None, scratch_agent, AuditEvent.Action.MEMORY_ADDED, user_id="a@example.com")
    real_event = audit.record(None, other, AuditEvent.Action.MEMORY_ADDED, user_id="a@example.com")
    scratch.delete_scratch_agent(scratch_agent)
    assert not Agent.objects.filter(pk=scratch_agent.pk).exists()
    assert [str(pk) for pk in DBTaskResult.objects.values_list("id", flat=True)] == [kept.id]
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [real_event.pk]
