"""An agent's users: registered people (studio) and the user_ids the runtime holds, merged.

The registry lives in the studio's database and the memories in the agent's runtime schema,
so the two are read apart and merged here, in user_id order, never joined through a
search path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from django.db import connection

from agents.models import Agent
from memories.models import EndUser, SensitiveFlag, UserTokens
from memories.runtime import access
from memories.runtime.users import UserStats, stored_chars, user_stats, users_with_stats
from studio.sql_rows import fetch, select_list

# A rough, clearly labelled estimate until a real tokenizer counts them: ~4 bytes of text a
# token (runtime.users.STORED_CHARS reads them from the stored size).
CHARS_PER_TOKEN = 4


def unreachable_reason(user_id: str | None) -> str:
    """Why memories under this user_id reach no conversation ("" when they reach someone)."""
    if user_id is None:
        return (
            "Stored without a user_id (NULL): agno loads a person's memories by their user_id, "
            "so no conversation ever reads these."
        )
    if user_id == "":
        return (
            "Stored with an empty user_id: agno reads an empty user_id as “default”, so these "
            "memories reach no one's conversation."
        )
    return ""


def user_query(user_id: str | None) -> str:
    """A user as URL query parameters: the NULL and the empty user_id travel as themselves."""
    if user_id is None:
        return "no_user_id=1"
    return "user_id=" + quote(user_id, safe="")


def user_label(user_id: str | None) -> str:
    """How a user_id is named on pages: the two that are not text anyone typed get words."""
    if user_id is None:
        return "no user_id"
    return "empty user_id" if user_id == "" else user_id


@dataclass
class UserRow:
    user_id: str | None  # None: the runtime's rows stored with user_id NULL
    registered: EndUser | None = None
    # The registered person this key belongs to under the *other* key kind (email vs id).
    other_kind_match: EndUser | None = None
    memory_count: int = 0
    session_count: int = 0
    last_update: int | None = None
    memory_chars: int = 0
    counted_tokens: int | None = None  # exact, from the token cache (memories.tokens)
    flagged: int = 0  # memories the sensitive-data scan flagged (memories.flags)
    agent: Agent | None = field(default=None, repr=False)  # whose budget the row is judged by

    @property
    def is_unregistered(self) -> bool:
        return self.registered is None

    @property
    def label(self) -> str:
        return user_label(self.user_id)

    @property
    def unreachable(self) -> str:
        return unreachable_reason(self.user_id)

    @property
    def is_over_budget(self) -> bool:
        return self.agent is not None and self.agent.is_over_budget(self.counted_tokens)

    @property
    def wrong_key(self) -> str:
        if self.agent is None or self.other_kind_match is None:
            return ""
        return wrong_key_message(self.agent, self.other_kind_match)

    @property
    def approx_tokens(self) -> int:
        return -(-self.memory_chars // CHARS_PER_TOKEN)

    def take(self, stats: UserStats) -> None:
        self.memory_count, self.session_count = stats.memory_count, stats.session_count
        self.last_update, self.memory_chars = stats.last_update, stats.memory_chars


def agent_users(
    agent: Agent, *, after: str | None = None, prefix: str = "", limit: int = access.PAGE_SIZE
) -> access.Page[UserRow]:
    """Registered users and runtime user_ids in user_id order, with per-row counts: one
    runtime query, one registry query, one for the studio's figures and, for users the token
    sweep has not counted yet, one for the characters behind their estimate."""
    limit = access.page_limit(limit)
    after_key = access.decode_cursor(after, (str,))[0] if after else None
    # Rows stored with user_id NULL are one entry of their own, atop the first page.
    first_page = after_key is None and not prefix
    stats = users_with_stats(
        agent, after=after_key, prefix=prefix, limit=limit + 1, with_null=first_page
    )
    runtime_keys = [key for key in stats if key is not None]
    by_id = agent.user_id_kind == Agent.UserIdKind.ID
    people, studio_keys = _registered_people(
        agent, runtime_keys, after=after_key, prefix=prefix, limit=limit
    )
    # The embedded server's C collation orders text as Python compares str.
    keys = sorted({*runtime_keys, *studio_keys})[: limit + 1]
    page = access.keyset_page(keys, limit, lambda key: (key,))
    shown: list[str | None] = ([None] if None in stats else []) + list(page.items)
    rows = [UserRow(key, agent=agent) for key in shown]
    for row in rows:
        row.take(stats.get(row.user_id, UserStats()))
    _match_registered(rows, people, by_id=by_id)
    attach_studio_figures(agent, rows)
    uncounted = [row for row in rows if row.counted_tokens is None and row.memory_count]
    if uncounted:
        chars = stored_chars(agent, {row.user_id: row.memory_count for row in uncounted})
        for row in uncounted:
            row.memory_chars = chars.get(row.user_id, 0)
    return access.Page(rows, page.next_cursor)


def _registered_people(
    agent: Agent, runtime_keys: list[str], *, after: str | None, prefix: str, limit: int
) -> tuple[list[EndUser], list[str]]:
    """In one query: the next registered keys of the agent's kind after `after` (returned as
    the second value), and whoever the runtime's keys on this page belong to, by either key."""
    column = "external_id" if agent.user_id_kind == Agent.UserIdKind.ID else "email"
    table = EndUser._meta.db_table
    # Plain SQL (studio.sql_rows): the ORM's union of two querysets took longer to compile
    # than both halves took to run. The second half leaves out who the first already has:
    # a registered person with memories is in both, and was read (and built) twice.
    columns = select_list(EndUser)
    found = fetch(
        EndUser,
        f"WITH shown AS (SELECT {columns}, true AS in_window FROM {table} WHERE {column} <> '' "
        f"AND (%(after)s::text IS NULL OR {column} > %(after)s) AND {column} LIKE %(prefix)s "
        f"ORDER BY {column} LIMIT %(n)s) "
        f"SELECT * FROM shown UNION ALL (SELECT {columns}, false FROM {table} "
        "WHERE (email = ANY(%(keys)s) OR external_id = ANY(%(keys)s)) "
        "AND id NOT IN (SELECT id FROM shown))",
        {
            "after": after,
            "prefix": access.like_escaped(prefix) + "%",
            "n": limit + 1,
            "keys": runtime_keys,
        },
        extras=["in_window"],
    )
    people: dict[int, EndUser] = {}
    keys = []
    for person in found:
        people.setdefault(person.pk, person)
        if person.in_window:
            keys.append(getattr(person, column))
    return list(people.values()), keys


