"""Estimated progress for providers that report none, from the account's recent jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import estimates
from jobs.models import JobState
from jobs.providers import capabilities_of
from tests.jobs.factories import JobFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def seedance():
    return ProviderAccountFactory(kind="seedance", model="", name="Seedance")


def _finished(account, *seconds: float, state=JobState.SUCCEEDED) -> None:
    """Jobs of the account that took these many seconds from submit to finish."""
    now = timezone.now()
    for index, took in enumerate(seconds):
        finished = now - timedelta(minutes=10 + index)
        JobFactory(
            provider_account=account,
            state=state,
            submitted_at=finished - timedelta(seconds=took),
            finished_at=finished,
        )


def _running(account, *, seconds_ago: float, state=JobState.RUNNING):
    return JobFactory(
        provider_account=account,
        state=state,
        submitted_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


def test_providers_declare_whether_they_report_progress():
    assert not capabilities_of("seedance").reports_progress
    assert capabilities_of("openai", "sora-2").reports_progress
    assert capabilities_of("runway").reports_progress
    assert capabilities_of("sora_relay").reports_progress
    assert not capabilities_of("kling").reports_progress


def test_a_silent_providers_job_is_estimated_from_the_accounts_median(seedance):
    _finished(seedance, 100, 120, 130, 600)  # median 125
    progress = estimates.progress_of(_running(seedance, seconds_ago=50))
    assert progress is not None
    assert progress.estimated
    assert progress.percent == 40
    assert progress.text == "about 40% (estimate) · about 1 min left"
    assert progress.typical == 125


def test_an_estimate_stops_short_of_done(seedance):
    _finished(seedance, 100, 100, 100)
    progress = estimates.progress_of(_running(seedance, seconds_ago=400))
    assert progress.percent == estimates.ALMOST_DONE
    assert progress.text == "almost done (estimate)"


def test_a_job_queued_at_the_provider_is_estimated_from_its_submission(seedance):
    _finished(seedance, 200, 200, 200)
    progress = estimates.progress_of(_running(seedance, seconds_ago=20, state=JobState.QUEUED))
    assert progress.text == "about 10% (estimate) · about 3 min left"


def test_without_enough_history_no_figure_is_made_up(seedance):
    _finished(seedance, 100, 100)  # two are too few
    _finished(seedance, 5, 5, 5, state=JobState.FAILED)  # failures say nothing of the pace
    _finished(ProviderAccountFactory(kind="seedance", model=""), 10, 10, 10)  # another's
    progress = estimates.progress_of(_running(seedance, seconds_ago=130))
    assert not progress.estimated
    assert progress.percent is None
    assert progress.text == "started 2 min ago"
    fresh = estimates.progress_of(_running(seedance, seconds_ago=5))
    assert fresh.text == "started under a minute ago"


def test_the_median_is_of_the_last_twenty_finished_jobs(seedance):
    _finished(seedance, *([60] * 20))  # the most recent
    now = timezone.now()
    for _ in range(30):  # older and slower
        JobFactory(
            provider_account=seedance,
            state=JobState.SUCCEEDED,
            submitted_at=now - timedelta(days=2, seconds=900),
            finished_at=now - timedelta(days=2),
        )
    assert estimates.account_pace(seedance.pk).typical == 60


def test_a_provider_that_reports_progress_shows_its_own_figure():
    openai = ProviderAccountFactory(kind="openai")
    _finished(openai, 100, 100, 100)
    assert estimates.progress_of(_running(openai, seconds_ago=50)) is None


def test_a_job_not_yet_at_the_provider_or_past_it_is_not_estimated(seedance):
    _finished(seedance, 100, 100, 100)
    waiting = JobFactory(provider_account=seedance, state=JobState.PENDING)
    downloading = _running(seedance, seconds_ago=90, state=JobState.DOWNLOADING)
    assert estimates.progress_of(waiting) is None
    assert estimates.progress_of(downloading) is None


def test_an_accounts_pace_is_read_once_for_many_jobs(seedance, django_assert_num_queries):
    _finished(seedance, 100, 100, 100)
    jobs = [_running(seedance, seconds_ago=10 * n) for n in range(1, 40)]
    with django_assert_num_queries(2):  # the account's kind, then its recent jobs
        figures = [estimates.progress_of(job) for job in jobs]
    assert all(figure.estimated for figure in figures)
    estimates.forget()
    with django_assert_num_queries(2):
        estimates.progress_of(jobs[0])  # forgotten: read again
