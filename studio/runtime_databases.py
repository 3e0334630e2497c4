"""Where agents' runtime tables live: named Postgres connections beside the studio's own.

`RUNTIME_DATABASES` holds space-separated `name=postgres://…` pairs; each becomes a Django
database alias of that name. `RUNTIME_REPLICAS` names a read replica per connection
(`name=postgres://…`, alias `<name>_replica`) for list and search pages, and
`RUNTIME_READ_ONLY` lists the connections the studio must never write to. With none set,
the one runtime connection is the studio's own database, "default".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from studio.database_urls import database_settings

CONNECTION_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")
STUDIO_ALIAS = "default"


@dataclass(frozen=True)
class RuntimeConnection:
    name: str
    alias: str  # the Django database alias of the primary
    replica_alias: str | None = None
    read_only: bool = False


def _pairs(value: str, setting: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in value.split():
        name, sep, url = item.partition("=")
        if not sep or not url or not CONNECTION_NAME.fullmatch(name):
            raise ImproperlyConfigured(
                f"{setting}: each entry is name=postgres://…, the name in lowercase letters, "
                f"digits, '-' and '_' (got {item.split('=')[0]!r})."
            )
        if name in pairs:
            raise ImproperlyConfigured(f"{setting}: the connection {name!r} is named twice.")
        pairs[name] = url
    return pairs


def runtime_databases(
    studio: dict[str, Any], *, databases: str, replicas: str, read_only: str
) -> tuple[dict[str, dict[str, Any]], dict[str, RuntimeConnection]]:
    """Django DATABASES entries for the runtime connections, and what each connection is."""
    primaries = _pairs(databases, "RUNTIME_DATABASES")
    replica_urls = _pairs(replicas, "RUNTIME_REPLICAS")
    read_only_names = set(read_only.split())
    if STUDIO_ALIAS in primaries:
        raise ImproperlyConfigured(
            "RUNTIME_DATABASES: “default” is the studio's own database; name the runtime "
            "connection something else."
        )
    for setting, names in (
        ("RUNTIME_REPLICAS", replica_urls),
        ("RUNTIME_READ_ONLY", read_only_names),
    ):
        unknown = sorted(set(names) - set(primaries) - {STUDIO_ALIAS})
        if unknown:
            raise ImproperlyConfigured(
                f"{setting} names unknown connections: {', '.join(unknown)}."
            )
    entries: dict[str, dict[str, Any]] = {}
    for name, url in primaries.items():
        entries[name] = _entry(url, studio)
        if name in read_only_names:
            # The server itself refuses a write that slips past the hidden controls; options
            # the URL carried (?options=-c statement_timeout=…) are kept beside it.
            options = entries[name]["OPTIONS"]
            options["options"] = " ".join(
                filter(None, [options.get("options", ""), "-c default_transaction_read_only=on"])
            )
    meta = {
        STUDIO_ALIAS: RuntimeConnection(
            STUDIO_ALIAS, STUDIO_ALIAS, read_only=STUDIO_ALIAS in read_only_names
        )
    }
    for name in primaries:
        meta[name] = RuntimeConnection(name, name, read_only=name in read_only_names)
    for name, url in replica_urls.items():
        alias = f"{name}_replica"
        if alias in primaries:
            raise ImproperlyConfigured(f"RUNTIME_DATABASES: {alias!r} is a replica's name.")
        entries[alias] = _entry(url, studio)
        # In tests a replica is the primary itself: no second copy to keep in step.
        entries[alias]["TEST"] = {"MIRROR": name}
        meta[name] = RuntimeConnection(name, name, alias, meta[name].read_only)
    return entries, meta


def _entry(url: str, studio: dict[str, Any]) -> dict[str, Any]:
    entry = database_settings(url)  # a Unix socket (?host=/dir) included
    entry.setdefault("CONN_MAX_AGE", studio.get("CONN_MAX_AGE", 60))
    entry["CONN_HEALTH_CHECKS"] = True
    entry.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    return entry
