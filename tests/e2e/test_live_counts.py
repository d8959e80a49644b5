"""In a real browser: the storyboard's header figures follow the cards live (through the
page's one event stream, and through its poll), and an estimated progress moves on by
itself while the provider says nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobState
from jobs.pipeline import apply_provider_status
from jobs.providers.base import ProviderJob
from studio.models import Membership, Role
from tests.e2e.browser import log_in
from tests.factories import (
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
    UserFactory,
)
from tests.jobs.factories import JobFactory, ProviderAccountFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# Runs before the page's scripts: notes when the page's event stream opens.
STREAM_OPEN = "document.addEventListener('htmx:sseOpen', () => { window.liveOpen = true; });"


@pytest.fixture
def board(workspace, redis_url, settings):
    """An episode of three scenes: one generating, one ready to choose, one without a take;
    and an editor."""
    settings.LIVE_POLL_SECONDS = 1
    settings.LIVE_RESYNC_SECONDS = 60  # after its first look, the stream hears only of Redis
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    episode = EpisodeFactory(series=SeriesFactory(workspace=workspace))
    scenes = [SceneFactory(episode=episode, title=f"Scene {n}") for n in range(3)]
    take = TakeFactory(scene=scenes[0], account=account, state=JobState.QUEUED)
    TakeFactory(scene=scenes[1], account=account)
    user = UserFactory(username="ana")
    Membership.objects.create(workspace=workspace, user=user, role=Role.EDITOR)
    return {"episode": episode, "scene": scenes[0], "job": take.job}


def _open(page, base: str, path: str) -> list[str]:
    """Sign in and open the storyboard; the page's errors (its console's, and answers that
    failed, but for the pictures of the factory's finished takes, which have no file)."""
    log_in(page, base, "ana")
    errors: list[str] = []

    def console(message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def answer(response) -> None:
        if response.status >= 400 and "/thumbnail/" not in response.url:
            errors.append(f"{response.status} {response.url}")

    page.on("console", console)
    page.on("response", answer)
    page.add_init_script(STREAM_OPEN)
    page.goto(f"{base}{path}")
    return errors


def _header_reads(page, words: str) -> None:
    page.wait_for_function(
        "(words) => document.getElementById('episode-counts').textContent.trim() === words",
        arg=words,
    )


def _finished(job: Job) -> None:
    """The provider's video is in: the take is ready to choose."""
    job.refresh_from_db()
    assert job.move(JobState.SUCCEEDED, progress=100)


def test_the_header_counts_change_live_when_a_take_finishes(live_server, board, page):
    errors = _open(page, live_server.url, board["episode"].get_absolute_url())
    page.wait_for_function("() => window.liveOpen === true")
    assert "1 generating" in page.inner_text("#episode-counts")
    job = board["job"]
    job.refresh_from_db()
    apply_provider_status(job, ProviderJob(job.provider_job_id, "running", progress=50))
    page.wait_for_selector(f"#scene-status-{board['scene'].pk} progress[aria-valuenow='50']")
    _finished(job)
    _header_reads(page, "3 scenes · 2 ready to choose · 3 without a chosen take")
    page.wait_for_selector(f"#scene-status-{board['scene'].pk}.status-ready")
    assert errors == []


def test_the_header_counts_follow_the_poll_too(live_server, board, page):
    page.add_init_script("delete window.EventSource")
    errors = _open(page, live_server.url, board["episode"].get_absolute_url())
    page.wait_for_function("() => document.getElementById('live').dataset.livePolling")
    job = board["job"]
    job.refresh_from_db()
    assert job.move(JobState.FAILED, error_message="The provider refused it.")
    _header_reads(page, "3 scenes · 1 ready to choose · 1 failed · 3 without a chosen take")
    assert errors == []


def test_an_estimate_moves_on_while_the_provider_says_nothing(live_server, board, page):
    """Seedance reports no progress: the card estimates from the account's recent jobs, says
    so, and moves on between events (none comes while the job sits at 0%)."""
    seedance = ProviderAccountFactory(
        workspace=board["episode"].series.workspace, name="Seedance", kind="seedance", model=""
    )
    finished = timezone.now() - timedelta(hours=1)
    for _ in range(3):
        JobFactory(
            provider_account=seedance,
            state=JobState.SUCCEEDED,
            submitted_at=finished - timedelta(seconds=100),
            finished_at=finished,
        )
    scene = SceneFactory(episode=board["episode"], title="Harbour")
    TakeFactory(
        scene=scene,
        account=seedance,
        state=JobState.RUNNING,
        job__submitted_at=timezone.now() - timedelta(seconds=20),
    )
    errors = _open(page, live_server.url, board["episode"].get_absolute_url())
    status = page.locator(f"#scene-status-{scene.pk}")
    first = status.locator(".estimate").inner_text()
    assert first.endswith("% (estimate) · about 1 min left")
    start = int(first.removeprefix("about ").split("%")[0])
    assert 20 <= start < 40
    bar = status.locator("progress")
    assert bar.get_attribute("aria-label").endswith("(estimate)")
    page.wait_for_function(
        """([id, start]) => {
            const words = document.querySelector(`#scene-status-${id} .estimate`).textContent;
            return Number(words.replace("about ", "").split("%")[0]) > start;
        }""",
        arg=[scene.pk, start],
        timeout=12_000,
    )
    assert int(bar.get_attribute("aria-valuenow")) > start
    assert errors == []
