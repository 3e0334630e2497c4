"""RUNTIME_DATABASES, RUNTIME_REPLICAS and RUNTIME_READ_ONLY as settings read them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from studio.runtime_databases import RuntimeConnection, runtime_databases

STUDIO = {"CONN_MAX_AGE": 60}


def read(databases: str = "", replicas: str = "", read_only: str = ""):
    return runtime_databases(STUDIO, databases=databases, replicas=replicas, read_only=read_only)


def test_without_any_the_runtime_is_the_studios_own_database():
    entries, connections = read()
    assert entries == {}
    assert connections == {"default": RuntimeConnection("default", "default")}


def test_each_pair_becomes_a_connection_with_its_replica_and_read_only_flag():
    entries, connections = read(
        "support=postgres://studio:pw@db:5432/agno sales=postgres://studio@/agno?host=/run/pg",
        replicas="support=postgres://ro@replica:5432/agno",
        read_only="sales",
    )
    assert entries["support"]["HOST"] == "db" and entries["support"]["NAME"] == "agno"
    assert entries["sales"]["HOST"] == "/run/pg"  # a Unix socket directory
    assert "default_transaction_read_only=on" in entries["sales"]["OPTIONS"]["options"]
    assert entries["support_replica"]["HOST"] == "replica"
    assert entries["support_replica"]["TEST"] == {"MIRROR": "support"}
    assert connections["support"] == RuntimeConnection("support", "support", "support_replica")
    assert connections["sales"].read_only is True


@pytest.mark.parametrize(
    ("databases", "replicas", "read_only", "message"),
    [
        ("support", "", "", "each entry is name=postgres://"),
        ("Support=postgres://h/d", "", "", "lowercase letters"),
        ("default=postgres://h/d", "", "", "studio's own database"),
        ("a=postgres://h/d a=postgres://h/e", "", "", "named twice"),
        ("a=postgres://h/d", "b=postgres://h/e", "", "unknown connections: b"),
        ("a=postgres://h/d", "", "c", "unknown connections: c"),
    ],
)
def test_a_mistake_in_the_environment_is_named(databases, replicas, read_only, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        read(databases, replicas, read_only)
