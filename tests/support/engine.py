"""Engine fixtures (a plugin of the root conftest): emulators on free ports, a studio, waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from jobs import sweep
from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.elevenlabs import ElevenLabsEmulator
from jobs.emulators.openai import OpenAIVideosEmulator
from jobs.emulators.sora_relay import SoraRelayEmulator
from jobs.models import Job, ProviderAccount
from jobs.services import account_save
from tests.jobs.factories import build_studio

EMULATOR_LATENCY = 0.3
EMULATOR_FPS = 6  # rendering at 6 fps keeps every download well under a second


@pytest.fixture
def openai_emulator() -> Iterator[RunningEmulator]:
    running = serve(
        OpenAIVideosEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS, poll_after_ms=100)
    )
    yield running
    running.stop()


@pytest.fixture
def relay_emulator() -> Iterator[RunningEmulator]:
    running = serve(SoraRelayEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()


@pytest.fixture
def elevenlabs_emulator() -> Iterator[RunningEmulator]:
    """The text-to-speech emulator on a free loopback port."""
    running = serve(ElevenLabsEmulator(latency_seconds=EMULATOR_LATENCY))
    yield running
    running.stop()


def elevenlabs_account_at(workspace, running: RunningEmulator) -> ProviderAccount:
    """An ElevenLabs account of the workspace at a running ElevenLabs emulator."""
    return account_save(
        account=ProviderAccount(
            workspace=workspace,
            name="ElevenLabs",
            kind="elevenlabs",
            base_url=running.api_url,
            model="eleven_multilingual_v2",
        ),
        api_key="xi-test-1234",
    )


@pytest.fixture
def speech_account(workspace, elevenlabs_emulator) -> ProviderAccount:
    """The workspace's ElevenLabs account, at the emulator."""
    return elevenlabs_account_at(workspace, elevenlabs_emulator)


@pytest.fixture
def fast_engine(settings):
    """Engine timings for tests: polls as often as the emulator hints, no grace periods."""
    settings.JOBS_MIN_POLL_SECONDS = 0.05
    settings.JOBS_RECONCILE_DELAY_SECONDS = 0
    settings.JOBS_SWEEP_GRACE_SECONDS = 0
    settings.JOBS_BACKOFF_BASE_SECONDS = 1
    settings.JOBS_LEASE_SECONDS = 2
    settings.JOBS_DOWNLOAD_LEASE_SECONDS = 5
    settings.JOBS_PROVIDER_TIMEOUT_SECONDS = 5
    return settings


@pytest.fixture
def studio(live_server, settings, fast_engine, celery_worker, openai_emulator, relay_emulator):
    """The studio of build_studio, with an in-process worker on the test Redis."""
    settings.PUBLIC_BASE_URL = live_server.url
    built = build_studio(openai_url=openai_emulator.api_url, relay_url=relay_emulator.api_url)
    return {**built, "openai": openai_emulator, "relay": relay_emulator}


@pytest.fixture
def wait_for_job() -> Callable[..., Job]:
    """Wait until a job reaches one of `states`, running the sweep as beat would."""

    def wait(
        job: Job,
        states=("succeeded", "failed", "cancelled"),
        timeout: float = 30.0,
        until: Callable[[Job], bool] | None = None,
    ) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job.refresh_from_db()
            if job.state in states and (until is None or until(job)):
                return job
            assert time.monotonic() < deadline, f"job stuck in {job.state}: {job.error_message}"
            sweep.run()
            time.sleep(0.1)

    return wait


@pytest.fixture
def wait_for_score() -> Callable[..., object]:
    """Wait until the worker has scored a take (studio.models.TakeScore out of "pending")."""
    from studio.models import TakeScore

    def wait(take, timeout: float = 120.0) -> TakeScore:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            score = TakeScore.objects.filter(take=take).exclude(state=TakeScore.State.PENDING)
            if found := score.first():
                return found
            time.sleep(0.2)
        take.job.refresh_from_db()
        raise AssertionError(f"take {take.pk} not scored (job {take.job.state})")

    return wait
