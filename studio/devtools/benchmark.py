"""Side-by-side benchmark on one scratch agent schema at production scale.

Builds the runtime's exact tables with set-based SQL, then times, on the same data, our
pages in-process (Django test client) against Django admin's changelist, Agno's AgentOS
API (in-process through its ASGI app), PostgresDb.get_user_memories and the raw SQL floor
(psycopg alone). Runs once without and once with manage.py runtime_indexes' indexes.
Needs the test requirements (agno, fastapi, httpx, python-multipart, openai).
"""

from __future__ import annotations

import html
import platform
import re
import resource
import time
import tracemalloc
from typing import Any

import psycopg
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import include, path
from django.utils.http import urlencode

from agents.memory_settings import MemorySettings
from agents.models import Agent
from memories.models import Memory, UserTokens
from memories.runtime import encode_cursor, in_agent_schema
from memories.runtime.indexes import drop_runtime_indexes, ensure_runtime_indexes
from memories.runtime.memories import SORT_KEYS
from studio.database_urls import psycopg_connect, sqlalchemy_url
from studio.devtools.bench_data import HEAVY_MEMORIES, HEAVY_USER, RARE_WORD, build_schema
from studio.devtools.figures import Figure, figure_rows, measure, report_table
from studio.devtools.scratch import delete_scratch_agent, scratch_login, scratch_schema


class BenchMemoryAdmin(admin.ModelAdmin):
    """What a team gets from Django admin over the runtime table, searching the text."""

    list_display = ["memory_id", "user_id", "memory", "updated_at"]
    list_per_page = 25
    ordering = ["-updated_at"]

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        return lookup in ("user_id", "user_id__exact") or super().lookup_allowed(
            lookup, value, request
        )

    def get_search_results(self, request: Any, queryset: Any, search_term: str) -> tuple[Any, bool]:
        if not search_term:
            return queryset, False
        condition = RawSQL("(memory #>> '{}') ILIKE %s", (f"%{search_term}%",), BooleanField())
        return queryset.filter(condition), False

    search_fields = ["memory"]


bench_admin_site = admin.AdminSite(name="bench_admin")
bench_admin_site.register(Memory, BenchMemoryAdmin)
urlpatterns = [
    path("bench-admin/", bench_admin_site.urls),
    path("", include("studio.urls")),
]


def _sqlalchemy_url() -> str:
    return sqlalchemy_url(connection.settings_dict)


def _psycopg_connection() -> psycopg.Connection:
    return psycopg_connect(connection.settings_dict)


# Every figure is timed in ROUNDS passes over the whole list, each pass taking its share of
# the samples. This machine's speed drifts over minutes (by 2x within an hour, unchanged
# code), and one pass timed the raw SQL floor minutes after the pages divided by it, so a
# drift between them moved a ratio by half its value from one run to the next. In rounds,
# a page and its peers are slowed alike.
ROUNDS = 5


