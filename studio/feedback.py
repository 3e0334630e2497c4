"""How an action tells the person what happened: a toast for htmx, a message otherwise."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse

LEVELS = {"success": messages.SUCCESS, "warning": messages.WARNING, "error": messages.ERROR}


def toast(
    response: HttpResponse,
    message: str,
    level: str = "success",
    *,
    undo: dict[str, Any] | None = None,
) -> HttpResponse:
    """base.html's script shows HX-Trigger's toast event; the message is text, never HTML.
    `undo` ({"url": ..., "trashed": [ids]}) adds an Undo button that posts them back."""
    event: dict[str, Any] = {"message": message, "level": level}
    if undo:
        event["undo"] = undo
    response["HX-Trigger"] = json.dumps({"toast": event})
    return response


def first_error(form: Any) -> str:
    """The first thing a person must fix in a form, as the sentence the form gives."""
    for errors in form.errors.values():
        return str(errors[0])
    return "The form is invalid."


def flash(request: HttpRequest, message: str, level: str = "success") -> None:
    messages.add_message(request, LEVELS[level], message)
