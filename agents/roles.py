"""The two roles, as Django groups. The data migration installs them; tests reuse the same list."""

from __future__ import annotations

from typing import Any

VIEWER = [
    ("agents", "view_agent"),
    ("memories", "view_enduser"),
    ("memories", "view_auditevent"),
]
EDITOR = [
    *VIEWER,
    ("agents", "operate_agent"),
    ("memories", "add_enduser"),
    ("memories", "change_enduser"),
]
ROLES = {"Viewer": VIEWER, "Editor": EDITOR}


def install_roles(group_model: Any, permission_model: Any) -> None:
    """Create or complete both groups; works with real or historical (migration) models."""
    for name, codes in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        for app_label, codename in codes:
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
