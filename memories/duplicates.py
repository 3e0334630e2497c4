"""Duplicates: groups of one user's memories that say the same thing, and what removing the
repeats saves. The newest memory of a group is kept unless the person chooses otherwise;
the removal itself is memories.actions.remove_duplicates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agents.models import Agent
from memories.context_cost import count_tokens
from memories.models import Memory
from memories.runtime import duplicates as runtime_duplicates
from memories.runtime.memories import memories_by_id

DEFAULT_THRESHOLD = 0.8
MIN_THRESHOLD = 0.3  # below this pg_trgm calls almost any two sentences alike


def line_tokens(memory: Memory) -> int:
    """What one memory costs in every system message: its "\n- text" line."""
    return count_tokens(f"\n- {memory.text}")


@dataclass
class DuplicateGroup:
    user_id: str | None
    kind: str  # "exact" or "near"
    members: list[Memory]  # newest first: the first is kept by default
    similarity: float | None = None  # the weakest link of a near group

    @property
    def keep(self) -> Memory:
        return self.members[0]

    @property
    def repeats(self) -> list[Memory]:
        return self.members[1:]

    @property
    def tokens_saved(self) -> int:
        return sum(line_tokens(memory) for memory in self.repeats)

    @property
    def merged_topics(self) -> list[str]:
        """Every topic of the group, the kept memory's first, each once."""
        return list(dict.fromkeys(t for memory in self.members for t in memory.topic_list))


@dataclass
class DuplicateReport:
    groups: list[DuplicateGroup] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD
    near_error: str = ""  # why near repeats are missing (no pg_trgm, too slow)
    truncated: bool = False

    @property
    def repeats(self) -> int:
        return sum(len(group.repeats) for group in self.groups)

    @property
    def tokens_saved(self) -> int:
        return sum(group.tokens_saved for group in self.groups)

    def group_of(self) -> dict[str, DuplicateGroup]:
        return {m.memory_id: group for group in self.groups for m in group.members}


def _newest_first(memories: Iterable[Memory]) -> list[Memory]:
    return sorted(memories, key=lambda m: (m.last_changed_at, m.memory_id), reverse=True)


def find_duplicates(
    agent: Agent,
    *,
    user_id: str | None = None,
    all_users: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    near: bool = True,
) -> DuplicateReport:
    """Exact and (if asked) near repeats among one user's memories, or each user's of the
    agent; a memory in both kinds of group joins them into one near group."""
    exact = runtime_duplicates.exact_groups(agent, user_id, all_users=all_users)
    report = DuplicateReport(
        threshold=threshold, truncated=len(exact) >= runtime_duplicates.MAX_GROUPS
    )
    pairs: list[tuple[str, str, float]] = []
    if near:
        try:
            pairs = runtime_duplicates.near_pairs(
                agent, user_id, all_users=all_users, threshold=threshold
            )
        except (runtime_duplicates.TrigramMissing, runtime_duplicates.NearSearchTooSlow) as error:
            report.near_error = error.message
        report.truncated |= len(pairs) >= runtime_duplicates.MAX_PAIRS
    # Union-find over "is a repeat of": exact groups are chains, near pairs single links.
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for ids in exact:
        for other in ids[1:]:
            parent[root(other)] = root(ids[0])
    exact_group = {memory_id: n for n, ids in enumerate(exact) for memory_id in ids}
    # A near pair inside one exact group adds nothing: that group stays exact.
    pairs = [p for p in pairs if exact_group.get(p[0], -1) != exact_group.get(p[1], -2)]
    for a, b, _ in pairs:
        parent[root(b)] = root(a)
    weakest: dict[str, float] = {}
    for a, _, similarity in pairs:
        top = root(a)
        weakest[top] = min(weakest.get(top, 1.0), similarity)
    components: dict[str, list[str]] = {}
    for node in list(parent):
        components.setdefault(root(node), []).append(node)
    rows = memories_by_id(agent, list(parent))
    for top, ids in components.items():
        members = [rows[i] for i in ids if i in rows]
        if len(members) < 2:
            continue
        is_exact = top not in weakest
        report.groups.append(
            DuplicateGroup(
                user_id=members[0].user_id,
                kind="exact" if is_exact else "near",
                members=_newest_first(members),
                similarity=None if is_exact else weakest.get(top),
            )
        )
    report.groups.sort(key=lambda g: (g.user_id or "", g.kind, -len(g.members), g.keep.memory_id))
    return report


class RemovalRefused(ValueError):
    """What the person asked to remove does not fit the groups as they are now."""


@dataclass(frozen=True)
class Removal:
    user_id: str | None
    keep: Memory  # the newest memory of the group that stays
    remove: list[Memory]
    topics: list[str] | None  # the kept memory's new topics, when merging changes them


def plan_removal(
    report: DuplicateReport, remove_ids: Iterable[str], *, merge_topics: bool
) -> list[Removal]:
    """Per group, the memories chosen for removal; every group keeps at least one."""
    chosen = set(remove_ids)
    groups = report.group_of()
    if not chosen:
        raise RemovalRefused("Choose at least one repeat to remove.")
    if chosen - set(groups):
        raise RemovalRefused(
            "Some of the chosen memories are no longer repeats (they changed or were removed). "
            "Nothing was removed; look at the groups again."
        )
    removals = []
    for group in {id(g): g for g in (groups[i] for i in chosen)}.values():
        staying = [m for m in group.members if m.memory_id not in chosen]
        if not staying:
            raise RemovalRefused(
                "Every memory of a group was chosen: keep at least one of each group. "
                "Nothing was removed."
            )
        going = [m for m in group.members if m.memory_id in chosen]
        topics = None
        if merge_topics:
            merged = list(dict.fromkeys(t for m in [staying[0], *going] for t in m.topic_list))
            topics = merged if merged != staying[0].topic_list else None
        removals.append(Removal(group.user_id, staying[0], going, topics))
    return removals
