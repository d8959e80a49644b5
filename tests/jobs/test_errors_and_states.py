"""How provider answers are classified, and the job state machine that only moves forward."""

from __future__ import annotations

import httpx
import pytest

from jobs.models import JobState
from jobs.pipeline import backoff_seconds
from jobs.providers.base import ProviderError
from jobs.providers.http import classify_response
from tests.jobs.factories import JobFactory


def _response(status: int, body: object = None, method: str = "POST", **headers: str):
    request = httpx.Request(method, "http://127.0.0.1/v1/videos")
    return httpx.Response(status, json=body, headers=headers, request=request)


def _error(status: int, code: str = "", message: str = "nope", **headers: str) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        classify_response(
            _response(status, {"error": {"code": code, "message": message}}, **headers),
            provider="OpenAI",
        )
    return caught.value


def test_a_rate_limit_carries_the_wait_in_milliseconds_first():
    error = _error(429, "rate_limit_exceeded", **{"retry-after": "7", "retry-after-ms": "1500"})
    assert (error.kind, error.retry_after) == ("rate_limit", 1.5)


def test_insufficient_quota_is_not_a_rate_limit():
    assert _error(429, "insufficient_quota", "You exceeded your quota").kind == "quota"


def test_moderation_is_recognised_by_its_code():
    assert _error(400, "moderation_blocked").kind == "moderation"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid"), (401, "auth"), (403, "auth"), (404, "not_found"), (422, "invalid")],
)
def test_client_errors_are_terminal_kinds(status, kind):
    assert _error(status).kind == kind


def test_a_503_on_create_was_not_accepted_but_a_500_may_have_been():
    assert _error(503).maybe_accepted is False
    assert _error(500).maybe_accepted is True


def test_a_relay_error_string_becomes_the_message():
    with pytest.raises(ProviderError, match="unknown character @char_x"):
        classify_response(
            _response(400, {"error": "unknown character @char_x"}), provider="Sora relay"
        )


def test_backoff_grows_but_stays_under_the_cap(settings):
    settings.JOBS_BACKOFF_BASE_SECONDS = 2
    settings.JOBS_MAX_BACKOFF_SECONDS = 60
    assert all(0.5 <= backoff_seconds(0) <= 2 for _ in range(50))
    assert all(backoff_seconds(20) <= 60 for _ in range(50))


@pytest.mark.django_db
def test_a_job_only_moves_forward():
    job = JobFactory(state=JobState.RUNNING)
    assert job.move(JobState.DOWNLOADING)
    assert not job.move(JobState.RUNNING)  # a late poll
    assert not job.move(JobState.QUEUED)
    job.refresh_from_db()
    assert job.state == JobState.DOWNLOADING


@pytest.mark.django_db
def test_a_finished_job_stays_finished_whatever_arrives_later():
    job = JobFactory(state=JobState.RUNNING)
    assert job.move(JobState.FAILED, error_code="moderation", error_message="blocked")
    assert not job.move(JobState.SUCCEEDED)
    assert not job.move(JobState.CANCELLED)
    job.refresh_from_db()
    assert (job.state, job.error_code) == (JobState.FAILED, "moderation")
    assert job.finished_at is not None


@pytest.mark.django_db
def test_two_claims_of_one_pending_job_succeed_once():
    job = JobFactory(state=JobState.PENDING)
    first = job.move(JobState.SUBMITTING, only_from=(JobState.PENDING,))
    second = (
        type(job).objects.get(pk=job.pk).move(JobState.SUBMITTING, only_from=(JobState.PENDING,))
    )
    assert (first, second) == (True, False)


@pytest.mark.django_db
def test_a_job_outlives_its_take_and_keeps_its_account_but_not_its_workspace():
    from django.db.models import RestrictedError

    from studio.models import Take
    from tests.factories import SceneFactory

    job = JobFactory(state=JobState.SUCCEEDED)
    scene = SceneFactory(episode__series__workspace=job.workspace)
    take = Take.objects.create(scene=scene, job=job)
    with pytest.raises(RestrictedError):
        job.delete()
    with pytest.raises(RestrictedError):
        job.provider_account.delete()
    take.delete()  # deleting a take (or its scene) keeps the job and its cost
    assert type(job).objects.filter(pk=job.pk).exists()
    other = JobFactory(provider_account=job.provider_account, state=JobState.SUCCEEDED)
    Take.objects.create(scene=scene, job=other)
    job.workspace.delete()  # a whole workspace goes with everything in it, takes included
    assert not type(job).objects.filter(pk__in=[job.pk, other.pk]).exists()
