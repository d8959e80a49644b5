"""A freed lane slot goes straight to the next waiting job, and each slot to a different one.

What is observed is what the engine publishes for the workers (the send of each woken
job, by task name) when jobs leave a provider's lane.
"""

from __future__ import annotations

import pytest

from jobs import pipeline
from jobs.models import Job, JobState
from studio.project.celery import app as celery_app
from tests.jobs.factories import JobFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

SUBMIT = "jobs.tasks.submit_job"


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, tuple]]:
    published: list[tuple[str, tuple]] = []
    monkeypatch.setattr(
        celery_app,
        "send_task",
        lambda name, args, kwargs, **options: published.append((name, tuple(args))),
    )
    return published


def _lane(limit: int, *, running: int, waiting: int):
    account = ProviderAccountFactory(concurrency_limit=limit)
    in_flight = [
        JobFactory(provider_account=account, state=JobState.RUNNING, provider_job_id=f"v{n}")
        for n in range(running)
    ]
    queued = [JobFactory(provider_account=account, state=JobState.PENDING) for _ in range(waiting)]
    return account, in_flight, queued


def _finish(job: Job) -> None:
    """The provider is done with it: it leaves the lane for its download."""
    assert job.move(JobState.DOWNLOADING, only_from=(JobState.RUNNING,))
    pipeline._release_lane(job)


def test_jobs_finishing_together_each_wake_a_different_waiting_job(
    sent, django_capture_on_commit_callbacks
):
    _, in_flight, queued = _lane(3, running=3, waiting=4)

    with django_capture_on_commit_callbacks(execute=True):
        for job in in_flight[:2]:
            _finish(job)

    woken = [args[0] for name, args in sent if name == SUBMIT]
    # Two slots, two sends: the two oldest waiting jobs, once each (not the same one twice).
    assert woken == [queued[0].pk, queued[1].pk]


def test_a_slot_promised_to_a_woken_job_is_not_promised_again(
    sent, django_capture_on_commit_callbacks
):
    _, in_flight, queued = _lane(2, running=2, waiting=3)

    with django_capture_on_commit_callbacks(execute=True):
        _finish(in_flight[0])
        # Released again before the woken job's send ran (a duplicate delivery, say).
        pipeline._release_lane(in_flight[0])

    assert [args[0] for name, args in sent if name == SUBMIT] == [queued[0].pk]


def test_a_woken_job_that_found_no_room_can_be_woken_again(
    sent, django_capture_on_commit_callbacks
):
    account, in_flight, queued = _lane(1, running=1, waiting=1)
    with django_capture_on_commit_callbacks(execute=True):
        _finish(in_flight[0])
    # Before its send ran, another job took the slot (e.g. a retry sent by hand).
    JobFactory(provider_account=account, state=JobState.RUNNING, provider_job_id="other")
    assert pipeline.claim_for_submit(queued[0].pk) is None
    queued[0].refresh_from_db()
    assert queued[0].state == JobState.PENDING
    sent.clear()

    other = Job.objects.get(provider_job_id="other")
    with django_capture_on_commit_callbacks(execute=True):
        _finish(other)

    assert [args[0] for name, args in sent if name == SUBMIT] == [queued[0].pk]
