"""`/healthz` for load balancers and uptime probes: can each database answer, and how fast.

No login and nothing secret: only aliases, up or down, and the time a `SELECT 1` took.
"""

from __future__ import annotations

import time

from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    studio = database_health(STUDIO_ALIAS)
    # For now the runtime's connections are every other configured database alias.
    runtime = {alias: database_health(alias) for alias in connections if alias != STUDIO_ALIAS}
    body = {
        "status": "ok" if studio["up"] else "down",
        "studio_database": studio,
        "runtime_connections": runtime,
    }
    return JsonResponse(body, status=200 if studio["up"] else 503)
