"""Pruning: choose criteria, see exactly what would go, then delete it in batches."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, rw_agent_for_user
from agents.models import Agent
from memories import actions, pruning, runtime
from memories.forms import PruneForm, UserForm
from memories.models import PruneJob, TrashedMemory
from studio.feedback import first_error, flash, toast
from studio.responses import bad_request

PRUNE_PAGE = "memories/prune.html"


@require_GET
def prune(request: HttpRequest, slug: str) -> HttpResponse:
    """Choose what to prune; nothing is deleted here. A link may name the user as every page
    does (`?user_id=…`, `?user_id=` for the empty one, `?no_user_id=1` for NULL)."""
    agent, can_write = agent_for_user(request, slug)
    if {"user_id", "no_user_id"} & request.GET.keys():
        named = UserForm(request.GET)
        if not named.is_valid():
            return bad_request(request, first_error(named))
    form = PruneForm(initial=request.GET.dict())
    return render(request, PRUNE_PAGE, {"agent": agent, "form": form, "can_write": can_write})


@require_POST
def preview_prune(request: HttpRequest, slug: str) -> HttpResponse:
    """Fix the exact memories the criteria match, and show them before anything goes."""
    agent = rw_agent_for_user(request, slug)
    form = PruneForm(request.POST)
    if not form.is_valid():
        context = {"agent": agent, "form": form, "can_write": True}
        return render(request, PRUNE_PAGE, context, status=422)
    criteria = form.criteria()
    job = pruning.preview_prune(agent, criteria, request.user)
    return redirect("memories:prune_job", slug=agent.slug, job_id=job.pk)


@require_GET
def prune_job(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """The preview, then the worker's progress (htmx polls the progress part while it runs)."""
    agent, can_write = agent_for_user(request, slug)
    job = get_object_or_404(PruneJob, pk=job_id, agent=agent)
    context = _progress_context(agent, job, can_write)
    if request.htmx:
        return render(request, f"{PRUNE_PAGE}#progress", context)
    context["affected"] = pruning.prune_affected_users(job)
    if not job.confirmed_at:
        context["chosen"] = chosen = pruning.PruneCriteria(**job.criteria)
        context["spacings"] = pruning.other_spacings(agent, chosen)
    return render(request, PRUNE_PAGE, context)


@require_POST
def confirm_prune(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """Hand the confirmed prune to the workers; the page shows their progress."""
    agent = rw_agent_for_user(request, slug)
    job = get_object_or_404(PruneJob, pk=job_id, agent=agent)
    if job.finished_at:
        return bad_request(request, "This prune has already finished.", status=409)
    run = actions.confirm_prune(actor=request.user, job=job)
    if not request.htmx:
        return redirect("memories:prune_job", slug=agent.slug, job_id=job.pk)
    job.refresh_from_db()
    context = {"agent": agent, "job": job, "run": run, "can_write": True}
    return toast(render(request, f"{PRUNE_PAGE}#progress", context), "The prune has started.")


@require_POST
def prune_batch(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """Delete one batch now, by hand (the workers do the same in the background; the job's
    lock keeps the two from taking the same batch)."""
    agent = rw_agent_for_user(request, slug)
    job = get_object_or_404(PruneJob, pk=job_id, agent=agent)
    job = actions.run_prune_batch(actor=request.user, job=job)
    if not request.htmx:
        return redirect("memories:prune_job", slug=agent.slug, job_id=job.pk)
    response = render(request, f"{PRUNE_PAGE}#progress", _progress_context(agent, job, True))
    return toast(response, f"Pruned {job.deleted:,} memories.") if job.finished_at else response


def _progress_context(agent: Agent, job: PruneJob, can_write: bool) -> dict[str, Any]:
    """What the prune page's progress part shows: the prune, its criteria, the worker job
    deleting it and what its Undo would put back."""
    return {
        "agent": agent,
        "can_write": can_write,
        "job": job,
        "criteria": pruning.PruneCriteria(**job.criteria).describe(),
        "run": job.worker_job(),
        "undoable": _undoable(job),
    }


def _undoable(job: PruneJob) -> int:
    """How many of the prune's memories are still in the trash (what its Undo puts back)."""
    if not job.finished_at:
        return 0
    return TrashedMemory.objects.filter(prune_job=job).count()


@require_POST
def undo_prune(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """Put back every memory the prune took (a plain form on its finished page), all or none."""
    agent = rw_agent_for_user(request, slug)
    job = get_object_or_404(PruneJob, pk=job_id, agent=agent, finished_at__isnull=False)
    try:
        count = actions.undo_prune(actor=request.user, job=job)
    except (actions.TrashGone, actions.RestoredTwice, runtime.MemoryExists) as error:
        return bad_request(request, error.message, status=409)
    flash(request, f"Undone: {count:,} pruned memor{'y' if count == 1 else 'ies'} restored.")
    return redirect("memories:prune_job", slug=agent.slug, job_id=job.pk)
