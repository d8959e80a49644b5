"""Handing a job's next step to the workers, after the transaction that made it due commits.

The job's row is the outbox: its state and due time (Job.next_poll_at) say what must
happen next, and the sweep (beat) enqueues whatever is due. So a message that cannot be
sent, because Redis is down or restarting, loses nothing: the step is marked due and
goes once the broker is back. Sending is only the fast path, and its failure is never
an error for the person who asked for the work (a generate that answered 500 while
its take was already made and would later be paid for led to retries that paid twice).

This is the engine's scheduling port: the pipeline, the sweep and the services name the
next step (Step), and never import the Celery tasks that run it (jobs.tasks imports the
pipeline, not the other way). Steps are sent by task name; CELERY_TASK_ROUTES puts the
download, the one long step, on its own queue, so a send, a poll or a reconciliation never
waits behind a download for a worker process.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from jobs.models import Job, JobState

log = logging.getLogger(__name__)

# What publishing raises when the broker cannot be reached (kombu wraps most of them).
BROKER_ERRORS = (KombuError, RedisError, OSError)


class Step(StrEnum):
    """A pipeline step, by the name of the Celery task that runs it (jobs.tasks)."""

    SUBMIT = "jobs.tasks.submit_job"
    POLL = "jobs.tasks.poll_job"
    DOWNLOAD = "jobs.tasks.download_job"
    RECONCILE = "jobs.tasks.reconcile_job"


def send_named(name: str, args: tuple, kwargs: dict | None = None, **options: Any) -> None:
    """Put a task on the broker by its name, now (raising BROKER_ERRORS when it cannot).

    No task's result is kept (CELERY_TASK_IGNORE_RESULT), and Celery's send_task, which does
    not read that setting, is told so: else every send set up the result backend's state for
    a result nobody reads (about 2% of the web server's time under benchmarks/load.py)."""
    current_app.send_task(name, args, kwargs, ignore_result=True, **options)


def send(
    step: Step, job: Job | int, *args: Any, countdown: float | None = None, **kwargs: Any
) -> None:
    """Enqueue `step(job_id, *args)` when the current transaction commits (at once outside one).

    If the broker cannot take it, the job is marked due and, when `job` is a Job,
    `job.dispatch_deferred` is set, so a caller can say the work is queued, not under way.
    """
    job_id = job if isinstance(job, int) else job.pk

    def publish() -> None:
        options = {"countdown": countdown} if countdown else {}
        try:
            send_named(str(step), (job_id, *args), kwargs or None, **options)
        except BROKER_ERRORS as error:
            if not isinstance(job, int):
                job.dispatch_deferred = True
            log.warning(
                "Job %s: could not enqueue %s (%s); the sweep sends it once the broker is back.",
                job_id,
                step.name.lower(),
                error,
            )
            _due_now(job_id, countdown)

    transaction.on_commit(publish)


def announce_succeeded(job: Job) -> None:
    """Tell the domain a job's video is stored: each task named in
    settings.JOBS_SUCCEEDED_TASKS gets the job's id when the transaction commits.

    Named, not imported, like the steps: the engine never imports who listens (the studio
    scores a take's consistency this way). A message lost here is found again by the
    listener's own sweep, so a broker error is only logged.
    """

    def publish() -> None:
        for name in settings.JOBS_SUCCEEDED_TASKS:
            try:
                send_named(name, (job.pk,))
            except BROKER_ERRORS as error:
                log.warning("Job %s: could not tell %s it succeeded (%s).", job.pk, name, error)

    transaction.on_commit(publish)


def announce_ended(job: Job) -> None:
    """Tell the domain a job reached its end (succeeded, failed or cancelled): each task
    named in settings.JOBS_ENDED_TASKS gets the job's id and state on commit. The studio
    turns this into its take events (outgoing webhooks)."""
    state = job.state

    def publish() -> None:
        for name in settings.JOBS_ENDED_TASKS:
            try:
                send_named(name, (job.pk, state))
            except BROKER_ERRORS as error:
                log.warning("Job %s: could not tell %s it ended (%s).", job.pk, name, error)

    transaction.on_commit(publish)


def _due_now(job_id: int, countdown: float | None) -> None:
    due = timezone.now() + timedelta(seconds=countdown or 0)
    # Only rows that would otherwise wait: a PENDING job never enqueued has no due time,
    # and the sweep would first wait out its grace period.
    Job.objects.filter(pk=job_id, state=JobState.PENDING, next_poll_at__isnull=True).update(
        next_poll_at=due
    )
