"""Small builders for tests: people with roles, agents on throwaway schemas, agno handles."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.db import connection

from agents.memory_settings import MemorySettings
from agents.models import Agent
from agents.roles import install_roles
from memories.models import EndUser
from studio import database_urls

PASSWORD = "correct-horse-battery-staple"


def make_staff(username: str, role: str) -> User:
    install_roles(Group, Permission)  # transactional tests flush the migration's groups
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def unique_schema(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def make_agent(**fields: Any) -> Agent:
    slug = fields.pop("slug", None) or f"agent-{uuid.uuid4().hex[:8]}"
    settings = fields.pop("settings", MemorySettings(session_storage=True, user_memories=True))
    return Agent.objects.create(
        name=fields.pop("name", slug.replace("-", " ").title()),
        slug=slug,
        db_schema=fields.pop("db_schema", None) or unique_schema(),
        agno_settings=settings.to_json(),
        **fields,
    )


def make_person(email: str, **fields: Any) -> EndUser:
    return EndUser.objects.create(email=email, **fields)


def sqlalchemy_url() -> str:
    """The test database as agno's PostgresDb reaches it (same server, same database)."""
    return database_urls.sqlalchemy_url(connection.settings_dict)
