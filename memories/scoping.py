"""The user_id doctor: which registered person a stray user_id most likely meant, and why.

A user_id is suspicious when no registered person has it as the key the agent uses (their
id or their email). The evidence, strongest first: it is the person's other key (their email
where the agent keys by id, or the reverse); it is the person's key once case, surrounding
spaces and Unicode compatibility forms (NFKC: full-width letters, ligatures) are set aside;
the same for their other key; or it is an alias kept on the person
(`additional_attributes["aliases"]`, a list of strings).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from agents.models import Agent
from memories.context_cost import count_tokens, memory_block
from memories.models import EndUser
from memories.runtime import duplicates as runtime_duplicates
from memories.runtime import scoping as runtime_scoping
from memories.runtime.users import has_memories_without_user_id, user_summary
from memories.users import unreachable_reason, user_label

ALIASES = "aliases"  # the key in EndUser.additional_attributes holding a list of user_ids
# A move of more memories than this runs as a job, off the request.
MOVE_JOB_THRESHOLD = 5_000


def folded(text: str) -> str:
    """A user_id as people mean it: NFKC-normalised, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def aliases_of(person: EndUser) -> list[str]:
    attributes = (
        person.additional_attributes if isinstance(person.additional_attributes, dict) else {}
    )
    aliases = attributes.get(ALIASES)
    return (
        [a for a in aliases if isinstance(a, str) and a.strip()]
        if isinstance(aliases, list)
        else []
    )


@dataclass(frozen=True)
class Suggestion:
    person: EndUser
    target: str  # the user_id the agent keys this person by ("" when they have none yet)
    evidence: str

    @property
    def can_move(self) -> bool:
        return bool(self.target)


class RegisteredIndex:
    """Registered people by every key a stray user_id may match, built once per page."""

    def __init__(self, agent: Agent, people: list[EndUser] | None = None) -> None:
        self.by_id = agent.user_id_kind == Agent.UserIdKind.ID
        self.key_name, self.other_name = ("id", "email") if self.by_id else ("email", "id")
        self.exact: dict[str, EndUser] = {}
        self.matches: dict[str, list[tuple[int, EndUser, str]]] = {}
        for person in EndUser.objects.all() if people is None else people:
            key, other = self._keys(person)
            if key:
                self.exact[key] = person
            for rank, value, evidence in self._evidence(person, key, other):
                self.matches.setdefault(value, []).append((rank, person, evidence))

    def _keys(self, person: EndUser) -> tuple[str, str]:
        if self.by_id:
            return person.external_id, person.email
        return person.email, person.external_id

    def _evidence(self, person: EndUser, key: str, other: str) -> Iterator[tuple[int, str, str]]:
        if other:
            yield (
                0,
                other,
                f"It is their {self.other_name}; this agent keys memories by {self.key_name}.",
            )
        if key:
            yield (
                1,
                folded(key),
                f"The same text as their {self.key_name} once case, surrounding spaces and "
                "Unicode forms (NFKC) are set aside.",
            )
        if other:
            yield (
                2,
                folded(other),
                f"Their {self.other_name} once case, spaces and Unicode forms are set aside; "
                f"this agent keys memories by {self.key_name}.",
            )
        for alias in aliases_of(person):
            yield 3, folded(alias), f"“{alias}” is an alias kept on their registration."

    def is_registered(self, user_id: str) -> bool:
        return user_id in self.exact

    def suggest(self, user_id: str) -> tuple[Suggestion | None, str]:
        """The likely person and the evidence, or None and why not ("" when no clue)."""
        found = self.matches.get(user_id, []) + self.matches.get(folded(user_id), [])
        if not found:
            return None, ""
        best = min(rank for rank, _, _ in found)
        people = {person.pk: (person, evidence) for rank, person, evidence in found if rank == best}
        if len(people) > 1:
            names = ", ".join(sorted(p.email for p, _ in people.values()))
            return None, f"More than one registered person matches equally well ({names})."
        person, evidence = next(iter(people.values()))
        target = self._keys(person)[0]
        return Suggestion(person, target, evidence), ""


@dataclass
class ScopingProblem:
    user_id: str | None
    memories: int
    sessions: int
    suggestion: Suggestion | None = None
    note: str = ""

    @property
    def label(self) -> str:
        return user_label(self.user_id)

    @property
    def problem(self) -> str:
        if self.user_id is None or self.user_id == "":
            return unreachable_reason(self.user_id)
        return "No registered person has this user_id."


def problem_order(problem: ScopingProblem) -> tuple[bool, bool, str]:
    """Those with a suggestion first, then the NULL user, then by user_id."""
    return (problem.suggestion is None, problem.user_id is not None, problem.user_id or "")


def null_user_problem(agent: Agent) -> ScopingProblem | None:
    """The runtime's memories stored without a user_id, if there are any: they reach nobody."""
    if not has_memories_without_user_id(agent):
        return None
    summary = user_summary(agent, None)
    return ScopingProblem(None, summary.memory_count, summary.session_count)


def problems_among(
    index: RegisteredIndex, rows: Iterable[runtime_scoping.UserIdCount]
) -> list[ScopingProblem]:
    """The user_ids of `rows` that no registered person has, each with its suggestion."""
    problems = []
    for row in rows:
        if index.is_registered(row.user_id):
            continue
        problem = ScopingProblem(row.user_id, row.memories, row.sessions)
        if row.user_id:
            problem.suggestion, problem.note = index.suggest(row.user_id)
        problems.append(problem)
    return problems


def scoping_problems(agent: Agent) -> list[ScopingProblem]:
    """Every user_id of the agent that no registered person has as the agent's key, with its
    counts and the suggested person; those with a suggestion first. The scoping check job
    (memories.job_batches) walks the same steps a batch of user_ids at a time."""
    problems = problems_among(RegisteredIndex(agent), runtime_scoping.user_id_counts(agent))
    null_user = null_user_problem(agent)
    if null_user is not None:
        problems.append(null_user)
    problems.sort(key=problem_order)
    return problems


@dataclass
class MovePreview:
    source: str | None
    target: str
    memories: int
    sessions: int
    runs: int
    collisions: list[tuple[str, str, str]] = field(default_factory=list)  # (id, id there, text)
    target_tokens_before: int = 0
    target_tokens_after: int = 0
    source_tokens: int = 0

    @property
    def token_change(self) -> int:
        return self.target_tokens_after - self.target_tokens_before

    @property
    def runs_in_a_job(self) -> bool:
        return self.memories > MOVE_JOB_THRESHOLD


def preview_move(agent: Agent, source: str | None, target: str) -> MovePreview:
    """What moving `source`'s rows to `target` does: counts, exact repeats it would create
    under `target`, and the tokens of `target`'s memory block before and after (agno reads
    every memory of the user into each system message)."""
    moving = runtime_scoping.user_rows(agent, source)
    there = runtime_scoping.user_rows(agent, target)
    texts = dict(moving.memories)
    collisions = [
        (mine, theirs, texts.get(mine, ""))
        for mine, theirs in runtime_duplicates.normalised_collisions(agent, source, target)
    ]
    target_texts = [text for _, text in there.memories]
    moved_texts = [text for _, text in moving.memories]
    return MovePreview(
        source=source,
        target=target,
        memories=len(moving.memories),
        sessions=moving.sessions,
        runs=moving.runs,
        collisions=collisions,
        target_tokens_before=_block_tokens(target_texts),
        target_tokens_after=_block_tokens(target_texts + moved_texts),
        source_tokens=_block_tokens(moved_texts),
    )


def _block_tokens(texts: list[str]) -> int:
    return count_tokens(memory_block(texts)) if texts else 0
