"""Django's ModelBackend, loading the logged-in person and their permissions in one query
(Django asks twice: the user, then user and group permissions); and the client address login
throttling counts by."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.http import HttpRequest

from studio.sql_rows import fetch_one, select_list

# Others hold their own and their groups' permissions (ModelBackend's rules). A superuser's
# are not listed: has_perm() answers True for them before asking any backend, and listing
# every permission there is made them the slowest query of each of their requests.
_USER_WITH_PERMISSIONS = """
SELECT {columns}, CASE WHEN u.is_superuser THEN NULL ELSE ARRAY(
    SELECT DISTINCT ct.app_label || '.' || p.codename
    FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
    WHERE p.id IN (SELECT permission_id FROM auth_user_user_permissions WHERE user_id = u.id)
       OR p.id IN (SELECT gp.permission_id FROM auth_group_permissions gp
                   JOIN auth_user_groups ug ON ug.group_id = gp.group_id WHERE ug.user_id = u.id)
) END AS permission_names
FROM auth_user u WHERE u.id = %s
"""


class OneQueryPermissionsBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        """The session's user with their permission names riding on the same query: every
        page checks one, and the staff gate needs the user anyway. Raw SQL, because the ORM
        spends longer compiling this query than Postgres spends running two."""
        user_model = get_user_model()
        sql = _USER_WITH_PERMISSIONS.format(columns=select_list(user_model, "u"))
        user = fetch_one(user_model, sql, [user_id], extras=["permission_names"])
        if user is None or not self.user_can_authenticate(user):
            return None
        if user.permission_names is not None:  # a superuser's load on demand, if ever asked
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
