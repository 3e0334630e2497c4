"""Scratch logins and schemas for the benchmark and the load run.

Each is created under a fresh name and removed afterwards by what was created, never looked
up by name: a real `bench-admin` login or a schema someone else made is never touched.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django_tasks_db.models import DBTaskResult

from agents.models import Agent
from memories.runtime.schema import quoted_schema


@contextmanager
def scratch_login(
    prefix: str, *, password: str | None = None, superuser: bool = False, role: str | None = None
) -> Iterator[User]:
    """A staff login named `<prefix>-<random hex>`, deleted on the way out."""
    username = f"{prefix}-{secrets.token_hex(4)}"
    with transaction.atomic():  # a name already taken fails here instead of being reused
        if superuser:
            user = User.objects.create_superuser(username, password=password)
        else:
            user = User.objects.create_user(username, password=password, is_staff=True)
    try:
        if role:
            user.groups.add(Group.objects.get(name=role))
        yield user
    finally:
        User.objects.filter(pk=user.pk).delete()


def delete_scratch_agent(agent: Agent) -> None:
    """The scratch agent, the token recounts its writes queued (no worker ran them, and left
    behind they wait for the next worker to count an agent that is gone) and its audit
    events: a real agent's outlive it (SET_NULL), but a load run's 2,000 writes a run would
    fill the development database's audit log with an agent nobody made."""
    from memories.models import AuditEvent

    DBTaskResult.objects.filter(
        task_path__endswith="recount_user", args_kwargs__args__0=agent.pk
    ).delete()
    AuditEvent.objects.filter(agent=agent).delete()
    agent.delete()


@contextmanager
def scratch_schema(prefix: str) -> Iterator[str]:
    """A new, empty Postgres schema named `<prefix>_<random hex>`, dropped on the way out."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    quoted = quoted_schema(name)
    # Without IF NOT EXISTS: an existing schema of that name is an error, never ours to drop.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {quoted}")
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
