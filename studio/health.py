"""`/healthz` for load balancers and uptime probes: can each database answer, and how fast.

No login and nothing secret: only aliases, up or down, and the time a `SELECT 1` took.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

STUDIO_ALIAS = "default"


def database_health(alias: str) -> dict[str, bool | float]:
    """Whether the connection answers a query, and how long the round trip (or failure) took."""
    started = time.perf_counter()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        up = True
    except DatabaseError:
        up = False
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return {"up": up, "latency_ms": latency_ms}


@never_cache
@require_safe  # GET and HEAD: load balancers and uptime probes often send HEAD
def healthz(request: HttpRequest) -> JsonResponse:
    studio = database_health(STUDIO_ALIAS)
    # Each RUNTIME_DATABASES connection (and its replica); "default" is the studio's own.
    runtime: dict[str, dict] = {}
    for name, connection in settings.RUNTIME_CONNECTIONS.items():
        if connection.alias == STUDIO_ALIAS:
            continue
        runtime[name] = database_health(connection.alias)
        if connection.replica_alias:
            runtime[name]["replica"] = database_health(connection.replica_alias)
    body = {
        "status": "ok" if studio["up"] else "down",
        "studio_database": studio,
        "runtime_connections": runtime,
    }
    return JsonResponse(body, status=200 if studio["up"] else 503)
