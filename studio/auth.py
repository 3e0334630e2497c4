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
    """The address login throttling counts failures for: behind a proxy, the header it sets."""
    header = settings.CLIENT_IP_HEADER
    if header and request.META.get(header):
        # X-Forwarded-For lists the client first, then each proxy it passed.
        return request.META[header].split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")
