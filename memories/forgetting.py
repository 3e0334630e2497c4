"""Forgetting a person leaves no studio-side trace of their user_id, only a keyed hash.

The hash is an HMAC-SHA256 keyed with SECRET_KEY and FORGET_RECEIPT_SALT: whoever holds the
key can check that a given user_id was forgotten (a person asking "did you erase me?"), while
the receipt, the audit log and the jobs no longer say who it was.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import Q

from agents.models import Agent
from memories import tokens
from memories.models import (
    AuditEvent,
    EndUser,
    Job,
    PruneCandidate,
    PruneJob,
    SensitiveFlag,
    TrashedMemory,
)

PREFIX = "hmac-sha256:"
# What the runtime's rows without a user_id are called in receipts (no person to hide).
NULL_USER = "\x00no user_id"


def user_hash(user_id: str | None) -> str:
    key = (settings.SECRET_KEY + settings.FORGET_RECEIPT_SALT).encode()
    value = NULL_USER if user_id is None else user_id
    return PREFIX + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def hashed(value: Any, user_id: str, digest: str) -> Any:
    """`value` (JSON) with the user_id replaced by its hash: as a whole value, or quoted in a
    sentence (“ann”, as PruneCriteria.describe writes it); never inside other words."""
    if isinstance(value, str):
        if value == user_id:
            return digest
        return value.replace(f"“{user_id}”", f"“{digest}”")
    if isinstance(value, list):
        return [hashed(item, user_id, digest) for item in value]
    if isinstance(value, dict):
        return {key: hashed(item, user_id, digest) for key, item in value.items()}
    return value


def drop_agent_traces(agent: Agent, user_id: str | None, digest: str) -> int:
    """The user's studio rows in one agent: counts, flags, prune candidates and trash go;
    audit events and prune criteria keep the hash. Returns how many trashed memories went."""
    tokens.drop_counts(agent, user_id)
    SensitiveFlag.objects.filter(agent=agent, user_id=user_id).delete()
    PruneCandidate.objects.filter(job__agent=agent, user_id=user_id).delete()
    trashed, _ = TrashedMemory.objects.filter(agent=agent, user_id=user_id).delete()
    if user_id:  # the NULL user (stored as "") is nobody to hide
        for event in AuditEvent.objects.filter(agent=agent, user_id=user_id):
            event.user_id = digest
            event.details = hashed(event.details, user_id, digest)
            event.save(update_fields=["user_id", "details"])
        for prune in PruneJob.objects.filter(agent=agent, criteria__user_id=user_id):
            prune.criteria = hashed(prune.criteria, user_id, digest)
            prune.save(update_fields=["criteria"])
        running_forgets = Q(kind=Job.Kind.FORGET, state__in=[Job.State.QUEUED, Job.State.RUNNING])
        # A forget still running needs the user_id; its last batch hides it (job_batches).
        for job in Job.objects.filter(agent=agent, params__user_id=user_id).exclude(
            running_forgets
        ):
            hide_in_job(job, user_id, digest)
        _drop_queued_recounts([agent.pk], user_id)
    return trashed


def hide_in_job(job: Job, user_id: str, digest: str) -> None:
    job.params = hashed(job.params, user_id, digest)
    job.result = hashed(job.result, user_id, digest)
    job.save(update_fields=["params", "result"])


def _drop_queued_recounts(agent_ids: Sequence[int], user_id: str) -> None:
    """Recount tasks name the user in their arguments; a forgotten user has nothing to count."""
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from memories.tasks import recount_user

    DBTaskResult.objects.filter(
        task_path=recount_user.module_path,
        args_kwargs__args__0__in=list(agent_ids),
        args_kwargs__args__1=user_id,
    ).exclude(status=TaskResultStatus.RUNNING).delete()


def remove_registration(user_id: str | None) -> bool:
    """Delete the registry entry whose email or id is `user_id`; True if there was one."""
    if not user_id:
        return False
    removed, _ = EndUser.objects.filter(Q(email__iexact=user_id) | Q(external_id=user_id)).delete()
    return bool(removed)
