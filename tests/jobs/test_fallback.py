"""Fallback through the real pipeline: a provider goes down, its waiting takes go elsewhere.

A real Celery worker on a real Redis, emulators over real HTTP. Two accounts speak the
OpenAI Videos API (the official one and a dearer gateway, each its own emulator); the
routing policy prefers the cheaper, and the breaker moves takes when it is down. What
is checked is what a user and each provider observe: where the take was made, what
each emulator received, and what the ledger charged.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs import breaker
from jobs.emulators.base import serve
from jobs.emulators.openai import OpenAIVideosEmulator
from jobs.models import JobState, LedgerEntry, ProviderAccount
from jobs.services import account_save
from studio.generation import take_create
from tests.jobs.factories import studio_scene
from tests.support.emulators import emulator_control, emulator_log
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gateway(studio):
    """A second OpenAI-shaped provider (a gateway), dearer per second: the fallback."""
    running = serve(
        OpenAIVideosEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS, poll_after_ms=100)
    )
    account = account_save(
        account=ProviderAccount(
            workspace=studio["workspace"],
            name="Gateway",
            kind="openai",
            base_url=running.api_url,
            model="sora-2",
            price_override=Decimal("0.15"),
        ),
        api_key="sk-gateway-1234",
    )
    yield {"emulator": running, "account": account}
    running.stop()


@pytest.fixture
def quick_breaker(settings):
    settings.JOBS_BREAKER_FAILURES = 1
    settings.JOBS_BREAKER_COOLDOWN_SECONDS = 2
    return settings


def test_a_take_for_a_provider_that_is_down_is_made_by_the_next_one(
    studio, gateway, quick_breaker, wait_for_job
):
    emulator_control(studio["openai"], "config", {"outage": True})
    take = take_create(scene=studio_scene(studio))
    assert take.job.provider_account == studio["accounts"]["openai"]  # the cheapest, first
    assert [f.account_id for f in take.job.job_request.fallbacks] == [gateway["account"].pk]

    job = wait_for_job(take.job)

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.provider_account == gateway["account"]
    assert job.routing["fallbacks"][0]["from"] == "OpenAI"
    assert job.routing["fallbacks"][0]["to"] == "Gateway"
    assert "OpenAI is not answering" in job.routing["fallbacks"][0]["reason"]
    # The official API refused the one create it got (503); the gateway made the video.
    assert [e["status"] for e in emulator_log(studio["openai"], "create")] == [503]
    assert [e["status"] for e in emulator_log(gateway["emulator"], "create")] == [200]
    # Paid once, at the gateway's price: 4 s at $0.15.
    charges = LedgerEntry.objects.filter(job=job, kind="charge")
    assert [c.amount for c in charges] == [Decimal("0.6000")]
    assert job.cost_actual == Decimal("0.6000")


def test_the_take_card_says_where_it_fell_back_and_why(
    studio, gateway, quick_breaker, wait_for_job, client
):
    from tests.factories import MembershipFactory

    emulator_control(studio["openai"], "config", {"outage": True})
    take = take_create(scene=studio_scene(studio))
    wait_for_job(take.job)
    member = MembershipFactory(workspace=studio["workspace"], role="viewer").user
    client.force_login(member)
    page = client.get(take.scene.get_absolute_url()).content.decode()
    assert "Fell back" in page
    assert "from OpenAI to Gateway: OpenAI is not answering" in page


def test_with_every_capable_provider_down_the_take_waits_unsent_then_goes(
    studio, gateway, quick_breaker, wait_for_job
):
    emulator_control(studio["openai"], "config", {"outage": True})
    emulator_control(gateway["emulator"], "config", {"outage": True})
    take = take_create(scene=studio_scene(studio))
    job = wait_for_job(
        take.job,
        states=(JobState.PENDING,),
        until=lambda j: (
            j.error_message.startswith("Waiting: ")
            and breaker.state(gateway["account"].pk).state != "closed"
        ),
    )
    assert "No other capable provider is up; nothing has been sent or charged." in (
        job.error_message
    )
    assert not LedgerEntry.objects.filter(job=job, kind="charge").exists()

    # The gateway recovers; its breaker lets a trial go.
    emulator_control(gateway["emulator"], "config", {"outage": False})
    job = wait_for_job(job, timeout=45)

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.provider_account == gateway["account"]
    successes = [e for e in emulator_log(gateway["emulator"], "create") if e["status"] == 200]
    assert len(successes) == 1  # made once
    assert LedgerEntry.objects.filter(job=job, kind="charge").count() == 1


def test_a_take_chosen_by_hand_is_not_moved_to_another_provider(
    studio, gateway, quick_breaker, wait_for_job
):
    emulator_control(studio["openai"], "config", {"outage": True})
    take = take_create(scene=studio_scene(studio), account=studio["accounts"]["openai"])
    job = wait_for_job(
        take.job,
        states=(JobState.PENDING,),
        until=lambda j: j.error_message.startswith("Waiting: "),
    )
    assert job.provider_account == studio["accounts"]["openai"]
    assert emulator_log(gateway["emulator"], "create") == []
    emulator_control(studio["openai"], "config", {"outage": False})
    assert wait_for_job(job, timeout=45).state == JobState.SUCCEEDED
