"""Django's form renderer, with its simplest widget templates built in Python.

Every page with a form renders a textarea or hidden inputs through Django's widget templates:
about 0.3 ms of CPU for one textarea here (the template engine walks `attrs.html`'s loop and
its `if`s for each attribute), more than the whole memory row beside it. `FORM_RENDERER`
points here. For `input.html` (and the widgets that only include it: text, hidden, number…)
and `textarea.html`, `render` builds the markup those templates build, character for
character (tests/test_form_renderer.py compares the two on generated attributes and values);
every other template goes through Django's renderer as before. (This renderer finds Django's
own widget templates before any app's, so no app can override these two; a project that
wants its own sets FORM_RENDERER to TemplatesSetting instead of this.)
"""

from __future__ import annotations

from typing import Any

from django.forms.renderers import DjangoTemplates
from django.template.defaultfilters import stringformat

from studio.html import escaped

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


def _attrs(attrs: dict[str, Any]) -> str:
    """attrs.html: ` name="value"` each, a bare ` name` for True, nothing for False."""
    return "".join(
        f" {escaped(name)}"
        if value is True
        else f' {escaped(name)}="{escaped(stringformat(value, "s"))}"'
        for name, value in attrs.items()
        if value is not False
    )


BUILT_IN = INPUT_ONLY | {TEXTAREA}


def _plain(value: Any) -> bool:
    return value is None or type(value) is str  # other values may be localized


def _resolved(attr: tuple[str, Any]) -> bool:
    """Whether the template engine would do more with this attribute than print it: call a
    callable, or read an attribute named "items" in place of the dict's items()."""
    name, value = attr
    return name == "items" or (callable(value) and not hasattr(value, "__html__"))


class FormRenderer(DjangoTemplates):
    def render(self, template_name: str, context: dict[str, Any], request: Any = None) -> str:
        if template_name in BUILT_IN and set(context) == {"widget"}:
            widget = context["widget"]
            if _plain(widget["value"]) and not any(map(_resolved, widget["attrs"].items())):
                return self._widget(template_name, widget)
        return super().render(template_name, context, request)

    @staticmethod
    def _widget(template_name: str, widget: dict[str, Any]) -> str:
        attrs = _attrs(widget["attrs"])
        if template_name == TEXTAREA:
            value = escaped(widget["value"]) if widget["value"] else ""
            return f'<textarea name="{escaped(widget["name"])}"{attrs}>\n{value}</textarea>'
        value = (
            ""
            if widget["value"] is None
            else f' value="{escaped(stringformat(widget["value"], "s"))}"'
        )
        kind = escaped(widget.get("type", ""))  # a widget that is no Input may use input.html
        return f'<input type="{kind}" name="{escaped(widget["name"])}"{value}{attrs}>'
