"""Small builders for tests: people with roles, agents on throwaway schemas, agno handles,
memories written as the runtime writes them; and the few readers many test files share."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode

from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.db.models import JSONField, Value
from django.urls import reverse

from agents.memory_settings import MemorySettings
from agents.models import Agent
from agents.roles import install_roles
from memories import runtime
from memories.models import EndUser, Memory
from memories.runtime.memories import insert_memory
from memories.runtime.schema import ensure_runtime_tables
from studio import database_urls

PASSWORD = "correct-horse-battery-staple"
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_staff(username: str, role: str) -> User:
    install_roles(Group, Permission)  # transactional tests flush the migration's groups
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def unique_schema(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def make_agent(**fields: Any) -> Agent:
    slug = fields.pop("slug", None) or f"agent-{uuid.uuid4().hex[:8]}"
    settings = fields.pop("settings", MemorySettings(session_storage=True, user_memories=True))
    return Agent.objects.create(
        name=fields.pop("name", slug.replace("-", " ").title()),
        slug=slug,
        db_schema=fields.pop("db_schema", None) or unique_schema(),
        agno_settings=settings.to_json(),
        **fields,
    )


def make_person(email: str, **fields: Any) -> EndUser:
    return EndUser.objects.create(email=email, **fields)


def sqlalchemy_url() -> str:
    """The test database as agno's PostgresDb reaches it (same server, same database)."""
    return database_urls.sqlalchemy_url(connection.settings_dict)


def make_memory(
    agent: Agent,
    user_id: str,
    text: str = "Prefers concise answers.",
    topics: Iterable[str] = (),
    *,
    input_text: str = "",
) -> Memory:
    """One memory written as the runtime would; an agent that never ran gets its tables."""
    return insert_memory(agent, user_id, text=text, topics=list(topics), input_text=input_text)[0]


def make_memories(
    agent: Agent,
    user_id: str,
    count: int = 3,
    *,
    text: str = "Fact {n} of {user_id}.",
    days_old: int = 0,
    **fields: Any,
) -> list[Memory]:
    """`count` memories of one user in a single INSERT, the newest first (n = 0).

    `text` is formatted with the row's number `n` and the `user_id`; any other Memory field
    is a value for every row or a function of `n` (`created_at=lambda n: 1_000 + n`). By
    default memories are `days_old` days old, one second apart, with the runtime's JSON null
    for no topics.
    """
    now = int(time.time()) - days_old * 86_400
    columns: dict[str, Any | Callable[[int], Any]] = {
        "memory_id": lambda n: str(uuid.uuid4()),
        "memory": lambda n: text.format(n=n, user_id=user_id),
        "topics": None,
        "created_at": lambda n: now - n,
        "updated_at": lambda n: now - n,
        **fields,
        "user_id": user_id,
    }
    memories = [
        Memory(**{name: value(n) if callable(value) else value for name, value in columns.items()})
        for n in range(count)
    ]
    without_topics = [memory for memory in memories if memory.topics is None]
    for memory in without_topics:
        memory.topics = Value(None, output_field=JSONField())  # JSON null, as agno writes it
    with runtime.in_agent_schema(agent) as tables:
        if not tables.memories:
            ensure_runtime_tables(tables.location)
        Memory.objects.bulk_create(memories)
    for memory in without_topics:
        memory.topics = None
    return memories


def memory_texts(agent: Agent, user_id: str) -> list[str]:
    """A user's memory texts as stored now, sorted: what a test checks after a write."""
    return sorted(m.text for m in runtime.user_memories(agent, user_id, limit=200).items)


def user_page(agent: Agent, user_id: str, **params: Any) -> str:
    """The user page's URL, every parameter quoted whole (user_ids hold "/", "%", spaces)."""
    query = {"user_id": user_id, **params}
    return (
        reverse("memories:user", args=[agent.slug])
        + "?"
        + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
    )


def table_row(html: str, text: str) -> str:
    """The one table row of a page that holds `text`: assert on that row, not the page."""
    rows = [row for row in re.findall(r"<tr\b.*?</tr>", html, re.S) if text in row]
    assert len(rows) == 1, f"{len(rows)} table rows hold {text!r}"
    return rows[0]


def memory_url(agent: Agent, memory_id: str, action: str = "row", **params: str) -> str:
    """A memory's row, edit or delete URL: ids travel in the query string."""
    query = urlencode({"memory_id": memory_id, **params})
    return f"{reverse(f'memories:{action}', args=[agent.slug])}?{query}"


