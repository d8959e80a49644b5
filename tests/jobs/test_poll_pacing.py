"""How often the engine looks at a job under way: at the provider's pace while the job is
young, then less often as it ages (a tenth of its age), never less often than
JOBS_MAX_POLL_SECONDS unless the provider asks for that, never more often than
JOBS_MIN_POLL_SECONDS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import pipeline
from jobs.models import Job, JobState
from studio.generation import take_create
from tests.jobs.factories import studio_scene
from tests.support.emulators import emulator_control
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _running_take(studio, *, poll_after_ms: int) -> Job:
    """A take the emulator keeps rendering for ten minutes, once the provider has it."""
    emulator_control(
        studio["openai"], "config", {"latency_seconds": 600.0, "poll_after_ms": poll_after_ms}
    )
    take = take_create(scene=studio_scene(studio, "Gulls."), account=studio["accounts"]["openai"])
    wait_until(
        lambda: (
            Job.objects.filter(pk=take.job_id, state__in=(JobState.QUEUED, JobState.RUNNING))
            .exclude(provider_job_id="")
            .exists()
        ),
        timeout=30,
        message="the take was never sent",
    )
    return Job.objects.get(pk=take.job_id)


def _next_look_after(job: Job, *, age: float) -> float:
    """Seconds from now to the job's next look, once polled at `age` seconds old."""
    Job.objects.filter(pk=job.pk).update(submitted_at=timezone.now() - timedelta(seconds=age))
    pipeline.poll(job.pk, force=True)
    job.refresh_from_db()
    return (job.next_poll_at - timezone.now()).total_seconds()


def test_a_job_is_looked_at_less_often_as_it_ages(studio, settings):
    settings.JOBS_MIN_POLL_SECONDS = 1.0
    job = _running_take(studio, poll_after_ms=1000)

    assert 0.5 < _next_look_after(job, age=2) <= 1.0  # young: the provider's pace
    assert 3.5 < _next_look_after(job, age=40) <= 4.0  # a tenth of its age
    assert 4.5 < _next_look_after(job, age=600) <= 5.0  # at most JOBS_MAX_POLL_SECONDS
    settings.JOBS_MAX_POLL_SECONDS = 20.0
    assert 19.5 < _next_look_after(job, age=600) <= 20.0
    assert job.state in (JobState.QUEUED, JobState.RUNNING)


def test_a_provider_asking_for_a_slower_pace_gets_it(studio, settings):
    settings.JOBS_MIN_POLL_SECONDS = 1.0
    job = _running_take(studio, poll_after_ms=8000)

    assert 7.5 < _next_look_after(job, age=2) <= 8.0
    assert 7.5 < _next_look_after(job, age=600) <= 8.0  # above the cap: the provider's word
