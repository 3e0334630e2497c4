"""Pruning with a preview: the criteria, and the exact memories a confirmed prune deletes.

The preview fixes the candidates (with each one's updated_at) in studio tables; the
deletion itself is memories.actions.run_prune_batch, in short batches that keep any memory
changed since the preview.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from agents.models import Agent
from memories.context_cost import count_tokens
from memories.models import PruneCandidate, PruneJob
from memories.runtime.prune import prune_candidates, topics_spaced_otherwise
from memories.users import user_label

PRUNE_BATCH = 2_000
INSERT_CHUNK = 5_000
AFFECTED_USERS_SHOWN = 20  # the preview names this many users; the rest are a count


@dataclass(frozen=True)
class PruneCriteria:
    older_than_days: int | None = None  # not updated for this many days
    keep_newest: int | None = None  # per user
    topic: str = ""
    # With one_user, only this user_id's memories: None is the runtime's NULL and "" its
    # empty user_id, as every page names them (memories.users.user_query).
    user_id: str | None = ""
    one_user: bool = False

    def __post_init__(self) -> None:
        # Criteria stored before one_user existed named a user by a non-empty user_id alone.
        if self.user_id and not self.one_user:
            object.__setattr__(self, "one_user", True)

    def is_empty(self) -> bool:
        return not (
            self.older_than_days or self.keep_newest is not None or self.topic or self.one_user
        )

    def describe(self) -> str:
        parts = []
        if self.older_than_days:
            parts.append(f"not updated for {self.older_than_days} days")
        if self.keep_newest is not None:
            parts.append(f"beyond the newest {self.keep_newest} of each user")
        if self.topic:
            parts.append(f"with topic “{self.topic}”")
        if self.one_user and self.user_id is None:
            parts.append(f"stored with {user_label(None)} (NULL)")
        elif self.one_user and self.user_id == "":
            parts.append(f'stored with the {user_label("")} ("")')
        elif self.one_user:
            parts.append(f"of user “{self.user_id}”")
        return ", ".join(parts)


def preview_prune(
    agent: Agent, criteria: PruneCriteria, actor: AbstractBaseUser | None
) -> PruneJob:
    """Fix the exact memories a prune will delete, and what it saves; deletes nothing."""
    now = int(timezone.now().timestamp())
    candidates = prune_candidates(
        agent,
        # Each memory is a "\n- text" line of the block it leaves.
        line_tokens=lambda text: count_tokens(f"\n- {text}"),
        user_id=criteria.user_id,
        one_user=criteria.one_user,
        topic=criteria.topic,
        changed_before=(
            now - criteria.older_than_days * 86_400 if criteria.older_than_days else None
        ),
        keep_newest=criteria.keep_newest,
    )
    with transaction.atomic():
        job = PruneJob.objects.create(
            agent=agent,
            actor=actor if actor is not None and actor.is_authenticated else None,
            criteria=asdict(criteria),
            planned=len(candidates),
            users=len({owner for _, owner, _, _ in candidates}),
            tokens_saved=sum(tokens for *_, tokens in candidates),
        )
        for start in range(0, len(candidates), INSERT_CHUNK):
            PruneCandidate.objects.bulk_create(
                PruneCandidate(
                    job=job, memory_id=memory_id, user_id=owner, memory_changed_at=changed
                )
                for memory_id, owner, changed, _ in candidates[start : start + INSERT_CHUNK]
            )
    return job


def other_spacings(agent: Agent, criteria: PruneCriteria) -> list[tuple[str, int]]:
    """Stored topics that differ from the prune's only in spaces, with how many memories hold
    each. The prune matches its topic exactly (the runtime may store "travel " on purpose),
    so the preview names these rather than a stray space matching nothing unsaid."""
    if not criteria.topic:
        return []
    return topics_spaced_otherwise(
        agent, criteria.topic, user_id=criteria.user_id, one_user=criteria.one_user
    )


@dataclass(frozen=True)
class AffectedUsers:
    most: list[tuple[str, int]]  # (user_id, memories going), most first
    more: int  # users the prune touches beyond those named


def prune_affected_users(job: PruneJob, limit: int = AFFECTED_USERS_SHOWN) -> AffectedUsers:
    """The users a previewed prune touches most, and how many more it touches."""
    rows = (
        job.candidates.values("user_id").annotate(n=Count("id")).order_by("-n", "user_id")[:limit]
    )
    most = [(row["user_id"], row["n"]) for row in rows]
    return AffectedUsers(most, max(0, job.users - len(most)))
