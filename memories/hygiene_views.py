"""Pages for memory hygiene: the cost panel, pruning with a preview, the sensitive finder."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.access import agent_for_user, rw_agent_for_user
from agents.models import Agent
from memories import audit, hygiene, runtime
from memories.context_cost import ENCODING_NAME
from memories.forms import BulkDeleteForm, CostForm, PruneForm, UserForm
from memories.models import AuditEvent, PruneJob, SensitiveFlag, SensitiveScan
from memories.sensitive import KINDS
from studio.feedback import first_error, flash, toast


@require_GET
def context_cost(request: HttpRequest, slug: str) -> HttpResponse:
    """The exact memory block of one user and its tokens (loaded when the panel opens)."""
    agent, _ = agent_for_user(request, slug)
    form = UserForm(request.GET)
    if not form.is_valid():
        return HttpResponse("Say which user.", status=400)
    block, tokens = hygiene.context_block(agent, form.cleaned_data["user_id"])
    context = {
        "agent": agent,
        "block": block,
        "tokens": tokens,
        "encoding": ENCODING_NAME,
        "budget": agent.token_budget,
    }
    return render(request, "memories/hygiene.html#context-panel", context)


@require_http_methods(["GET", "POST"])
def cost_panel(request: HttpRequest, slug: str) -> HttpResponse:
    agent, can_write = agent_for_user(request, slug)
    inputs = hygiene.CostInputs.for_agent(agent)
    form = CostForm(initial={**inputs.as_dict(), "token_budget": agent.token_budget})
    status = 200
    if request.method == "POST":
        agent = rw_agent_for_user(request, slug)
        form = CostForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            inputs = hygiene.CostInputs(
                conversations_per_month=data["conversations_per_month"],
                turns_per_conversation=data["turns_per_conversation"],
                price_per_million=float(data["price_per_million"]),
                extraction_tokens_per_call=data["extraction_tokens_per_call"],
            )
            with transaction.atomic():
                agent.cost_inputs = inputs.as_dict()
                agent.token_budget = data["token_budget"]
                agent.save(update_fields=["cost_inputs", "token_budget", "updated_at"])
                audit.record(
                    request.user,
                    agent,
                    AuditEvent.Action.BUDGET_CHANGED,
                    details={**inputs.as_dict(), "token_budget": agent.token_budget},
                )
            if not request.htmx:
                flash(request, "Saved.")
                return redirect("memories:cost", slug=agent.slug)
        else:
            status = 422
    overview = hygiene.cost_overview(agent)
    cost = hygiene.monthly_cost(
        inputs, overview.average_tokens, agent.memory_settings.agentic_memory
    )
    context = {
        "agent": agent,
        "can_write": can_write,
        "form": form,
        "overview": overview,
        "cost": cost,
        "inputs": inputs,
        "encoding": ENCODING_NAME,
        "histogram_chart": hygiene.bar_chart(overview.histogram),
        "per_day_chart": hygiene.bar_chart(
            [(str(day), n) for day, n in overview.per_day], height=140
        ),
    }
    if request.htmx and request.method == "POST":
        response = render(request, "memories/hygiene.html#calculator", context, status=status)
        return toast(
            response,
            "Saved." if status == 200 else "Nothing was saved: check the figures.",
            "success" if status == 200 else "error",
        )
    return render(request, "memories/hygiene.html", context, status=status)


@require_http_methods(["GET", "POST"])
def prune(request: HttpRequest, slug: str) -> HttpResponse:
    """Choose what to prune and see exactly what would go; nothing is deleted here."""
    agent, can_write = agent_for_user(request, slug)
    if request.method == "GET":
        form = PruneForm(initial=request.GET.dict())
        return render(
            request, "memories/prune.html", {"agent": agent, "form": form, "can_write": can_write}
        )
    agent = rw_agent_for_user(request, slug)
    form = PruneForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "memories/prune.html",
            {"agent": agent, "form": form, "can_write": True},
            status=422,
        )
    criteria = hygiene.PruneCriteria(
        **{k: v for k, v in form.cleaned_data.items() if v not in ("", None)}
    )
    job = hygiene.preview_prune(agent, criteria, request.user)
    return redirect("memories:prune_job", slug=agent.slug, job_id=job.pk)


def _job_for(request: HttpRequest, slug: str, job_id: int, *, write: bool) -> tuple:
    agent = rw_agent_for_user(request, slug) if write else agent_for_user(request, slug)[0]
    return agent, get_object_or_404(PruneJob, pk=job_id, agent=agent)


@require_GET
def prune_job(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    agent, job = _job_for(request, slug, job_id, write=False)
    context = {
        "agent": agent,
        "job": job,
        "criteria": hygiene.PruneCriteria(**job.criteria).describe(),
        "affected": hygiene.prune_affected_users(job),
    }
    return render(request, "memories/prune.html", context)


@require_POST
def prune_batch(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """Delete one batch; htmx asks for the next until none is left (progress on the page)."""
    agent, job = _job_for(request, slug, job_id, write=True)
    job = hygiene.run_prune_batch(job, request.user)
    context = {
        "agent": agent,
        "job": job,
        "criteria": hygiene.PruneCriteria(**job.criteria).describe(),
    }
    if request.htmx:
        response = render(request, "memories/prune.html#progress", context)
        if job.finished_at:
            toast(response, f"Pruned {job.deleted:,} memories.")
        return response
    return redirect("memories:prune_job", slug=agent.slug, job_id=job.pk)


def _flagged_context(agent: Agent, can_write: bool, after: str | None) -> dict:
    """The flagged list with the scan's progress and the counts per kind."""
    rows, next_cursor = hygiene.flagged_page(agent, after)
    return {
        "agent": agent,
        "can_write": can_write,
        "rows": rows,
        "next_cursor": next_cursor,
        "state": SensitiveScan.objects.filter(agent=agent).first(),
        "kinds": KINDS,
        "counts": hygiene.sensitive_counts(agent),
    }