def shown_version(agent: Agent, memory_id: str, user_id: str | None = "ann") -> str:
    """The version a row's Delete button posts: the memory as the page showed it."""
    return runtime.get_memory(agent, user_id, memory_id).version


def session_url(agent: Agent, session_id: str, action: str = "transcript") -> str:
    query = urlencode({"session_id": session_id})
    return f"{reverse(f'memories:{action}', args=[agent.slug])}?{query}"


def agno_session_with_run(agno: Any, session_id: str, user_id: str, created_at: int, said: str):
    """A session with one run of one user message, written by agno's own PostgresDb."""
    from agno.models.message import Message
    from agno.run.agent import RunOutput
    from agno.session import AgentSession

    agno.upsert_session(
        AgentSession(
            session_id=session_id, agent_id="helper", user_id=user_id, created_at=created_at
        )
    )
    run = RunOutput(
        run_id=f"{session_id}-r",
        session_id=session_id,
        agent_id="helper",
        user_id=user_id,
        created_at=created_at,
        messages=[Message(role="user", content=said)],
    )
    agno.upsert_run(run, session_id=session_id, user_id=user_id, run_index=0)


def agno_context_block(agent, user_id: str) -> str:
    """The memory block of the system message agno itself builds (no model call)."""
    from agno.agent import Agent as AgnoAgent
    from agno.agent._messages import get_system_message
    from agno.db.postgres import PostgresDb
    from agno.models.openai import OpenAIChat
    from agno.run.base import RunContext
    from agno.session import AgentSession

    db = PostgresDb(db_url=sqlalchemy_url(), db_schema=agent.db_schema)
    try:
        built = AgnoAgent(
            model=OpenAIChat(id="gpt-4o-mini", api_key="not-used: no call is made"),
            db=db,
            add_memories_to_context=True,
            enable_agentic_memory=True,
        )
        run = RunContext(run_id="r", session_id="s", user_id=user_id)
        system = get_system_message(
            built, AgentSession(session_id="s", user_id=user_id), run_context=run
        ).content
    finally:
        db.db_engine.dispose()
    start = system.index("You have access to user info")
    return system[start : system.index("\n<updating_user_memories>", start)]


def stored_memories(schema: str) -> list[tuple]:
    """Every memory row exactly as Postgres holds it: JSONB as canonical text, and whether
    topics is SQL NULL (JSON null reads as the text 'null')."""
    with database_urls.psycopg_connect(connection.settings_dict) as conn:
        return conn.execute(
            "SELECT memory_id, memory::text, topics IS NULL, topics::text, input, feedback, "
            f'agent_id, team_id, user_id, created_at, updated_at FROM "{schema}".agno_memories '
            'ORDER BY memory_id COLLATE "C"'
        ).fetchall()


def set_memory_columns(schema: str, memory_id: str, **sql: str) -> None:
    """Give columns values agno's PostgresDb never writes itself (SQL NULL topics or
    updated_at), as another writer of the same table might: `topics="NULL"`."""
    assignments = ", ".join(f"{column} = {value}" for column, value in sql.items())
    with database_urls.psycopg_connect(connection.settings_dict) as conn:
        conn.execute(
            f'UPDATE "{schema}".agno_memories SET {assignments} WHERE memory_id = %s', [memory_id]
        )


def clear_memories(schema: str) -> None:
    """Empty an agent's memory table (if agno created it), so examples do not pile up."""
    with database_urls.psycopg_connect(connection.settings_dict) as conn:
        conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'agno_memories'",
            [schema],
        ).fetchone() and conn.execute(f'DELETE FROM "{schema}".agno_memories')


def run_queued_tasks(max_tasks: int | None = None) -> int:
    """Run every task that is ready, in this process, as `manage.py db_worker --batch` does,
    but inside the test's transaction (the worker's loop would close its connection)."""
    from django.db import transaction
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    ran = 0
    while max_tasks is None or ran < max_tasks:
        with transaction.atomic():
            task_result = DBTaskResult.objects.ready().get_locked()
            if task_result is None:
                return ran
            task_result.claim("test-worker")
        worker.run_task(task_result)
        ran += 1
    return ran


def memory_tab_data(**overrides: str | None) -> dict[str, str]:
    """The Memory tab's form as a browser sends it for the default settings (session storage
    and manual memories on), with `overrides` on top; None leaves a field out (a box the
    person unchecked)."""
    data = {
        "session_storage": "on",
        "num_history_runs": "3",
        "user_memories_on": "on",
        "max_tool_calls_from_history": "0",
        "compress_tool_results_threshold": "0",
        **overrides,
    }
    return {name: value for name, value in data.items() if value is not None}
