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


def flash(
    request: HttpRequest,
    message: str,
    level: str = "success",
    *,
    undo: dict[str, Any] | None = None,
) -> None:
    """A message for the next page. `undo` (as toast's) rides in extra_tags, so base.html
    draws a plain Undo form under it: the same trash entries restored without JavaScript."""
    extra = json.dumps({"undo": undo}) if undo else ""
    messages.add_message(request, LEVELS[level], message, extra_tags=extra)


def flash_undo(message: Any) -> dict[str, Any] | None:
    """The Undo a flashed message carries ({"url": ..., "trashed": [ids]}), or None."""
    try:
        undo = json.loads(message.extra_tags or "null")
    except ValueError:
        return None
    undo = undo.get("undo") if isinstance(undo, dict) else None
    if not isinstance(undo, dict) or not isinstance(undo.get("trashed"), list):
        return None
    return undo
