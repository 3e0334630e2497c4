"""studio/cached_url.py: `{% url %}` with remembered answers gives what Django's tag gives."""

from __future__ import annotations

import pytest
from django.template import Context, Template, engines
from django.urls import NoReverseMatch, clear_script_prefix, reverse, set_script_prefix


def render(source: str, **context: object) -> str:
    return engines["django"].from_string(source).render(context)


def test_it_answers_as_reverse_does_for_each_argument():
    for slug in ("one", "two", "one"):
        assert render("{% url 'memories:user' slug %}", slug=slug) == reverse(
            "memories:user", args=[slug]
        )
    assert render("{% url 'agents:list' as link %}[{{ link }}]") == f"[{reverse('agents:list')}]"


def test_it_follows_the_script_prefix():
    plain = render("{% url 'agents:list' %}")
    set_script_prefix("/studio/")
    try:
        assert render("{% url 'agents:list' %}") == "/studio" + plain
    finally:
        clear_script_prefix()
    assert render("{% url 'agents:list' %}") == plain


def test_it_follows_a_changed_urlconf(settings):
    settings.ROOT_URLCONF = "tests.test_cached_url"
    assert render("{% url 'only-here' %}") == "/only-here/"


def test_an_object_argument_is_reversed_every_time_not_remembered():
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def __str__(self) -> str:
            return self.name

        def __hash__(self) -> int:  # one "pk" for both, as two instances of a row would have
            return 1

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named)

    source = "{% url 'memories:user' thing %}"
    assert render(source, thing=Named("before")) == reverse("memories:user", args=["before"])
    assert render(source, thing=Named("after")) == reverse("memories:user", args=["after"])


def test_a_missing_url_still_raises_and_as_var_still_swallows_it():
    with pytest.raises(NoReverseMatch):
        render("{% url 'no-such-page' %}")
    assert render("{% url 'no-such-page' as link %}[{{ link }}]") == "[]"


def test_every_template_gets_it_in_place_of_djangos_tag():
    from studio.cached_url import CachedURLNode, _reverse

    template = Template("{% url 'agents:list' %}")
    assert isinstance(template.nodelist[0], CachedURLNode)
    before = _reverse.cache_info().hits
    template.render(Context())
    template.render(Context())
    assert _reverse.cache_info().hits > before


from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

urlpatterns = [path("only-here/", lambda request: HttpResponse(), name="only-here")]
