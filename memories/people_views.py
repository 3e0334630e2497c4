"""People: registering the person behind a user_id, forgetting one everywhere, the audit log."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from agents.access import can_write, rw_agent_for_user
from agents.models import Agent
from memories import actions, receipts, runtime
from memories.audit_log import audit_page
from memories.forms import ForgetUserForm
from memories.models import ForgetReceipt
from memories.people_forms import EndUserForm
from memories.runtime.location import read_only_agents
from memories.views import user_id_in, user_url
from studio.feedback import flash
from studio.responses import bad_request, page_or_partial


@require_http_methods(["GET", "POST"])
def register_user(request: HttpRequest, slug: str) -> HttpResponse:
    """Register the person behind a user_id, so the dashboard (and the operator) know who it is."""
    agent = rw_agent_for_user(request, slug)
    if not request.user.has_perm("memories.add_enduser"):
        raise PermissionDenied("Your role cannot register users.")
    key = user_id_in(request.GET if request.method == "GET" else request.POST)
    user_id = (key.user_id if key else "") or ""
    if request.method == "GET":
        keyed_by_email = agent.user_id_kind == Agent.UserIdKind.EMAIL
        key_field = "email" if keyed_by_email else "external_id"
        form = EndUserForm(initial={key_field: user_id}, stored_user_id=user_id)
    else:
        form = EndUserForm(request.POST, stored_user_id=user_id)
        if form.is_valid():
            person = actions.register_user(
                actor=request.user, agent=agent, user_id=user_id, form=form
            )
            flash(request, f"{person.email} is registered.")
            return redirect(user_url(agent, user_id or person.email))
    context = {"agent": agent, "form": form, "user_id": user_id}
    return render(request, "memories/register.html", context, status=422 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def forget_user(request: HttpRequest) -> HttpResponse:
    """Erase one person from one agent or all: shows what goes, then wants the user_id typed."""
    if not can_write(request):
        raise PermissionDenied("Your role can view memories but not erase them.")
    posted = request.method == "POST"
    form = ForgetUserForm(request.POST if posted else request.GET, agents=Agent.objects.all())
    if not form.is_valid():
        context = {"form": form, "preview": []}
        return render(request, "memories/forget.html", context, status=422 if posted else 200)
    user_id, agents = form.cleaned_data["target"], form.cleaned_data["agents"]
    phrase = form.cleaned_data["phrase"]
    if not posted or not form.cleaned_data["confirmation_matches"]:
        if posted:
            what = "the user_id" if phrase == user_id else f"“{phrase}”"
            form.add_error("confirmation", f"Type {what} exactly as shown to confirm.")
        preview = [(agent, runtime.user_footprint(agent, user_id)) for agent in agents]
        context = {
            "form": form,
            "preview": preview,
            "phrase": phrase,
            "null_user": user_id is None,
            "read_only": read_only_agents(agents),
        }
        return render(request, "memories/forget.html", context, status=422 if posted else 200)
    remove_registration = form.cleaned_data["remove_registration"]
    try:
        return _forget(request, agents, user_id, remove_registration, form)
    except (actions.ReadOnlyAgents, actions.PartialForget) as error:
        return bad_request(request, error.message, status=403)


def _forget(
    request: HttpRequest,
    agents: list[Agent],
    user_id: str | None,
    remove_registration: bool,
    form: ForgetUserForm,
) -> HttpResponse:
    if form.cleaned_data["background"]:
        job = actions.start_forget(
            actor=request.user,
            agents=agents,
            user_id=user_id,
            remove_registration=remove_registration,
        )
        # The message names no user_id: messages are stored in the session until shown.
        flash(request, "Forgetting the user in the background, one agent at a time.")
        return redirect(f"{reverse('memories:jobs')}#job-{job.pk}")
    forgotten = actions.forget_user(
        actor=request.user,
        agents=agents,
        user_id=user_id,
        remove_registration=remove_registration,
    )
    erased = [f for _, f in forgotten]
    flash(
        request,
        f"Forgot the user: {sum(f.memories for f in erased)} memories, "
        f"{sum(f.sessions for f in erased)} sessions and {sum(f.runs for f in erased)} runs "
        f"erased in {len(erased)} agent{'s' if len(erased) != 1 else ''}. This receipt names "
        "them by a keyed hash only.",
    )
    return redirect("memories:receipt", receipt_id=forgotten.receipt.pk)


def _receipt_for(request: HttpRequest, receipt_id: int) -> ForgetReceipt:
    if not request.user.has_perm("memories.view_auditevent"):
        raise PermissionDenied("You need the Viewer or Editor role to read forget receipts.")
    return get_object_or_404(ForgetReceipt.objects.prefetch_related("lines"), pk=receipt_id)


@require_GET
def forget_receipt(request: HttpRequest, receipt_id: int) -> HttpResponse:
    receipt = _receipt_for(request, receipt_id)
    return render(request, "memories/receipt.html", {"receipt": receipt})


@require_GET
def forget_receipt_json(request: HttpRequest, receipt_id: int) -> HttpResponse:
    receipt = _receipt_for(request, receipt_id)
    response = JsonResponse(receipts.as_json(receipt), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="forget-receipt-{receipt.pk}.json"'
    return response


@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("memories.view_auditevent"):
        raise PermissionDenied("You need the Viewer or Editor role to read the audit log.")
    context = audit_page(request.GET)
    if context.get("error"):
        return bad_request(request, context["error"])
    return page_or_partial(request, "memories/audit.html", context, {"audit-list": "audit-list"})
