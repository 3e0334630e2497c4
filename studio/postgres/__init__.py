"""The studio's Postgres backend (studio.postgres.base) and the settings every connection
takes: parameters bound on the server, statements prepared from their fifth run.

A request runs the same dozen statements again and again (its session, its user, the agent,
a page of memories); parsed once per connection and bound rather than quoted into the SQL,
they took about a tenth off Postgres's CPU a request, and the load run served about a tenth
more requests a second (docs/benchmarks.md). A pooler in transaction mode that cannot keep
prepared statements (PgBouncer before 1.22, which also needs `max_prepared_statements` above
0) wants `DB_PREPARED_STATEMENTS=False`. They are planned for their parameters every time
(studio.postgres.base): only the parsing is saved, never a plan chosen for other values.
"""

from __future__ import annotations

from typing import Any

ENGINE = "studio.postgres"
_POSTGRES_ENGINES = {"django.db.backends.postgresql", ENGINE}
# psycopg's default: a statement is prepared on a connection once it has run this often.
PREPARE_THRESHOLD = 5


def use_studio_backend(databases: dict[str, dict[str, Any]], *, prepared: bool) -> None:
    """Every Postgres entry of `databases` on this backend, bound on the server and, when
    `prepared`, preparing its frequent statements. Options an entry sets itself are kept."""
    for entry in databases.values():
        if entry.get("ENGINE") not in _POSTGRES_ENGINES:
            continue
        entry["ENGINE"] = ENGINE
        options = entry.setdefault("OPTIONS", {})
        options.setdefault("server_side_binding", True)
        options.setdefault("prepare_threshold", PREPARE_THRESHOLD if prepared else None)