@require_http_methods(["GET", "POST"])
def sensitive(request: HttpRequest, slug: str) -> HttpResponse:
    agent, can_write = agent_for_user(request, slug)
    if request.method == "POST":  # scan the next batch
        rw_agent_for_user(request, slug)
        hygiene.scan_next_batch(agent)
    try:
        context = _flagged_context(agent, can_write, request.GET.get("after") or None)
    except runtime.InvalidCursor as error:
        return HttpResponse(error.message, status=400)
    if request.htmx:
        return render(request, "memories/sensitive.html#flagged", context)
    return render(request, "memories/sensitive.html", context)


@require_POST
def delete_flagged(request: HttpRequest, slug: str) -> HttpResponse:
    """Delete flagged memories (one by click, or all selected); only flagged ones qualify."""
    agent = rw_agent_for_user(request, slug)
    data = request.POST.copy()
    data.setdefault("user_id", "-")
    form = BulkDeleteForm(data)
    if not form.is_valid():
        return HttpResponse(first_error(form), status=400)
    ids = form.cleaned_data["memory_ids"]
    flagged = set(
        SensitiveFlag.objects.filter(agent=agent, memory_id__in=ids).values_list(
            "memory_id", flat=True
        )
    )
    if flagged != set(ids):
        message = "Only flagged memories can be deleted here; nothing was deleted."
        return toast(HttpResponse(message, status=400), message, "error")
    with transaction.atomic():
        deleted = runtime.delete_memories_anywhere(agent, ids)
        SensitiveFlag.objects.filter(agent=agent, memory_id__in=ids).delete()
        audit.record(
            request.user,
            agent,
            AuditEvent.Action.SENSITIVE_DELETED,
            details={"count": len(deleted), "memory_ids": [m for m, _ in deleted]},
        )
    hygiene.forget_tokens(agent, {user_id for _, user_id in deleted if user_id})
    message = f"{len(deleted)} flagged memor{'y' if len(deleted) == 1 else 'ies'} deleted."
    if request.htmx:
        context = _flagged_context(agent, True, None)
        return toast(render(request, "memories/sensitive.html#flagged", context), message)
    flash(request, message)
    return redirect("memories:sensitive", slug=agent.slug)
