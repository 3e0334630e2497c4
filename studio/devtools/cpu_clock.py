"""Where a load run's CPU went, read from Linux's /proc: the server, the load itself, the rest.

On one machine the clients, the server and Postgres share the cores, so a latency figure means
little without knowing who spent them."""

from __future__ import annotations

import os


def _stat(pid: int | str) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (state, ppid, …); [] once it is gone.
    The name is cut at the last ")", as it may hold spaces and parentheses itself."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _ticks(pid: int) -> int:
    """A process's CPU so far (user + system) in clock ticks; 0 once it is gone."""
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def _children(pid: int) -> list[int]:
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and (fields := _stat(entry)) and int(fields[1]) == pid
    ]


def _machine_ticks() -> int:
    """Busy CPU of the whole machine (every state but idle and iowait), in clock ticks."""
    with open("/proc/stat") as handle:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, handle.readline().split()[1:9]
        )
    return user + nice + system + irq + softirq + steal


def cpu_snapshot(server_pid: int) -> dict[str, int] | None:
    """Where the 2 cores went: gunicorn (master and workers), this process (the clients and
    agno's writer) and the whole machine, whose rest is mostly Postgres. Linux's /proc only."""
    if not os.path.exists("/proc/stat"):
        return None
    workers = [server_pid, *_children(server_pid)]
    return {
        "gunicorn": sum(_ticks(pid) for pid in workers),
        "clients_and_agno_writer": _ticks(os.getpid()),
        "machine": _machine_ticks(),
    }


def cpu_per_request(
    before: dict[str, int] | None, after: dict[str, int] | None, requests: int
) -> dict[str, float] | None:
    if not before or not after or not requests:
        return None
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    spent = {name: (after[name] - before[name]) * tick_ms / requests for name in after}
    rest = spent.pop("machine") - spent["gunicorn"] - spent["clients_and_agno_writer"]
    return {**{k: round(v, 1) for k, v in spent.items()}, "postgres_and_the_rest": round(rest, 1)}
