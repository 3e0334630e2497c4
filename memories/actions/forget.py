"""Forgetting a person: every memory, session and run under one user_id, each agent in its
own transaction, staged on the studio's database before the runtime erases (the runtime may
be another database), and the receipt that names the person only by a keyed hash."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import DatabaseError, transaction
from django.utils import timezone

from agents.models import Agent
from memories import audit, forgetting, jobs
from memories.actions.actor import Actor
from memories.models import AuditEvent, ForgetReceipt, ForgetReceiptLine, Job
from memories.runtime import users as runtime_users
from memories.runtime.location import location_of, read_only_agents, remember_privileges
from memories.runtime.users import UserFootprint


class ReadOnlyAgents(PermissionError):
    """A forget that would stop half-way: some of its agents' runtimes refuse the studio's
    writes. Raised before any agent is touched."""

    def __init__(self, blocked: list[tuple[Agent, str]]) -> None:
        self.agents = [agent for agent, _ in blocked]
        names = ", ".join(f"“{agent.name}”" for agent in self.agents)
        self.message = (
            f"Nothing was erased: Memory Studio may not change the runtime of {names} "
            "(read-only there). Forget the user in the other agents one at a time, and ask "
            "whoever runs that runtime's database to erase the user there."
        )
        super().__init__(self.message)


class PartialForget(PermissionError):
    """A runtime refused the studio half-way through a forget (its privileges were revoked
    after the up-front check): what was erased stays erased, and the receipt says so."""

    def __init__(self, receipt: ForgetReceipt, erased: list[Agent], refused: Agent) -> None:
        self.receipt = receipt
        done = ", ".join(f"“{agent.name}”" for agent in erased)
        self.message = (
            f"Forgot the user in {done} only: the runtime of “{refused.name}” refused the "
            "change (Memory Studio's role there is read-only now), so nothing was erased there "
            f"or in the agents after it. Receipt {receipt.pk} lists what was erased and stays "
            "unfinished; once the privileges are back, forget the user again."
        )
        super().__init__(self.message)


def _refused_by_runtime(error: DatabaseError) -> bool:
    return isinstance(
        error.__cause__,
        psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction,
    )


def _refuse_read_only(agents: Sequence[Agent]) -> None:
    blocked = read_only_agents(agents)
    if blocked:
        raise ReadOnlyAgents(blocked)


@dataclass
class Forgotten:
    """What forget_user did: (agent, footprint) per agent, and the receipt that says so."""

    receipt: ForgetReceipt
    erased: list[tuple[Agent, UserFootprint]]

    def __iter__(self) -> Any:
        return iter(self.erased)


def forget_user(
    *,
    actor: Actor,
    agents: Sequence[Agent],
    user_id: str | None,
    receipt: ForgetReceipt | None = None,
    remove_registration: bool = False,
    finish: bool = True,
) -> Forgotten:
    """Erase every memory, session and run of `user_id`, one transaction per agent, and every
    studio-side trace of them there (token counts, sensitive flags, prune candidates, trash,
    queued recounts); audit events keep a keyed hash of the user_id instead of it. The
    receipt (new unless a background job passes its own) records the counts per agent.
    An agent whose runtime is read-only stops it before any agent is touched (ReadOnlyAgents):
    the agents commit one by one, so a refusal half-way would leave a partial erase."""
    _refuse_read_only(agents)
    own_receipt = receipt is None
    if receipt is None:
        receipt = start_receipt(actor=actor, user_id=user_id)
    erased = []
    for agent in agents:
        try:
            line = stage_forget(receipt=receipt, agent=agent, user_id=user_id)
            footprint = settle_forget(actor=actor, line=line, user_id=user_id)
        except DatabaseError as error:
            if not _refused_by_runtime(error):
                raise
            # Privileges revoked since they were last seen: remember, so pages say so at once.
            remember_privileges(location_of(agent), False)
            # Nothing was erased there: its staged line must not claim otherwise.
            ForgetReceiptLine.objects.filter(receipt=receipt, agent=agent).delete()
            if erased:
                raise PartialForget(receipt, [a for a, _ in erased], agent) from error
            if own_receipt:
                receipt.delete()  # nothing erased: no receipt for it
            raise ReadOnlyAgents([(agent, "")]) from error
        erased.append((agent, footprint))
    if finish:  # a background forget finishes its receipt after its last agent
        finish_receipt(receipt=receipt, user_id=user_id, remove_registration=remove_registration)
    return Forgotten(receipt, erased)


def stage_forget(*, receipt: ForgetReceipt, agent: Agent, user_id: str | None) -> ForgetReceiptLine:
    """The receipt's line for one agent with what the runtime holds now, committed on the
    studio's database before the erase (the runtime may be another database): a process
    killed after the runtime committed the erase leaves the counts on the receipt."""
    with transaction.atomic():
        line = ForgetReceiptLine.objects.filter(receipt=receipt, agent=agent).first()
        if line is not None:
            return line  # staged by a run that did not finish: its counts stand
        footprint = runtime_users.user_footprint(agent, user_id)
        return ForgetReceiptLine.objects.create(
            receipt=receipt,
            agent=agent,
            agent_slug=agent.slug,
            memories=footprint.memories,
            sessions=footprint.sessions,
            runs=footprint.runs,
        )


def settle_forget(*, actor: Actor, line: ForgetReceiptLine, user_id: str | None) -> UserFootprint:
    """Erase the user in the line's agent (one runtime transaction), then their studio-side
    traces there. Run again after a kill, the erase finds nothing and the staged counts stay."""
    agent = line.agent
    digest = forgetting.user_hash(user_id)
    with transaction.atomic():
        # First, so no move or import naming the user can write their rows after the erase.
        held = forgetting.hold_jobs(agent, user_id)
        footprint = runtime_users.erase_user(agent, user_id)
        if footprint.total:  # what the erase found, agno's writes since the staging included
            line.memories, line.sessions, line.runs = (
                footprint.memories,
                footprint.sessions,
                footprint.runs,
            )
        line.trashed = forgetting.drop_agent_traces(agent, user_id, digest)
        line.jobs_stopped += held.stopped
        line.export_files += forgetting.clean_job_files(held, user_id)
        line.save(
            update_fields=[
                "memories",
                "sessions",
                "runs",
                "trashed",
                "jobs_stopped",
                "export_files",
            ]
        )
        audit.record(
            actor,
            agent,
            AuditEvent.Action.USER_FORGOTTEN,
            user_id=digest,
            details={"memories": line.memories, "sessions": line.sessions, "runs": line.runs},
        )
    return UserFootprint(line.memories, line.sessions, line.runs)


def start_receipt(*, actor: Actor, user_id: str | None) -> ForgetReceipt:
    person = actor if actor is not None and actor.is_authenticated else None
    return ForgetReceipt.objects.create(
        actor=person,
        actor_name=person.get_username() if person else "system",
        user_hash=forgetting.user_hash(user_id),
    )


def finish_receipt(
    *, receipt: ForgetReceipt, user_id: str | None, remove_registration: bool
) -> None:
    """The last step of a forget: the registry entry if asked, the user_id out of other
    registrations' aliases and the admin's history, and the receipt's end time."""
    with transaction.atomic():
        if remove_registration:
            receipt.registry_entry_removed = forgetting.remove_registration(user_id)
        receipt.aliases_removed = forgetting.remove_alias(user_id)
        forgetting.hide_in_admin_log(user_id, receipt.user_hash)
        receipt.finished_at = timezone.now()
        receipt.save(update_fields=["registry_entry_removed", "aliases_removed", "finished_at"])


def start_forget(
    *,
    actor: Actor,
    agents: Sequence[Agent],
    user_id: str | None,
    remove_registration: bool = False,
) -> Job:
    """Forget a user in each agent, one agent (one transaction) per batch. The job holds the
    user_id only until its last batch, which puts the hash in its place. A read-only agent
    among them refuses the whole job before it starts (ReadOnlyAgents)."""
    _refuse_read_only(agents)
    with transaction.atomic():
        receipt = start_receipt(actor=actor, user_id=user_id)
        return jobs.create_job(
            kind=Job.Kind.FORGET,
            agent=agents[0] if len(agents) == 1 else None,
            actor=actor,
            params={
                "user_id": user_id,
                "agent_ids": [agent.pk for agent in agents],
                "receipt": receipt.pk,
                "remove_registration": remove_registration,
            },
            total=len(agents),
        )
