"""What memories cost: one user's exact context block, and the agent's cost panel."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.access import agent_for_user, can_write, studio_agent_for_user
from agents.models import Agent
from memories import actions, charts, cost, tokens
from memories.context_cost import ENCODING_NAME
from memories.forms import CostForm
from memories.views import NO_USER, user_id_in
from studio.feedback import flash, toast
from studio.responses import bad_request

COST_PAGE = "memories/cost.html"


@require_GET
def context_cost(request: HttpRequest, slug: str) -> HttpResponse:
    """The exact memory block of one user and its tokens (loaded when the panel opens)."""
    agent, _ = agent_for_user(request, slug)
    key = user_id_in(request.GET)
    if key is None:
        return bad_request(request, NO_USER)
    user_id = key.user_id
    block, counted = tokens.context_block(agent, user_id)
    context = {
        "agent": agent,
        "block": block,
        "tokens": counted,
        "encoding": ENCODING_NAME,
        "budget": agent.token_budget,
        "over_budget": agent.is_over_budget(counted),
    }
    return render(request, f"{COST_PAGE}#context-panel", context)


def _panel_context(agent: Agent, can_write: bool, form: CostForm | None = None) -> dict:
    inputs = cost.CostInputs.for_agent(agent)
    overview = cost.cost_overview(agent)
    return {
        "agent": agent,
        "can_write": can_write,
        "form": form or CostForm(initial={**inputs.as_dict(), "token_budget": agent.token_budget}),
        "overview": overview,
        "cost": cost.monthly_cost(
            inputs, overview.average_tokens, agent.memory_settings.agentic_memory
        ),
        "inputs": inputs,
        "encoding": ENCODING_NAME,
        "histogram_chart": charts.histogram_chart(overview.histogram, cost.HISTOGRAM_BUCKETS),
        "per_day_chart": charts.per_day_chart(overview.per_day, span=overview.per_day_days),
    }


@require_GET
def cost_panel(request: HttpRequest, slug: str) -> HttpResponse:
    agent, _ = agent_for_user(request, slug)
    # The cost inputs are the studio's own: a read-only runtime does not lock them.
    return render(request, COST_PAGE, _panel_context(agent, can_write(request)))


@require_POST
def save_cost_inputs(request: HttpRequest, slug: str) -> HttpResponse:
    agent, _ = studio_agent_for_user(request, slug)
    form = CostForm(request.POST)
    if not form.is_valid():
        context = _panel_context(agent, True, form)
        if request.htmx:
            response = render(request, f"{COST_PAGE}#calculator", context, status=422)
            return toast(response, "Nothing was saved: check the figures.", "error")
        return render(request, COST_PAGE, context, status=422)
    data = form.cleaned_data
    inputs = cost.CostInputs(
        conversations_per_month=data["conversations_per_month"],
        turns_per_conversation=data["turns_per_conversation"],
        price_per_million=float(data["price_per_million"]),
        extraction_tokens_per_call=data["extraction_tokens_per_call"],
    )
    actions.change_cost_inputs(
        actor=request.user, agent=agent, inputs=inputs, token_budget=data["token_budget"]
    )
    if not request.htmx:
        flash(request, "Saved.")
        return redirect("memories:cost", slug=agent.slug)
    response = render(request, f"{COST_PAGE}#calculator", _panel_context(agent, True))
    return toast(response, "Saved.")
