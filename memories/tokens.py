"""What a user's memories cost in context: the exact block agno builds, and a cache of counts.

`UserTokens` is a cache: counting a million memories on every page load is out. Actions
recount the users they change; `manage.py count_tokens` fills in the rest.
"""

from __future__ import annotations

from agents.models import Agent
from memories import runtime
from memories.context_cost import EMPTY, count_tokens, memory_block
from memories.models import UserTokens
from memories.users import UserRow, agent_users, user_rows

# A bulk change touching more users than this drops their counts rather than recounting now.
RECOUNT_NOW_LIMIT = 50


def context_block(agent: Agent, user_id: str | None) -> tuple[str, int]:
    """The exact block agno puts in every system message for this user, and its tokens;
    refreshes the user's cached figure on the way."""
    # The newest time first: a memory written between the two reads is counted but not
    # remembered, so the sweep counts it again rather than never.
    newest, texts = runtime.context_reads(agent, user_id)
    return store_count(agent, user_id, texts, newest)


def store_count(
    agent: Agent, user_id: str | None, texts: list[str], newest: int | None = None
) -> tuple[str, int]:
    """Count the block built from `texts` (read by the caller, in agno's order) and cache it
    with the newest memory time read before them."""
    block = memory_block(texts)
    tokens = count_tokens(block)
    _store_tokens(agent, user_id, tokens if texts else 0, len(texts), newest)
    return block, tokens


def recount_user(agent: Agent, user_id: str | None) -> int:
    """Recount one user; 0 for a user without memories (agno's empty line is not theirs)."""
    block, tokens = context_block(agent, user_id)
    return 0 if block == EMPTY else tokens


def _store_tokens(
    agent: Agent, user_id: str | None, tokens: int, memories: int, newest: int | None
) -> None:
    if user_id is None:
        return  # rows stored with user_id NULL reach no conversation: no block to cache
    if not memories:
        UserTokens.objects.filter(agent=agent, user_id=user_id).delete()
        return
    # One upsert on (agent, user_id): update_or_create took a locked read and a write.
    UserTokens.objects.bulk_create(
        [
            UserTokens(
                agent=agent,
                user_id=user_id,
                tokens=tokens,
                memories=memories,
                newest_memory_at=newest,
            )
        ],
        update_conflicts=True,
        unique_fields=["agent", "user_id"],
        update_fields=["tokens", "memories", "newest_memory_at", "refreshed_at"],
    )


def recount_users(agent: Agent, user_ids: set[str]) -> None:
    """After a bulk change (import, prune): recount small sets now; drop the counts of larger
    ones, so they show as estimates until `manage.py count_tokens --missing` counts them."""
    if len(user_ids) <= RECOUNT_NOW_LIMIT:
        for user_id in sorted(user_ids):  # one lock order for all recounts: no deadlocks
            recount_user(agent, user_id)
    else:
        UserTokens.objects.filter(agent=agent, user_id__in=user_ids).delete()


def count_agent_tokens(agent: Agent, *, batch: int = 500, only_missing: bool = False) -> int:
    """Recount every user of an agent (manage.py count_tokens); returns users counted."""
    counted, after = 0, None
    while True:
        page = agent_users(agent, after=after, limit=batch)
        known = set()
        if only_missing:
            known = set(
                UserTokens.objects.filter(
                    agent=agent, user_id__in=[r.user_id for r in page.items]
                ).values_list("user_id", flat=True)
            )
        for row in page.items:
            if row.memory_count and row.user_id not in known:
                recount_user(agent, row.user_id)
                counted += 1
        if not page.next_cursor:
            return counted
        after = page.next_cursor


def token_map(agent: Agent, user_ids: list[str]) -> dict[str, UserTokens]:
    return {t.user_id: t for t in UserTokens.objects.filter(agent=agent, user_id__in=user_ids)}


def heaviest_users(
    agent: Agent, *, after: str | None = None, over_budget: bool = False, limit: int = 25
) -> runtime.Page[UserRow]:
    """Users by counted tokens, most first (keyset on tokens and user_id)."""
    rows = UserTokens.objects.filter(agent=agent)
    if over_budget:
        rows = rows.filter(agent.over_budget_tokens())
    if after:
        tokens, user_id = runtime.decode_cursor(after, (int, str))
        rows = rows.filter(tokens__lt=tokens) | rows.filter(tokens=tokens, user_id__gt=user_id)
    page = runtime.keyset_page(
        rows.order_by("-tokens", "user_id")[: limit + 1], limit, lambda t: (t.tokens, t.user_id)
    )
    users = user_rows(agent, [t.user_id for t in page.items])
    for row, counted in zip(users, page.items, strict=True):
        row.counted_tokens = counted.tokens
    return runtime.Page(users, page.next_cursor)


def drop_counts(agent: Agent, user_id: str) -> None:
    UserTokens.objects.filter(agent=agent, user_id=user_id).delete()
