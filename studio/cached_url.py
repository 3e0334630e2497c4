"""`{% url %}` with its answers remembered: a template builtin that replaces Django's tag.

reverse() gives the same path for the same URLconf, script prefix, view name and arguments,
yet costs about 60 µs a call, and a page carries twenty or more (navigation, the agent's
pages, every form's action). The tag's syntax, escaping, `as var` and NoReverseMatch are
Django's own; only the reverse() call is looked up first.
"""

from __future__ import annotations

import functools
from typing import Any

from django import template
from django.conf import settings
from django.template import defaulttags
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape

register = template.Library()


@functools.lru_cache(maxsize=8192)
def _reverse(
    urlconf: Any, prefix: str, view_name: str, args: tuple, kwargs: tuple, app: str | None
) -> str:
    return reverse(view_name, urlconf=urlconf, args=args, kwargs=dict(kwargs), current_app=app)


def cached_reverse(view_name: str, args: list, kwargs: dict, current_app: str | None) -> str:
    values = [*args, *kwargs.values()]
    if not all(type(value) in (str, int) for value in values):
        # A model instance (its str() may change under the same pk) or a list: no key.
        return reverse(view_name, args=args, kwargs=kwargs, current_app=current_app)
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    key = (urlconf, get_script_prefix(), view_name, tuple(args), tuple(sorted(kwargs.items())))
    return _reverse(*key, current_app)


class CachedURLNode(defaulttags.URLNode):
    def render(self, context: template.Context) -> str:
        args = [arg.resolve(context) for arg in self.args]
        kwargs = {k: v.resolve(context) for k, v in self.kwargs.items()}
        view_name = self.view_name.resolve(context)
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        url = ""
        try:
            url = cached_reverse(view_name, args, kwargs, current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser: template.base.Parser, token: template.base.Token) -> CachedURLNode:
    node = defaulttags.url(parser, token)
    return CachedURLNode(node.view_name, node.args, node.kwargs, node.asvar)
