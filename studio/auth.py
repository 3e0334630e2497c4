"""Django's ModelBackend, loading a person's permissions in one query instead of two; and the
client address login throttling counts by."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.http import HttpRequest


class OneQueryPermissionsBackend(ModelBackend):
    # Every page checks a permission; user and group permissions come back together.
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            permissions = Permission.objects.all()
            if not user_obj.is_superuser:
                permissions = permissions.filter(Q(user=user_obj) | Q(group__user=user_obj))
            user_obj._perm_cache = {
                f"{app_label}.{codename}"
                for app_label, codename in permissions.values_list(
                    "content_type__app_label", "codename"
                ).distinct()
            }
        return user_obj._perm_cache


def client_ip_address(request: HttpRequest) -> str | None:
    """The address login throttling counts failures for: behind a proxy, the one the trusted
    proxy saw. Each proxy appends the address it was reached from to X-Forwarded-For, and a
    client may send any entries it likes before them: so the address is the TRUSTED_PROXY_COUNT-th
    from the right, never the first (a new made-up first entry per guess would dodge lockout)."""
    header = settings.CLIENT_IP_HEADER
    entries = [e.strip() for e in request.META.get(header, "").split(",")] if header else []
    entries = [e for e in entries if e]
    hops = max(settings.TRUSTED_PROXY_COUNT, 1)
    if len(entries) >= hops:
        return entries[-hops]
    # Fewer entries than trusted proxies: the request did not come through them all.
    return request.META.get("REMOTE_ADDR")
