"""Pruning: choose criteria, see exactly what would go, then delete it in batches."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, rw_agent_for_user
from memories import actions, pruning
from memories.forms import PruneForm
from memories.models import PruneJob
from studio.feedback import toast

PRUNE_PAGE = "memories/prune.html"


@require_GET
def prune(request: HttpRequest, slug: str) -> HttpResponse:
    """Choose what to prune; nothing is deleted here."""
    agent, can_write = agent_for_user(request, slug)
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
    agent, can_write = agent_for_user(request, slug)
    job = get_object_or_404(PruneJob, pk=job_id, agent=agent)
    context = {
        "agent": agent,
        "can_write": can_write,
        "job": job,
        "criteria": pruning.PruneCriteria(**job.criteria).describe(),
        "affected": pruning.prune_affected_users(job),
    }
    return render(request, PRUNE_PAGE, context)


@require_POST
def prune_batch(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """Delete one batch; htmx asks for the next until none is left (progress on the page)."""
    agent = rw_agent_for_user(request, slug)
    job = get_object_or_404(PruneJob, pk=job_id, agent=agent)
    job = actions.run_prune_batch(actor=request.user, job=job)
    if not request.htmx:
        return redirect("memories:prune_job", slug=agent.slug, job_id=job.pk)
    context = {
        "agent": agent,
        "job": job,
        "criteria": pruning.PruneCriteria(**job.criteria).describe(),
    }
    response = render(request, f"{PRUNE_PAGE}#progress", context)
    return toast(response, f"Pruned {job.deleted:,} memories.") if job.finished_at else response
