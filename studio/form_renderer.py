"""Django's form renderer, with its simplest widget templates built in Python.

Every page with a form renders a textarea or hidden inputs through Django's widget templates:
about 0.3 ms of CPU for one textarea here (the template engine walks `attrs.html`'s loop and
its `if`s for each attribute), more than the whole memory row beside it. `FORM_RENDERER`
points here. For `input.html` (and the widgets that only include it: text, hidden, number…)
and `textarea.html`, `render` builds the markup those templates build, character for
character (tests/test_form_renderer.py compares the two on generated attributes and values);
every other template, and any an app overrides, goes through Django's renderer as before.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import django.forms
from django.forms.renderers import DjangoTemplates

DJANGO_TEMPLATES = Path(django.forms.__file__).parent / "templates"
WIDGETS = "django/forms/widgets/"
# The widget templates whose whole text is {% include "django/forms/widgets/input.html" %}.
INPUT_ONLY = {
    f"{WIDGETS}{name}.html"
    for name in [
        *("checkbox", "color", "date", "datetime", "email", "file", "hidden", "input"),
        *("number", "password", "search", "tel", "text", "time", "url"),
    ]
}
TEXTAREA = f"{WIDGETS}textarea.html"


def _s(value: Any) -> str:
    """The `stringformat:'s'` filter: "%s" % value, a tuple shown whole, "" if that fails."""
    if isinstance(value, tuple):
        value = str(value)
    try:
        return "%s" % value  # noqa: UP031 - exactly the filter's operation
    except (ValueError, TypeError):
        return ""


def e(value: Any) -> str:
    """conditional_escape's result without its lazy-string wrapper, which cost more than the
    rest of a widget's markup: the same text."""
    return value.__html__() if hasattr(value, "__html__") else escape(str(value))


def _attrs(attrs: dict[str, Any]) -> str:
    """attrs.html: ` name="value"` each, a bare ` name` for True, nothing for False."""
    return "".join(
        f" {e(name)}" if value is True else f' {e(name)}="{e(_s(value))}"'
        for name, value in attrs.items()
        if value is not False
    )


class FormRenderer(DjangoTemplates):
    def __init__(self) -> None:
        super().__init__()
        # Built in Python only while Django's own files are the ones in use: an app's
        # templates/django/forms/widgets/ override would win the lookup, and then it renders.
        self.built_in = {
            name
            for name in (*INPUT_ONLY, TEXTAREA)
            if Path(self.engine.get_template(name).origin.name).is_relative_to(DJANGO_TEMPLATES)
        }

    def render(self, template_name: str, context: dict[str, Any], request: Any = None) -> str:
        value = context.get("widget", {}).get("value")
        plain = value is None or type(value) is str  # other values may be localized
        if template_name in self.built_in and set(context) == {"widget"} and plain:
            return self._widget(template_name, context["widget"])
        return super().render(template_name, context, request)

    @staticmethod
    def _widget(template_name: str, widget: dict[str, Any]) -> str:
        attrs = _attrs(widget["attrs"])
        if template_name == TEXTAREA:
            value = e(widget["value"]) if widget["value"] else ""
            return f'<textarea name="{e(widget["name"])}"{attrs}>\n{value}</textarea>'
        value = "" if widget["value"] is None else f' value="{e(_s(widget["value"]))}"'
        return f'<input type="{e(widget["type"])}" name="{e(widget["name"])}"{value}{attrs}>'
