"""studio.form_renderer builds the textarea and input widgets' markup in Python: it must be
the markup Django's own widget templates render, for any attributes and values."""

from __future__ import annotations

from pathlib import Path

import django.forms
import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.forms import MemoryTabForm
from memories.forms import EditMemoryForm, MemoryFilterForm, MemoryForm
from studio.form_renderer import BUILT_IN, INPUT_ONLY, FormRenderer

DJANGO = DjangoTemplates()
OURS = FormRenderer()

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
html_text = st.one_of(
    text,
    st.sampled_from(['<b>"x"</b>', "a & b", "'q'", "é ✓", " pad ", mark_safe("<i>kept</i>")]),
)
attr_values = st.one_of(
    st.booleans(),
    st.none(),
    html_text,
    st.integers(),
    st.tuples(st.integers(), st.integers()),
    st.just(lambda: "called"),  # the template engine calls it
)
attrs = st.dictionaries(
    # "items" is left out: Django's attrs.html then loops over that value and fails.
    st.one_of(html_text, st.sampled_from(["rows", "required"])).filter(lambda k: k != "items"),
    attr_values,
)


def test_the_input_templates_built_in_python_only_include_input_html():
    folder = Path(django.forms.__file__).parent / "templates"
    for name in INPUT_ONLY - {"django/forms/widgets/input.html"}:
        text = (folder / name).read_text().strip()
        assert text == '{% include "django/forms/widgets/input.html" %}', name


@settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(sorted(BUILT_IN)),
    name=html_text,
    value=st.one_of(st.none(), html_text),
    input_type=html_text,
    attrs=attrs,
)
def test_the_markup_is_what_djangos_templates_render(template, name, value, input_type, attrs):
    context = {"widget": {"name": name, "value": value, "type": input_type, "attrs": attrs}}
    assert OURS.render(template, context) == DJANGO.render(template, context)


@pytest.mark.parametrize(
    "widget",
    [
        forms.Textarea(attrs={"rows": 3, "autofocus": True, "maxlength": 10}),
        forms.HiddenInput,
        forms.TextInput(attrs={"placeholder": 'Say "hi"', "disabled": False}),
        forms.NumberInput(attrs={"min": 0}),
        forms.CheckboxInput,
        forms.EmailInput(attrs={"required": True}),
    ],
)
@pytest.mark.parametrize("value", [None, "", 'x < y & "z"', "line\nbreak", 3, True, ["a"]])
def test_widgets_render_as_with_djangos_renderer(widget, value):
    field = forms.Field(widget=widget)
    ours = field.widget.render("field", value, {"id": "f"}, renderer=OURS)
    assert ours == field.widget.render("field", value, {"id": "f"}, renderer=DJANGO)


@pytest.mark.django_db
@pytest.mark.parametrize("form_class", [MemoryForm, EditMemoryForm, MemoryFilterForm])
def test_the_studios_forms_render_as_before(form_class):
    for data in (None, {"text": "<script>", "topics": ["a", "b"], "q": "x", "version": "v"}):
        ours, django = form_class(data, renderer=OURS), form_class(data, renderer=DJANGO)
        # The topics' widget has no template: the page lays its boxes out itself.
        shown = [n for n, f in ours.fields.items() if getattr(f.widget, "template_name", None)]
        assert shown
        for name in shown:
            assert str(ours[name]) == str(django[name])


def test_other_templates_still_go_through_djangos_renderer():
    form = MemoryTabForm(renderer=OURS)
    assert str(form) == str(MemoryTabForm(renderer=DJANGO))
    select = forms.Select(choices=[("a", "<A>")])
    assert select.render("s", "a", renderer=OURS) == select.render("s", "a", renderer=DJANGO)
