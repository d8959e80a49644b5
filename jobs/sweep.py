"""The periodic sweep: the database, not the broker, remembers what is due.

If Redis loses its queue (a restart, a worker killed mid-task), every job still
has a state and a due time, and the sweep enqueues the next step again. Each
enqueue pushes the job's due time forward by a lease, so a slow worker is not
flooded with duplicates (which would be harmless anyway: every step claims).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs import dispatch, ledger
from jobs.dispatch import Step
from jobs.models import Job, JobState


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
    return counts
