"""The Jobs page: long work the workers do, per agent or for all, with progress, cancel, retry."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.access import VIEW_PERMISSION, agent_for_user, can_write, studio_agent_for_user
from memories import actions, job_batches, jobs
from memories.models import Job
from memories.runtime.access import InvalidCursor
from studio.feedback import flash, toast
from studio.responses import bad_request

JOBS_PAGE = "memories/jobs.html"


def _job_for_user(request: HttpRequest, job_id: int) -> tuple[Job, bool]:
    """The job and whether this person may act on it; 404 if unknown, 403 if not a viewer."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied("You need the Viewer or Editor role to see jobs.")
    job = get_object_or_404(Job.objects.select_related("agent"), pk=job_id)
    return job, can_write(request)


class JobFilter(forms.Form):
    kind = forms.ChoiceField(choices=[("", "Every kind"), *Job.Kind.choices], required=False)
    state = forms.ChoiceField(choices=[("", "Every state"), *Job.State.choices], required=False)
    idle = forms.BooleanField(required=False, label="Passes that did nothing")
    after = forms.CharField(required=False, max_length=200)


def _jobs_page(request: HttpRequest, agent: Any, writable: bool) -> HttpResponse:
    form = JobFilter(request.GET)
    if not form.is_valid():
        return bad_request(request, "Choose a kind and a state from the lists.")
    chosen = form.cleaned_data
    try:
        page = jobs.jobs_page(
            agent,
            kind=chosen["kind"],
            state=chosen["state"],
            idle=chosen["idle"],
            after=chosen["after"] or None,
        )
    except InvalidCursor as error:
        return bad_request(request, error.message)
    filters = {k: v for k, v in chosen.items() if v and k != "after"}
    context = {
        "agent": agent,
        "jobs": page.items,
        "form": form,
        "next_url": f"?{urlencode({**filters, 'after': page.next_cursor})}"
        if page.next_cursor
        else "",
        "can_write": writable,
        # Exports only read the runtime: an Editor may start one on a read-only connection.
        "can_export": can_write(request),
    }
    return render(request, JOBS_PAGE, context)


@require_GET
def all_jobs(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied("You need the Viewer or Editor role to see jobs.")
    return _jobs_page(request, None, can_write(request))


@require_GET
def agent_jobs(request: HttpRequest, slug: str) -> HttpResponse:
    agent, writable = agent_for_user(request, slug)
    return _jobs_page(request, agent, writable)


@require_GET
def job_row(request: HttpRequest, job_id: int) -> HttpResponse:
    """One job's row: what htmx polls every 2 s while the job runs (and stops after)."""
    job, writable = _job_for_user(request, job_id)
    context = {"job": job, "can_write": writable, "highlight": job.pk}
    if request.htmx:
        return render(request, f"{JOBS_PAGE}#job-row", context)
    return redirect(_jobs_url(job))


def _jobs_url(job: Job) -> str:
    from django.urls import reverse

    base = (
        reverse("memories:agent_jobs", args=[job.agent.slug])
        if job.agent
        else reverse("memories:jobs")
    )
    return f"{base}#job-{job.pk}"


def _after_change(request: HttpRequest, job: Job, message: str) -> HttpResponse:
    if request.htmx:
        context = {"job": job, "can_write": True, "highlight": job.pk}
        return toast(render(request, f"{JOBS_PAGE}#job-row", context), message)
    flash(request, message)
    return redirect(_jobs_url(job))


def _rw_job_for_user(request: HttpRequest, job_id: int) -> Job:
    job, writable = _job_for_user(request, job_id)
    if not writable:
        raise PermissionDenied("Your role can view jobs but not change them.")
    return job


@require_POST
def cancel_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _rw_job_for_user(request, job_id)
    try:
        job = actions.cancel_job(actor=request.user, job=job)
    except actions.JobFinished as error:
        return bad_request(request, error.message, status=409)
    message = "Cancelled." if job.is_finished else "Cancelling after the current batch."
    return _after_change(request, job, message)


@require_POST
def retry_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _rw_job_for_user(request, job_id)
    try:
        job = actions.retry_job(actor=request.user, job=job)
    except actions.JobNotFailed as error:
        return bad_request(request, error.message, status=409)
    return _after_change(request, job, "Retrying from the last finished batch.")


@require_POST
def start_export(request: HttpRequest, slug: str) -> HttpResponse:
    """Export the whole agent in the background; the Jobs page offers the file when done."""
    agent, _ = studio_agent_for_user(request, slug)  # an export only reads the runtime
    job = actions.start_export(actor=request.user, agent=agent)
    flash(request, "The export runs in the background; download it here when it is done.")
    return redirect(_jobs_url(job))


@require_GET
def download_export(request: HttpRequest, job_id: int) -> HttpResponse:
    job, _ = _job_for_user(request, job_id)
    if job.kind != Job.Kind.EXPORT or job.state != Job.State.DONE or job.agent is None:
        return bad_request(request, "This export is not finished, so there is no file yet.", 404)
    path = job_batches.export_path(job)
    if not path.exists():
        return bad_request(request, "This export's file is gone; start a new export.", 404)
    name = f"{job.agent.slug}-memories-{job.created_at:%Y%m%d-%H%M}.jsonl"
    return FileResponse(
        open(path, "rb"),  # noqa: SIM115 — FileResponse closes it
        as_attachment=True,
        filename=name,
        content_type="application/x-ndjson; charset=utf-8",
    )
