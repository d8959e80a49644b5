"""The circuit breaker: shared in Redis, opened by outages, one trial after the cool-down."""

from __future__ import annotations

import httpx
import pytest

from jobs import breaker
from jobs.pipeline import poll
from studio.generation import take_create
from tests.factories import SceneFactory

pytestmark = pytest.mark.redis


@pytest.fixture
def short_cooldown(settings):
    settings.JOBS_BREAKER_FAILURES = 3
    settings.JOBS_BREAKER_COOLDOWN_SECONDS = 1
    return settings


def test_it_stays_closed_below_the_threshold(short_cooldown):
    breaker.record_failure(11, "503")
    breaker.record_failure(11, "503")
    assert breaker.state(11).state == "closed"
    assert breaker.allow(11)


def test_it_opens_after_consecutive_failures_and_refuses_requests(short_cooldown):
    for _ in range(3):
        breaker.record_failure(12, "The provider answered 503.")
    current = breaker.state(12)
    assert current.state == "open"
    assert current.last_error == "The provider answered 503."
    assert 0 < current.reopens_in <= 1
    assert not breaker.allow(12)


def test_a_success_between_failures_starts_the_count_again(short_cooldown):
    breaker.record_failure(13, "timeout")
    breaker.record_failure(13, "timeout")
    breaker.record_success(13)
    breaker.record_failure(13, "timeout")
    assert breaker.state(13).state == "closed"


def test_after_the_cool_down_exactly_one_trial_goes(short_cooldown, monkeypatch):
    for _ in range(3):
        breaker.record_failure(14, "503")
    opened = breaker.state(14)
    later = breaker.time.time() + opened.reopens_in + 0.01
    monkeypatch.setattr(breaker.time, "time", lambda: later)
    assert breaker.state(14).state == "half-open"
    assert breaker.allow(14)  # the trial
    assert not breaker.allow(14)  # everyone else waits for it


def test_a_failed_trial_opens_it_again_and_a_good_one_closes_it(short_cooldown, monkeypatch):
    for _ in range(3):
        breaker.record_failure(15, "503")
    now = breaker.time.time() + 1.01
    monkeypatch.setattr(breaker.time, "time", lambda: now)
    assert breaker.allow(15)
    breaker.record_failure(15, "still 503")
    assert breaker.state(15).state == "open"
    monkeypatch.setattr(breaker.time, "time", lambda: now + 1.01)
    assert breaker.allow(15)
    breaker.record_success(15)
    assert breaker.state(15).state == "closed"
    assert breaker.allow(15)


def test_every_worker_sees_the_same_breaker(short_cooldown, redis_url):
    """State lives in Redis: what one process records another reads."""
    import redis

    for _ in range(3):
        breaker.record_failure(16, "503")
    raw = redis.Redis.from_url(redis_url).hgetall("castboard:breaker:16")
    assert int(raw[b"failures"]) == 3
    assert float(raw[b"opened_at"]) > 0


@pytest.mark.django_db(transaction=True)
def test_an_emulated_outage_opens_the_breaker_of_that_account_only(
    studio, short_cooldown, wait_for_job
):
    """Through the real pipeline: polls of an accepted job meet the outage, and the account's
    breaker opens; the other account's stays closed."""
    openai = studio["accounts"]["openai"]
    take = take_create(
        scene=SceneFactory(episode=studio["episode"], prompt="A harbour.", duration=4),
        account=openai,
    )
    job = wait_for_job(take.job, states=("queued", "running"))
    assert (
        httpx.post(f"{studio['openai'].url}/_emulator/config", json={"outage": True}).status_code
        == 200
    )
    for _ in range(3):
        job.refresh_from_db()
        poll(job.pk, force=True)
    assert breaker.state(openai.pk).state == "open"
    assert breaker.state(studio["accounts"]["relay"].pk).state == "closed"
    httpx.post(f"{studio['openai'].url}/_emulator/config", json={"outage": False})
    breaker.reset(openai.pk)
    assert wait_for_job(job).state == "succeeded"
