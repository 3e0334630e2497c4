"""A previewed prune, deleted batch by batch: stage a batch (its trash copies), settle it
(the runtime delete and the studio's records), and stop it when it is cancelled. The
workers (memories.job_batches), the prune page's batch by hand and `manage.py
prune_memories` call these; memories.pruning makes the preview they delete."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from memories import audit, flags, tokens, trash
from memories.actions.actor import Actor
from memories.models import AuditEvent, PruneCandidate, PruneJob, TrashedMemory
from memories.pruning import PRUNE_BATCH, PruneCriteria
from memories.runtime import prune as runtime_prune


def run_prune_batch(*, actor: Actor, job: PruneJob, batch: int = PRUNE_BATCH) -> PruneJob:
    """Delete the next batch of a previewed prune; memories changed since the preview are
    kept. The trash copies commit before the runtime delete (stage, then settle), so a
    process killed between the runtime's commit and the studio's loses no undo: the next
    call settles the staged batch first. The last batch records the audit event."""
    job.refresh_from_db()
    run = job.worker_job()
    if run is not None and run.cancel_requested:  # by hand after a Cancel not yet taken
        return stop_prune(actor=actor, job=job)
    if not job.staged:
        job = stage_prune_batch(actor=actor, job=job, batch=batch)
    return settle_prune_batch(actor=actor, job=job)


def stage_prune_batch(*, actor: Actor, job: PruneJob, batch: int = PRUNE_BATCH) -> PruneJob:
    """Choose the next batch and put copies of its unchanged memories in the trash, on the
    studio's database, before anything is deleted from the runtime (which may be another
    database, committing on its own). A job with no candidate left finishes here."""
    with transaction.atomic():
        job = PruneJob.objects.select_for_update().select_related("agent").get(pk=job.pk)
        if job.finished_at or job.staged:
            return job
        if job.confirmed_at is None:
            job.confirmed_at = timezone.now()
        chosen = list(
            job.candidates.order_by("id").values_list(
                "id", "memory_id", "memory_changed_at", "user_id"
            )[:batch]
        )
        if not chosen:
            _finish_prune(actor, job)
            job.save()
            return job
        rows = runtime_prune.unchanged_rows(
            job.agent, [(memory_id, changed) for _, memory_id, changed, _ in chosen]
        )
        kept = trash.keep(
            job.agent,
            rows,
            reason=TrashedMemory.Reason.PRUNED,
            actor=job.actor or actor,
            prune_job=job,
        )
        trashed = {entry.memory_id: entry.pk for entry in kept}
        job.staged = [[*candidate, trashed.get(candidate[1])] for candidate in chosen]
        job.save()
    return job


def settle_prune_batch(*, actor: Actor, job: PruneJob, delete: bool = True) -> PruneJob:
    """Delete the staged batch from the runtime, then settle it on the studio's side. Run a
    second time (the first was killed after the runtime committed) it deletes nothing more
    and settles the same way: a staged memory the runtime no longer holds was deleted (its
    trash copy stays), one it still holds changed since the preview and is kept. Without
    `delete` (a cancel, stop_prune), nothing more is deleted: a memory still held was not
    changed but left, and stays a candidate."""
    with transaction.atomic():
        job = PruneJob.objects.select_for_update().select_related("agent").get(pk=job.pk)
        if job.finished_at or not job.staged:
            return job
        staged = job.staged
        if delete:
            runtime_prune.delete_unchanged(
                job.agent, [(m, changed) for _, m, changed, _, _ in staged]
            )
        left = runtime_prune.still_stored(job.agent, [m for _, m, _, _, _ in staged])
        deleted = [(m, owner) for _, m, _, owner, _ in staged if m not in left]
        TrashedMemory.objects.filter(
            pk__in=[pk for _, m, _, _, pk in staged if m in left and pk is not None]
        ).delete()
        gone = {memory_id for memory_id, _ in deleted}
        settled = [pk for pk, m, _, _, _ in staged if delete or m in gone]
        PruneCandidate.objects.filter(id__in=settled).delete()
        flags.drop_flags(job.agent, list(gone))
        job.deleted += len(deleted)
        if delete:
            job.skipped += len(staged) - len(deleted)
        job.staged = []
        if delete and not job.candidates.exists():
            _finish_prune(actor, job)
        job.save()
    # The empty user_id keeps a count like anyone; NULL has none (tokens._store_tokens).
    tokens.recount_users(job.agent, {owner for _, owner in deleted if owner is not None})
    return job


def stop_prune(*, actor: Actor, job: PruneJob) -> PruneJob:
    """A cancelled prune: its staged batch settles without deleting more, and the prune ends
    as it stands (its page stops, no batch runs again); the memories left stay stored."""
    job = settle_prune_batch(actor=actor, job=job, delete=False)
    with transaction.atomic():
        job = PruneJob.objects.select_for_update().select_related("agent").get(pk=job.pk)
        if job.finished_at is None:
            _finish_prune(actor, job, cancelled=True)
            job.save()
    return job


def _finish_prune(actor: Actor, job: PruneJob, *, cancelled: bool = False) -> None:
    job.finished_at = timezone.now()
    criteria = PruneCriteria(**job.criteria)
    details = {
        "planned": job.planned,
        "deleted": job.deleted,
        "kept_changed": job.skipped,
        "users": job.users,
        "criteria": criteria.describe(),
    }
    if cancelled:
        details |= {"cancelled": True, "left": job.remaining}
    audit.record(
        actor,
        job.agent,
        AuditEvent.Action.MEMORIES_PRUNED,
        # A prune of the NULL user_id's rows is recorded as such (audit.record's None).
        user_id=criteria.user_id if criteria.one_user else "",
        details=details,
    )