def user_rows(agent: Agent, user_ids: Sequence[str | None]) -> list[UserRow]:
    """Rows of the users list for given user_ids, in that order (e.g. the heaviest first)."""
    rows = [UserRow(key, agent=agent) for key in user_ids]
    stats = user_stats(agent, user_ids)
    for row in rows:
        row.take(stats[row.user_id])
    _attach_registered_users(rows, by_id=agent.user_id_kind == Agent.UserIdKind.ID)
    attach_studio_figures(agent, rows)
    return rows


def attach_studio_figures(agent: Agent, rows: list[UserRow]) -> None:
    """Each row's counted tokens and flagged memories, from the studio's tables in one query."""
    if not rows:
        return
    keys = [row.user_id for row in rows if row.user_id is not None]
    with_null = any(row.user_id is None for row in rows)
    tokens_table, flags_table = UserTokens._meta.db_table, SensitiveFlag._meta.db_table
    match = "(user_id = ANY(%(keys)s) OR (%(with_null)s AND user_id IS NULL))"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 'tokens', user_id, tokens FROM {tokens_table} "
            f"WHERE agent_id = %(agent)s AND {match} "
            f"UNION ALL SELECT 'flagged', user_id, count(*) FROM {flags_table} "
            f"WHERE agent_id = %(agent)s AND {match} GROUP BY user_id",
            {"agent": agent.pk, "keys": keys, "with_null": with_null},
        )
        found = cursor.fetchall()
    counted = {key: n for kind, key, n in found if kind == "tokens"}
    flagged = {key: n for kind, key, n in found if kind == "flagged"}
    for row in rows:
        row.counted_tokens = counted.get(row.user_id)
        row.flagged = flagged.get(row.user_id, 0)


def _match_registered(rows: list[UserRow], people: list[EndUser], *, by_id: bool) -> None:
    by_email = {person.email: person for person in people}
    by_external = {person.external_id: person for person in people if person.external_id}
    expected, other = (by_external, by_email) if by_id else (by_email, by_external)
    for row in rows:
        if row.user_id:
            row.registered = expected.get(row.user_id)
            if row.registered is None:
                row.other_kind_match = other.get(row.user_id)


def _attach_registered_users(rows: list[UserRow], *, by_id: bool) -> None:
    keys = [row.user_id for row in rows if row.user_id]
    if not keys:
        return
    # Plain SQL (studio.sql_rows): every user page asks, and the ORM's OR of two IN lists
    # cost more to build than to run.
    people = fetch(
        EndUser,
        f"SELECT {select_list(EndUser)} FROM {EndUser._meta.db_table} "
        "WHERE email = ANY(%s) OR external_id = ANY(%s)",
        [keys, keys],
    )
    _match_registered(rows, people, by_id=by_id)


def registered_user(agent: Agent, user_id: str) -> tuple[EndUser | None, EndUser | None]:
    """The registered person for a user_id, and, failing that, one matched by the other key."""
    row = UserRow(user_id)
    _attach_registered_users([row], by_id=agent.user_id_kind == Agent.UserIdKind.ID)
    return row.registered, row.other_kind_match


def wrong_key_message(agent: Agent, person: EndUser) -> str:
    """Why a user_id that is a registered person's other key (their email where the agent
    keys by id, or the reverse) reaches nobody: the same words on every page."""
    by_id = agent.user_id_kind == Agent.UserIdKind.ID
    found, expected = ("email", "id") if by_id else ("id", "email")
    right_key = (person.external_id if by_id else person.email) or "none set"
    return (
        f"This user_id is the {found} of {person.full_name or person.email}, but {agent.name} "
        f"keys memories by {expected} ({right_key}). "
        "The running agent will not load these memories for that person."
    )
