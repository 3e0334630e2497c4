"""The task functions `manage.py db_worker` runs (Django's task API, django-tasks-db backend).

They stay thin: a job's batch is memories.jobs.run_step, a recount is memories.tokens.
"""

from __future__ import annotations

from django_tasks import TaskContext, task

from agents.models import Agent
from memories import jobs, tokens


@task(takes_context=True)
def run_job_step(context: TaskContext, job_id: int) -> str:
    """One batch of a job; the batch queues the next one before it commits."""
    return jobs.run_step(job_id, str(context.task_result.id))


@task()
def recount_user(agent_id: int, user_id: str) -> int:
    """A user's token count after the dashboard changed their memories (off the request)."""
    agent = Agent.objects.filter(pk=agent_id).first()
    return tokens.recount_user(agent, user_id) if agent is not None else 0
