"""In a real browser: a storyboard with a take in flight follows its progress through the
page's one event stream (no request per card), and through one poll where the browser has
no EventSource."""

from __future__ import annotations

import pytest

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
from tests.jobs.factories import ProviderAccountFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# How long the page is watched once a card has moved: long enough for a 1 s poll (what every
# card in flight used to make) to show several times over.
WATCH_MS = 2500


@pytest.fixture
def board(workspace, redis_url, settings):
    """An episode of three scenes, the first with a take in flight, and an editor."""
    settings.LIVE_POLL_SECONDS = 1
    settings.LIVE_RESYNC_SECONDS = 60  # after its first look, the stream hears only of Redis
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    episode = EpisodeFactory(series=SeriesFactory(workspace=workspace))
    scenes = [SceneFactory(episode=episode, title=f"Scene {n}") for n in range(3)]
    take = TakeFactory(scene=scenes[0], account=account, state=JobState.QUEUED)
    TakeFactory(scene=scenes[1], account=account, state=JobState.QUEUED)
    user = UserFactory(username="ana")
    Membership.objects.create(workspace=workspace, user=user, role=Role.EDITOR)
    return {"episode": episode, "scene": scenes[0], "job": take.job}


def _running(job: Job, progress: int) -> None:
    """The provider reports progress, as the engine's poll hears it."""
    job.refresh_from_db()
    apply_provider_status(job, ProviderJob(job.provider_job_id, "running", progress=progress))


# Runs before the page's scripts: notes when the page's event stream opens.
STREAM_OPEN = "document.addEventListener('htmx:sseOpen', () => { window.liveOpen = true; });"


def _open(page, base: str, path: str) -> tuple[list[str], list[str]]:
    """Sign in, open the storyboard; the requests the page makes and its console's errors."""
    log_in(page, base, "ana")
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.add_init_script(STREAM_OPEN)
    page.goto(f"{base}{path}")
    return requests, errors


def _card_shows(page, scene, progress: int) -> None:
    page.wait_for_selector(
        f"#scene-status-{scene.pk}.status-in-flight progress[aria-valuenow='{progress}']"
    )


def test_the_storyboard_follows_progress_through_one_stream(live_server, board, page):
    scene, job = board["scene"], board["job"]
    requests, errors = _open(page, live_server.url, board["episode"].get_absolute_url())
    page.wait_for_function("() => window.liveOpen === true")
    _running(job, 30)
    _card_shows(page, scene, 30)
    assert "Generating" in page.inner_text(f"#scene-status-{scene.pk}")
    _running(job, 65)
    _card_shows(page, scene, 65)
    page.wait_for_timeout(WATCH_MS)

    assert len([url for url in requests if "/events/" in url]) == 1
    assert not [url for url in requests if "/status/" in url or "/statuses/" in url]
    assert errors == []


def test_cards_loaded_as_the_user_scrolls_follow_progress_too(live_server, board, settings, page):
    settings.STORYBOARD_SLICE = 2  # the first screen: two cards; the rest on scrolling
    late = SceneFactory(episode=board["episode"], title="Late")
    job = TakeFactory(scene=late, account=board["job"].provider_account, state=JobState.QUEUED).job
    path = board["episode"].get_absolute_url()
    requests, errors = _open(page, live_server.url, path)
    page.wait_for_function("() => window.liveOpen === true")
    first_screen = page.request.get(f"{live_server.url}{path}").text()
    assert f'id="scene-status-{late.pk}"' not in first_screen  # it comes later, by htmx
    for _ in range(20):  # scroll until the slice with the late card has come
        if page.locator(f"#scene-status-{late.pk}").count():
            break
        page.mouse.wheel(0, 2000)
        page.wait_for_timeout(200)
    page.wait_for_selector(f"#scene-status-{late.pk}")
    _running(job, 45)
    _card_shows(page, late, 45)
    assert len([url for url in requests if "/events/" in url]) == 1
    assert errors == []


def test_without_event_source_the_page_polls_once_for_every_card(live_server, board, page):
    scene, job = board["scene"], board["job"]
    page.add_init_script("delete window.EventSource")
    requests, errors = _open(page, live_server.url, board["episode"].get_absolute_url())
    page.wait_for_function("() => document.getElementById('live').dataset.livePolling")
    _running(job, 20)
    _card_shows(page, scene, 20)
    page.wait_for_timeout(WATCH_MS)

    polls = [url for url in requests if "/statuses/" in url]
    assert len(polls) >= 2
    assert all("since=" in url for url in polls)
    assert not [url for url in requests if "/events/" in url or "/status/" in url]
    assert errors == []


def test_the_page_reconnects_as_each_stream_ends_and_catches_up(live_server, board, settings, page):
    """Short streams: the browser opens the next one itself, with the last cursor it got
    (Last-Event-ID), and stays on streams however many have ended."""
    settings.LIVE_STREAM_SECONDS = 1
    scene, job = board["scene"], board["job"]
    streams = []
    page.on("request", lambda request: "/events/" in request.url and streams.append(request))
    requests, errors = _open(page, live_server.url, board["episode"].get_absolute_url())
    page.wait_for_function("() => window.liveOpen === true")
    for _ in range(100):  # more ends than live.js's failures before it would poll
        if len(streams) >= 7:
            break
        page.wait_for_timeout(200)
    _running(job, 35)
    _card_shows(page, scene, 35)

    assert len(streams) >= 7
    cursors = [request.all_headers().get("last-event-id") for request in streams[1:]]
    assert all(cursors)
    assert [float(c) for c in cursors] == sorted(float(c) for c in cursors)
    assert not page.evaluate("() => document.getElementById('live').dataset.livePolling")
    assert not [url for url in requests if "/statuses/" in url or "/status/" in url]
    assert errors == []


def test_a_stream_that_keeps_failing_gives_way_to_the_poll(live_server, board, page):
    """A proxy that refuses event streams (here: a 503 for every one): after a few tries
    the page polls, and the card still moves."""
    scene, job = board["scene"], board["job"]
    page.route("**/events/**", lambda route: route.fulfill(status=503, body="Not here"))
    requests, _ = _open(page, live_server.url, board["episode"].get_absolute_url())
    page.wait_for_function(
        "() => document.getElementById('live').dataset.livePolling", timeout=30_000
    )
    _running(job, 25)
    _card_shows(page, scene, 25)
    assert [url for url in requests if "/statuses/" in url]
    assert not [url for url in requests if "/status/" in url]
