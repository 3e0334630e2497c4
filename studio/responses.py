"""What every view answers with besides its own page: a refusal, or the part htmx asked for."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults

from studio.feedback import toast

ERROR_TITLES = {404: "Not found", 403: "Not allowed", 503: "Database unavailable"}


def bad_request(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    """A plain-words refusal: a toast for htmx, the error page otherwise. Nothing was changed."""
    if request.htmx:
        response = HttpResponse(message, status=status, content_type="text/plain")
        return toast(response, message, "error")
    title = ERROR_TITLES.get(status, "That did not work")
    context = {"message": message, "status": status, "title": title}
    return render(request, "error.html", context, status=status)


def page_or_partial(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    partials: dict[str, str],
    status: int = 200,
) -> HttpResponse:
    """The whole page, or the named partial whose element (by id) an htmx request targets."""
    target = request.htmx.target if request.htmx else None
    partial = partials.get(target or "")
    name = f"{template}#{partial}" if partial else template
    return render(request, name, context, status=status)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403 with the reason the check gave ("Your role can view…", a read-only runtime…)."""
    message = str(exception) or "You are not allowed to do that."
    return bad_request(request, message, status=403)


def refused_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400 for a form Django refuses before any view runs (too many fields, too much data),
    in words rather than a bare "Bad Request". Anything else (a bad Host) keeps Django's."""
    if isinstance(exception, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        message = (
            f"Nothing was saved: the form sent more than {limit:,} fields "
            "(a memory takes at most 20 new topics). Remove some and send it again."
        )
    elif isinstance(exception, RequestDataTooBig):
        message = "Nothing was saved: the form sent more data than the dashboard accepts."
    else:
        return defaults.bad_request(request, exception)
    return bad_request(request, message)
