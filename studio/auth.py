"""Django's ModelBackend, loading the logged-in person and their permissions in one query
(Django asks twice: the user, then user and group permissions); and the client address login
throttling counts by."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Case, OuterRef, Q, Value, When
from django.db.models.functions import Concat
from django.http import HttpRequest


def _permission_names(permissions: Any) -> ArraySubquery:
    return ArraySubquery(
        permissions.order_by()
        .annotate(full_name=Concat("content_type__app_label", Value("."), "codename"))
        .values("full_name")
        .distinct()
    )


class OneQueryPermissionsBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        """The session's user with their permissions riding on the same query: every page
        checks one, and the staff gate needs the user anyway."""
        own = Permission.objects.filter(
            Q(user=OuterRef(OuterRef("pk"))) | Q(group__user=OuterRef(OuterRef("pk")))
        )
        names = Case(
            When(is_superuser=True, then=_permission_names(Permission.objects.all())),
            default=_permission_names(Permission.objects.filter(pk__in=own.values("pk"))),
        )
        user = get_user_model()._default_manager.annotate(permission_names=names)
        user = user.filter(pk=user_id).first()
        if user is None or not self.user_can_authenticate(user):
            return None
        user._perm_cache = set(user.permission_names) if user.is_active else set()
        return user

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
