"""The periodic sweep: the database, not the broker, remembers what is due.

If Redis loses its queue (a restart, a worker killed mid-task), every job still
has a state and a due time, and the sweep enqueues the next step again. Each
enqueue pushes the job's due time forward by a lease, so a slow worker is not
flooded with duplicates (which would be harmless anyway: every step claims).

A sweep that sent or settled something says so at INFO; one that found nothing, and
Celery's own lines about running a routine beat task ("Sending due task", "received",
"succeeded"), are DEBUG: every 2 s, they would scroll everything else (`make run`'s
banner first) out of sight.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs import dispatch, ledger
from jobs.dispatch import Step
from jobs.models import Job, JobState

logger = logging.getLogger(__name__)

# Celery's loggers that write a line for every run of every task.
CELERY_TASK_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")


class RoutineTaskLines(logging.Filter):
    """Celery's per-run INFO lines about the beat schedule's tasks, demoted to DEBUG.

    A logger's level is checked before its filters run, so a line is dropped here unless
    the logger would show DEBUG (`--loglevel DEBUG` shows them, marked DEBUG). Failures and
    retries are WARNING or worse and always pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or _task_of(record) not in _routine_tasks():
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


def _task_of(record: logging.LogRecord) -> str | None:
    """The task a Celery line is about: the worker's carry it in `data`, beat's in its args."""
    data = getattr(record, "data", None)
    if isinstance(data, dict):
        return data.get("name")
    if record.name == "celery.beat" and isinstance(record.args, tuple) and len(record.args) == 2:
        return str(record.args[1])
    return None


def _routine_tasks() -> set[str]:
    return {entry["task"] for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values()}


def quiet_routine_task_lines() -> None:
    """Put the filter on Celery's per-task loggers, once (studio.project.celery does, as a
    worker or beat starts)."""
    for name in CELERY_TASK_LOGGERS:
        celery_logger = logging.getLogger(name)
        if not any(isinstance(f, RoutineTaskLines) for f in celery_logger.filters):
            celery_logger.addFilter(RoutineTaskLines())


def _due_ids(queryset, limit: int = 500) -> list[int]:
    return list(queryset.order_by("next_poll_at", "pk").values_list("pk", flat=True)[:limit])


def run() -> dict[str, int]:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    counts = {}

    # Waiting jobs whose time has come, or whose enqueue was lost (created a while ago).
    lost = now - timedelta(seconds=settings.JOBS_SWEEP_GRACE_SECONDS)
    pending = (
        Job.objects.filter(state=JobState.PENDING)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True, created_at__lt=lost))
    )
    ids = _due_ids(pending)
    Job.objects.filter(pk__in=ids, state=JobState.PENDING).update(next_poll_at=lease)
    for job_id in ids:
        dispatch.send(Step.SUBMIT, job_id)
    counts["submit"] = len(ids)

    # A poll or a download is sent by the step before it (with its countdown) at its due
    # time; the sweep sends it again only once it is overdue by the grace period, so it
    # rescues lost messages without doubling every one of them.
    for states, step, name in (
        ((JobState.QUEUED, JobState.RUNNING), Step.POLL, "poll"),
        ((JobState.DOWNLOADING,), Step.DOWNLOAD, "download"),
    ):
        ids = _due_ids(Job.objects.filter(state__in=states, next_poll_at__lte=lost))
        for job_id in ids:
            dispatch.send(step, job_id)
        counts[name] = len(ids)

    # Sends whose lease ran out (their worker died: the call's timeout has long passed),
    # and jobs waiting to be looked up at the provider.
    ids = _due_ids(
        Job.objects.filter(
            Q(state=JobState.UNKNOWN, next_poll_at__lte=now)
            | Q(state=JobState.SUBMITTING, next_poll_at__lte=now)
        )
    )
    for job_id in ids:
        dispatch.send(Step.RECONCILE, job_id)
    counts["reconcile"] = len(ids)

    # Money of jobs that ended without being settled (a crash between the two steps).
    unsettled = ledger.unsettled_jobs()
    for job in Job.objects.filter(pk__in=unsettled):
        ledger.settle(job)
    counts["settle"] = len(unsettled)
    done = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    if done:
        logger.info("Sweep sent what was due: %s.", done)
    else:
        logger.debug("Sweep: nothing due.")
    return counts
