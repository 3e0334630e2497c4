"""Request gates: staff login on every page, plain answers when the database fails, and the
Content-Security-Policy on every response, error pages included."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict

import psycopg
from csp.constants import HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import InterfaceError, OperationalError, ProgrammingError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseForbidden,
    JsonResponse,
)
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

# Django admin guards itself; the login page and static files must stay reachable; the
# settings API authenticates running agents by their own bearer token; probes read /healthz.
OPEN_PREFIXES = (
    "/login/",
    "/admin/",
    "/api/",
    "/healthz",
    "/" + settings.STATIC_URL.lstrip("/"),
)
# Answered to programs, not people: JSON even when the database is down.
JSON_PREFIXES = ("/api/", "/healthz")


class StaffRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(OPEN_PREFIXES):
            return self.get_response(request)
        user = request.user
        if user.is_authenticated and user.is_staff and user.is_active:
            return self.get_response(request)
        if user.is_authenticated:
            return HttpResponseForbidden(
                "Your account is not a staff account, so it cannot open Memory Studio. "
                "Ask an administrator for the Viewer or Editor role."
            )
        if getattr(request, "htmx", False):
            # htmx follows HX-Redirect, so an expired session lands on the login page.
            response = HttpResponseForbidden("Your session has ended. Log in again.")
            # The path is encoded, never raw: CR/LF in it would break the header.
            response["HX-Redirect"] = redirect_to_login(request.get_full_path())["Location"]
            return response
        return redirect_to_login(request.get_full_path())


class ErrorPagesCSPMiddleware(CSPMiddleware):
    """django-csp leaves DEBUG's 404 and 500 pages without the policy; ours keep it always.

    The studio's policy is the same on every response (no nonces, no per-view csp
    decorators, no report-only policy), so it is built once rather than twice a response.
    A response or request that asks for something else goes through django-csp as usual."""

    _PER_RESPONSE = (
        "_csp_config",
        "_csp_update",
        "_csp_replace",
        "_csp_config_ro",
        "_csp_update_ro",
        "_csp_replace_ro",
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        plain = not getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None) and not (
            getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
        ).get("EXCLUDE_URL_PREFIXES")
        self.static_policy = build_policy() if plain else ""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if (
            self.static_policy
            and getattr(request, "_csp_nonce", None) is None
            and not any(hasattr(response, name) for name in self._PER_RESPONSE)
        ):
            if HEADER not in response and not getattr(response, "_csp_exempt", False):
                response[HEADER] = self.static_policy
            # As django-csp does: a nonce asked for after the header is written is an error.
            request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
            return response
        response = super().process_response(request, response)
        if HEADER not in response and not getattr(response, "_csp_exempt", False):
            policy = build_policy(**asdict(self.get_policy_parts(request, response)))
            if policy:
                response[HEADER] = policy
        return response


class DatabaseOutageMiddleware:
    """Postgres down or a runtime table drifted: a plain page that says so, never a traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            # The first query of a request: the session and the staff account behind it.
            request.user.is_authenticated  # noqa: B018
        except (OperationalError, InterfaceError):
            return database_unavailable(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from memories.runtime.access import TablesGone
        from memories.runtime.location import RuntimeConnectionMissing

        if isinstance(exception, RuntimeConnectionMissing):
            return _plain_page(request, "Runtime connection missing", str(exception), status=503)
        if isinstance(exception, TablesGone):  # dropped while a request walked them
            return _plain_page(request, "Runtime tables gone", exception.message, status=409)
        cause = getattr(exception, "__cause__", None)
        if isinstance(
            cause, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction
        ):
            return runtime_write_refused(request, cause)
        if isinstance(cause, psycopg.errors.ProgramLimitExceeded):
            return value_too_large(request, cause)
        if isinstance(exception, OperationalError | InterfaceError):
            # An agent on a runtime server of its own, while the studio's database still
            # answers: it is that runtime that is down, not the studio.
            if _agent_on_own_runtime(request) and _studio_database_answers():
                return runtime_unavailable(request)
            return database_unavailable(request)
        if isinstance(exception, ProgrammingError):
            return runtime_table_drifted(request, exception)
        return None


def runtime_write_refused(request: HttpRequest, cause: Exception) -> HttpResponse:
    """A runtime database refusing the studio's role: a write to a read-only one, or a read
    its grants do not allow."""
    logger.warning("Runtime database refused %s %s: %s", request.method, request.path, cause)
    if request.method in ("GET", "HEAD"):
        detail = str(cause).splitlines()[0]
        message = (
            f"The agent's runtime database refused to let Memory Studio read it ({detail}). "
            "Ask whoever runs that database to grant the studio's role (and its replica's) "
            "USAGE on the agent's schema and SELECT on its tables."
        )
        return _plain_page(request, "Runtime not readable", message, status=403)
    message = (
        "The agent's runtime database refused this change: Memory Studio's role there is "
        "read-only. Nothing was changed. Ask whoever runs that database for INSERT, UPDATE "
        "and DELETE on the agent's tables, or mark the connection read-only (RUNTIME_READ_ONLY)."
    )
    return _plain_page(request, "Read-only runtime", message, status=403)


def value_too_large(request: HttpRequest, cause: Exception) -> HttpResponse:
    """A typed value Postgres cannot index (a user_id past the ~2,700 bytes of a btree
    entry, which depends on how well it compresses): the person's to shorten, not an outage.
    The failed statement's transaction was rolled back."""
    logger.info("Postgres refused a value on %s %s: %s", request.method, request.path, cause)
    # Not "nothing was changed": an agent on a runtime database of its own commits there on
    # its own, before the studio's rows that failed (memories.actions).
    message = (
        "Not saved: a value is too long for Postgres to index (a user_id can be about 2,700 "
        "bytes at most). Shorten it and try again."
    )
    return _plain_page(request, "Value too long", message, status=400)


def _agent_on_own_runtime(request: HttpRequest) -> bool:
    from agents.models import Agent

    slug = (request.resolver_match.kwargs.get("slug") if request.resolver_match else None) or ""
    try:
        agent = Agent.objects.filter(slug=slug).only("connection").first()
    except (OperationalError, InterfaceError):
        return False
    return agent is not None and agent.connection not in ("", "default")


def _studio_database_answers() -> bool:
    from django.db import DatabaseError, connections

    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False


def runtime_unavailable(request: HttpRequest) -> HttpResponse:
    logger.error("Runtime database unavailable for %s", request.path, exc_info=True)
    message = (
        "This agent's runtime database cannot be reached right now, so its memories could not "
        "be read or changed. The studio and the other agents are unaffected; try again in a "
        "minute, or ask whoever runs that database to check that it is up (/healthz shows "
        "each connection)."
    )
    return _plain_page(request, "Runtime unavailable", message, status=503)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    logger.error("Database unavailable for %s", request.path, exc_info=True)
    message = (
        "Memory Studio cannot reach its Postgres database right now, so nothing could be read "
        "or changed. Nothing was lost; try again in a minute, or ask whoever runs the "
        "database to check that it is up."
    )
    return _plain_page(request, "Database unavailable", message, status=503)


def runtime_table_drifted(request: HttpRequest, exception: ProgrammingError) -> HttpResponse | None:
    from agents.models import Agent
    from memories.runtime.schema import schema_state

    cause = getattr(exception, "__cause__", None)
    if not isinstance(cause, psycopg.errors.UndefinedColumn | psycopg.errors.UndefinedTable):
        return None
    slug = (request.resolver_match.kwargs.get("slug") if request.resolver_match else None) or ""
    agent = Agent.objects.filter(slug=slug).first()
    problems = list(schema_state(agent).problems) if agent else []
    logger.error("Runtime schema problem on %s: %s", request.path, cause)
    detail = "; ".join(problems) if problems else str(cause).splitlines()[0]
    message = (
        f"The agent's runtime tables are not what Memory Studio expects: {detail}. "
        "The Agno runtime owns these tables; compare them with its schema, or run "
        "`manage.py check` to see every agent's state."
    )
    return _plain_page(request, "Runtime tables changed", message, status=500)


def _plain_page(request: HttpRequest, title: str, message: str, status: int) -> HttpResponse:
    if request.path.startswith(JSON_PREFIXES):
        return JsonResponse({"error": message}, status=status)
    if getattr(request, "htmx", False):
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
        response["HX-Trigger"] = json.dumps({"toast": {"message": message, "level": "error"}})
        return response
    # No base template: it would ask the database who is logged in.
    html = render_to_string("outage.html", {"title": title, "message": message})
    return HttpResponse(html, status=status)