def run_phase(agent: Agent, staff: User, repeat: int, label: str) -> list[Figure]:
    """The phase's figures, their samples gathered over ROUNDS passes (repeat in all)."""
    per_round = max(1, -(-repeat // ROUNDS))
    merged: dict[str, Figure] = {}
    for _ in range(ROUNDS):
        for figure in _one_round(agent, staff, per_round, label):
            if figure.name in merged:
                merged[figure.name].samples_ms += figure.samples_ms
            else:
                merged[figure.name] = figure  # its queries and memory from the first pass
    return list(merged.values())


@override_settings(DEBUG=False)  # as in production: no query log, no template debug info
def _one_round(agent: Agent, staff: User, repeat: int, label: str) -> list[Figure]:
    schema, slug = agent.db_schema, agent.slug
    client = Client()
    client.force_login(staff)
    figures: list[Figure] = []
    user_url = f"/agents/{slug}/user/"
    with _psycopg_connection() as raw:
        deep_key = raw.execute(
            f'SELECT {SORT_KEYS["updated"]}, memory_id FROM "{schema}".agno_memories '
            "WHERE user_id = %s ORDER BY 1 DESC, 2 DESC OFFSET 5000 LIMIT 1",
            [HEAVY_USER],
        ).fetchone()
        deep_user = raw.execute(
            f'SELECT user_id FROM "{schema}".agno_memories WHERE user_id LIKE %s '
            "ORDER BY user_id DESC LIMIT 1 OFFSET 2000",
            ["user%"],
        ).fetchone()[0]
    pages = {
        "users: first page": ("GET", f"/agents/{slug}/", {}),
        "users: deep keyset page": ("GET", f"/agents/{slug}/", {"after": encode_cursor(deep_user)}),
        "users: prefix search": ("GET", f"/agents/{slug}/", {"q": "user0999"}),
        "memories: first page": ("GET", user_url, {"user_id": HEAVY_USER}),
        "memories: deep page": (
            "GET",
            user_url,
            {"user_id": HEAVY_USER, "after": encode_cursor(*deep_key)},
        ),
        "memories: text search": ("GET", user_url, {"user_id": HEAVY_USER, "q": RARE_WORD}),
        "memories: topic filter": ("GET", user_url, {"user_id": HEAVY_USER, "topic": "product"}),
        "sessions: first page": ("GET", f"/agents/{slug}/user/sessions/", {"user_id": HEAVY_USER}),
        "search across the agent": ("GET", f"/agents/{slug}/memories/", {"q": RARE_WORD}),
    }
    for name, (_, url, params) in pages.items():
        figures.append(_page_figure(client, name, label, url, params, repeat))

    figures.append(_inline_edit_figure(client, agent, repeat, label))
    figures += _counted_users_figures(client, agent, repeat, label)

    # Django admin's changelist, superuser, search_path at the session level for its queries.
    admin_client = Client()
    admin_client.force_login(staff)
    with override_settings(ROOT_URLCONF=__name__), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('search_path', %s, false)", [f'"{schema}", public'])
        try:
            for name, params in (
                ("admin: memories by user_id", {"user_id__exact": HEAVY_USER}),
                ("admin: text search", {"q": RARE_WORD}),
            ):

                def admin_call(params: dict = params) -> None:
                    response = admin_client.get("/bench-admin/memories/memory/", params)
                    assert response.status_code == 200, response.status_code

                figures.append(measure(name, f"Django admin ({label})", admin_call, repeat))
        finally:
            cursor.execute("SELECT set_config('search_path', '\"$user\", public', false)")

    figures += _agno_figures(schema, repeat, label)
    figures += _floor_figures(schema, repeat, label)
    return figures


def _page_figure(
    client: Client, name: str, label: str, url: str, params: dict, repeat: int
) -> Figure:
    """One of our pages timed, then asked once more for its queries, SQL time and peak
    Python memory."""

    def call() -> None:
        response = client.get(url, params)
        assert response.status_code == 200, (url, response.status_code)

    figure = measure(name, f"Memory Studio ({label})", call, repeat)
    with CaptureQueriesContext(connection) as captured:
        call()
    figure.queries = len(
        [q for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    )
    figure.sql_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
    figure.runtime_sql_ms = 1000 * sum(
        float(q["time"]) for q in captured.captured_queries if "agno_" in q["sql"]
    )
    tracemalloc.start()
    call()
    figure.peak_kb = tracemalloc.get_traced_memory()[1] / 1024
    tracemalloc.stop()
    return figure


def _counted_users_figures(client: Client, agent: Agent, repeat: int, label: str) -> list[Figure]:
    """The users list as it is once the worker's token sweep has counted everyone (the steady
    state with `make run` or production workers): no memory row is read for an estimate.
    The counts are written as the sweep would leave them; the agent's deletion removes them."""
    table = UserTokens._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (agent_id, user_id, tokens, memories, refreshed_at, "
            f"newest_memory_at) SELECT %s, user_id, 12 * count(*), count(*), now(), "
            f'max({SORT_KEYS["updated"]}) FROM "{agent.db_schema}".agno_memories '
            "WHERE user_id IS NOT NULL GROUP BY user_id ON CONFLICT DO NOTHING",
            [agent.pk],
        )
        cursor.execute(f"ANALYZE {table}")  # as autovacuum would after 100,000 new rows
    url = f"/agents/{agent.slug}/"
    figures = [
        _page_figure(client, "users: first page, all counted", label, url, {}, repeat),
        _page_figure(
            client, "users: prefix search, all counted", label, url, {"q": "user0999"}, repeat
        ),
    ]
    UserTokens.objects.filter(agent=agent).delete()
    return figures


def _inline_edit_figure(client: Client, agent: Agent, repeat: int, label: str) -> Figure:
    """Saving an inline edit of one of the heavy user's 10,000 memories, as htmx posts it:
    the edit form is fetched first (untimed), as the browser has it before Enter is pressed."""
    with in_agent_schema(agent) as tables:
        memory_id = tables.Memory.objects.filter(user_id=HEAVY_USER).values_list(
            "memory_id", flat=True
        )[0]
    query = urlencode({"user_id": HEAVY_USER, "memory_id": memory_id})
    url = f"/agents/{agent.slug}/memory/edit/?{query}"
    htmx = {"HTTP_HX_REQUEST": "true"}
    figure = Figure("inline edit: save (10,000-memory user)", f"Memory Studio ({label})")
    for n in range(repeat + 3):
        form = client.get(url, **htmx).content.decode()
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
        fields = {name: html.unescape(value) for name, value in fields.items()}
        data = {**fields, "text": f"Benchmark edit number {n}.", "topics": ["product"]}
        started = time.perf_counter()
        response = client.post(url, data, **htmx)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (response.status_code, response.content[:300])
        if n >= 3:  # the first three warm up, as measure() does
            figure.samples_ms.append(elapsed)
    return figure


def _agno_figures(schema: str, repeat: int, label: str) -> list[Figure]:
    import logging

    from agno.agent import Agent as AgnoAgent
    from agno.db.postgres import PostgresDb
    from agno.os import AgentOS
    from fastapi.testclient import TestClient

    logging.getLogger("agno").setLevel(logging.ERROR)
    db = PostgresDb(db_url=_sqlalchemy_url(), db_schema=schema)
    app = AgentOS(agents=[AgnoAgent(id="bench", db=db)]).get_app()
    figures = []
    with TestClient(app) as api:
        for name, url in (
            ("AgentOS: /memories?user_id (25)", f"/memories?user_id={HEAVY_USER}&limit=25"),
            ("AgentOS: /memories?search_content", f"/memories?search_content={RARE_WORD}&limit=25"),
            ("AgentOS: /user_memory_stats (25)", "/user_memory_stats?limit=25"),
        ):

            def api_call(url: str = url) -> None:
                response = api.get(url)
                assert response.status_code == 200, (url, response.status_code, response.text[:200])

            figures.append(measure(name, f"AgentOS API ({label})", api_call, repeat))
    figures.append(
        measure(
            "PostgresDb.get_user_memories (25)",
            f"agno PostgresDb ({label})",
            lambda: db.get_user_memories(
                user_id=HEAVY_USER, limit=25, page=1, sort_by="updated_at", sort_order="desc"
            ),
            repeat,
        )
    )
    db.db_engine.dispose()
    return figures


def _floor_figures(schema: str, repeat: int, label: str) -> list[Figure]:
    raw = _psycopg_connection()
    statements = {
        "raw SQL: a user's 25 newest memories": (
            f'SELECT * FROM "{schema}".agno_memories WHERE user_id = %s '
            f"ORDER BY {SORT_KEYS['updated']} DESC, memory_id DESC LIMIT 25",
            [HEAVY_USER],
        ),
        "raw SQL: 25 users with counts": (
            f'SELECT user_id, count(*), max(updated_at) FROM "{schema}".agno_memories '
            "WHERE user_id IN (SELECT DISTINCT user_id FROM "
            f'"{schema}".agno_memories ORDER BY 1 LIMIT 25) GROUP BY user_id',
            [],
        ),
        "raw SQL: text search across the agent": (
            f"SELECT * FROM \"{schema}\".agno_memories WHERE (memory #>> '{{}}') ILIKE %s "
            f"ORDER BY {SORT_KEYS['updated']} DESC, memory_id DESC LIMIT 25",
            [f"%{RARE_WORD}%"],
        ),
    }
    figures = []
    for name, (sql, params) in statements.items():
        figures.append(
            measure(
                name,
                f"raw SQL floor ({label})",
                lambda sql=sql, params=params: raw.execute(sql, params).fetchall(),
                repeat,
            )
        )
    raw.close()
    return figures


def benchmark(
    *, memories: int, users: int, sessions: int, repeat: int, with_baseline: bool, out: Any
) -> dict:
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
        "size": {
            "memories": memories,
            "users": users,
            "sessions": sessions,
            "heavy_user_memories": HEAVY_MEMORIES,
        },
        "repeat": repeat,
        "rounds": ROUNDS,
    }
    # One superuser for our pages and Django admin's: it and the schema go away afterwards.
    with scratch_login("bench-admin", superuser=True) as staff, scratch_schema("bench") as schema:
        agent = Agent.objects.create(
            name=f"Benchmark {schema}",
            slug=schema.replace("_", "-"),
            db_schema=schema,
            agno_settings=MemorySettings(session_storage=True, user_memories=True).to_json(),
        )
        try:
            out.write(
                f"Building {memories:,} memories, {users:,} users, {sessions:,} sessions in {schema}…\n"
            )
            results["build_seconds"] = {
                k: round(v, 1) for k, v in build_schema(schema, memories, users, sessions).items()
            }
            out.write(
                f"Built in {sum(results['build_seconds'].values()):.1f} s: {results['build_seconds']}\n"
            )
            phases = []
            if with_baseline:
                phases.append(("runtime's indexes only", False))
            phases.append(("with runtime_indexes", True))
            for label, indexed in phases:
                if indexed:
                    started = time.perf_counter()
                    ensure_runtime_indexes(schema)
                    with connection.cursor() as cursor:
                        cursor.execute(
                            f'ANALYZE "{schema}".agno_memories, "{schema}".agno_sessions'
                        )
                    results["index_build_seconds"] = round(time.perf_counter() - started, 1)
                figures = run_phase(agent, staff, repeat, label)
                for line in report_table(figures, label):
                    out.write(line + "\n")
                results[label] = figure_rows(figures)
            results["peak_rss_mb"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            )
        finally:
            drop_runtime_indexes(schema)
            delete_scratch_agent(agent)  # and the recounts the timed edits queued
    return results
