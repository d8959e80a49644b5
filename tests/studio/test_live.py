"""Live progress on the storyboard: one event stream per page over real HTTP and a real Redis,
the poll that stands in for it, and who may open either."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs import live as jobs_live
from jobs.models import Job, JobState
from jobs.pipeline import apply_provider_status
from jobs.providers.base import ProviderJob
from studio import live
from studio.models import Membership, Take
from studio.storyboard import storyboard_counts
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory, UserFactory
from tests.jobs.factories import JobFactory, ProviderAccountFactory
from tests.support.in_flight import in_flight
from tests.support.processes import point_celery_at

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@dataclass
class Event:
    """One block of the stream, as EventSource parses it (data-less ones too: a heartbeat)."""

    name: str = ""
    id: str = ""
    data: str = ""
    retry: str = ""
    comment: str = ""


def _events(response: httpx.Response) -> Iterator[Event]:
    """Every block of a streamed response, in order."""
    event, data = Event(), []
    for line in response.iter_lines():
        if line == "":
            event.data = "\n".join(data)
            yield event
            event, data = Event(), []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "":
            event.comment = value
        elif field == "data":
            data.append(value)
        elif field in ("event", "id", "retry"):
            setattr(event, "name" if field == "event" else field, value)


def _until(events: Iterator[Event], name: str, containing: str) -> list[Event]:
    """The events with data up to the first one named `name` whose data has `containing`."""
    seen = []
    for event in events:
        if event.data:
            seen.append(event)
            if event.name == name and containing in event.data:
                return seen
    raise AssertionError(f"the stream ended without {name} carrying {containing!r}")


def _listening(events: Iterator[Event]) -> list[Event]:
    """Read the opening and the first resync (its heartbeat): from then on, what comes was
    pushed through Redis (the fixtures put the next resync past the test's end)."""
    opening = next(events)
    assert opening.retry == "1000"
    seen = []
    for event in events:
        seen.append(event)
        if event.comment and event.id:
            return seen
    raise AssertionError("the stream ended before its first resync")


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace))


@pytest.fixture
def openai(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")


@pytest.fixture
def session(owner) -> dict[str, str]:
    """The owner's session cookie, for a client that is not Django's."""
    client = Client()
    client.force_login(owner)
    name = django_settings.SESSION_COOKIE_NAME
    return {name: client.cookies[name].value}


@pytest.fixture
def quick_streams(settings, redis_url):
    """Streams that end within a test, and no resync after their first while a test watches."""
    settings.LIVE_STREAM_SECONDS = 15
    settings.LIVE_RESYNC_SECONDS = 60
    return settings


def _stream(live_server, episode, cookies, **params) -> httpx.Response:
    url = live_server.url + reverse(
        "episode_events", args=[episode.series.workspace.slug, episode.pk]
    )
    headers = params.pop("headers", {})
    return httpx.stream("GET", url, params=params, cookies=cookies, headers=headers, timeout=10)


def _settled(*takes: Take) -> None:
    """Made, and last moved, an hour ago: news to no page."""
    hour_ago = timezone.now() - timedelta(hours=1)
    Take.objects.filter(pk__in=[t.pk for t in takes]).update(created_at=hour_ago)
    Job.objects.filter(pk__in=[t.job_id for t in takes]).update(updated_at=hour_ago)


def _running(job: Job, progress: int) -> None:
    """The provider reports progress, as a poll hears it."""
    job.refresh_from_db()
    apply_provider_status(job, ProviderJob(job.provider_job_id, "running", progress=progress))


# --- The stream ----------------------------------------------------------------------------


def test_the_stream_pushes_a_scenes_new_status_when_its_job_moves(
    live_server, quick_streams, episode, openai, session
):
    scene = SceneFactory(episode=episode)
    other = SceneFactory(episode=episode)
    take = TakeFactory(scene=scene, account=openai, state=JobState.QUEUED)
    _settled(take, TakeFactory(scene=other, account=openai, state=JobState.QUEUED))
    with _stream(live_server, episode, session, since=time.time()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert "no-cache" in response.headers["cache-control"]
        assert response.headers["x-accel-buffering"] == "no"
        events = _events(response)
        assert not [e for e in _listening(events) if e.data]  # nothing changed yet
        _running(take.job, 40)
        (event,) = _until(events, f"scene-{scene.pk}", 'aria-valuenow="40"')
    assert event.data.startswith(
        f'<div class="scene-status status-in-flight" id="scene-status-{scene.pk}"'
    )
    assert f'sse-swap="scene-{scene.pk}"' in event.data
    assert "Generating" in event.data
    assert float(event.id) > 0  # the cursor a reconnecting browser sends back


def test_each_change_comes_once_and_only_for_its_own_scene(
    live_server, quick_streams, episode, openai, session
):
    scene = SceneFactory(episode=episode)
    other = SceneFactory(episode=episode)
    take = TakeFactory(scene=scene, account=openai, state=JobState.QUEUED)
    _settled(take, TakeFactory(scene=other, account=openai, state=JobState.QUEUED))
    with _stream(live_server, episode, session, since=time.time()) as response:
        events = _events(response)
        _listening(events)
        _running(take.job, 40)
        _running(take.job, 40)  # the same figure again: nothing new to say
        _running(take.job, 70)
        seen = _until(events, f"scene-{scene.pk}", 'aria-valuenow="70"')
    assert {event.name for event in seen} == {f"scene-{scene.pk}"}
    datas = [event.data for event in seen]
    assert len(datas) == len(set(datas)) <= 2  # 40 then 70, or 70 alone when told together


def test_a_reconnecting_stream_catches_up_from_its_last_event_id(
    live_server, quick_streams, episode, openai, session
):
    old = SceneFactory(episode=episode)
    scene = SceneFactory(episode=episode)
    take = TakeFactory(scene=scene, account=openai, state=JobState.QUEUED)
    _settled(take, TakeFactory(scene=old, account=openai, state=JobState.RUNNING))
    cursor = time.time() - 60
    _running(take.job, 55)  # while no stream was open
    page_since = time.time() - 2 * 3600  # what the page said: the browser's cursor wins
    headers = {"Last-Event-ID": str(cursor)}
    with _stream(live_server, episode, session, since=page_since, headers=headers) as response:
        caught_up = _listening(_events(response))
    named = [event.name for event in caught_up if event.data]
    assert named == [f"scene-{scene.pk}", "episode-counts"]  # the header's figures with it
    assert 'aria-valuenow="55"' in caught_up[0].data


def test_the_stream_ends_by_itself_and_says_when_to_come_back(
    live_server, settings, redis_url, episode, session
):
    settings.LIVE_STREAM_SECONDS = 1
    settings.LIVE_RESYNC_SECONDS = 1
    with _stream(live_server, episode, session) as response:
        body = response.read().decode()
    assert body.startswith("retry: 1000\n")
    assert "\nid: " in body  # each resync renews the cursor, with or without news


def test_a_quiet_stream_says_so_and_ends_soon_after_its_client_has_gone(
    live_server, quick_streams, redis_url, episode, session
):
    """Nothing to send for LIVE_HEARTBEAT_SECONDS: a comment line, which is how a stream
    learns that its client has gone (the write fails), long before its next resync or its
    end: its thread is free again, and it reads no rows for no one."""
    quick_streams.LIVE_HEARTBEAT_SECONDS = 0.25
    with _stream(live_server, episode, session) as response:
        events = _events(response)
        _listening(events)
        quiet = next(events)
        assert (quiet.comment, quiet.id, quiet.data) == ("quiet", "", "")
    assert in_flight.wait_until_done(timeout=10) == []  # not the 15 s of its life


def test_a_member_removed_while_listening_hears_no_more(
    live_server, settings, redis_url, episode, openai, owner, session
):
    settings.LIVE_STREAM_SECONDS = 60
    settings.LIVE_RESYNC_SECONDS = 1
    TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.QUEUED)
    with _stream(live_server, episode, session) as response:
        events = _events(response)
        _listening(events)
        Membership.objects.filter(user=owner, workspace=episode.series.workspace).delete()
        resyncs = 0
        for event in events:  # the stream ends at its next resync, not at the end of its life
            resyncs += bool(event.comment and event.id)
            assert resyncs < 5, "the stream went on for a removed member"


def test_what_a_batch_reads_does_not_grow_with_the_scenes_it_shows(episode, openai, owner):
    scenes = [SceneFactory(episode=episode) for _ in range(6)]
    takes = [TakeFactory(scene=s, account=openai, state=JobState.QUEUED) for s in scenes]
    membership = Membership.objects.select_related("workspace").get(
        user=owner, workspace=episode.series.workspace
    )

    def cost(count: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            blocks = live.status_blocks(
                request=RequestFactory().get("/"),
                membership=membership,
                episode=episode,
                scene_ids=[s.pk for s in scenes[:count]],
            )
        assert list(blocks) == [s.pk for s in scenes[:count]]
        return len(queries)

    assert cost(1) == cost(6)
    with CaptureQueriesContext(connection) as queries:
        changed = live.scenes_changed_since(episode=episode, since=time.time() - 30)
        pushed = live.scenes_of_jobs(episode=episode, job_ids=[t.job_id for t in takes[:2]])
    assert len(queries) == 2
    assert changed == sorted(s.pk for s in scenes)
    assert pushed == sorted(s.pk for s in scenes[:2])


def test_streams_of_one_process_share_a_block_read_after_the_news_and_keep_their_own_csrf(
    episode, openai, owner, members
):
    scene = SceneFactory(episode=episode)
    take = TakeFactory(scene=scene, account=openai, state=JobState.FAILED)  # with a Retry form
    workspace = episode.series.workspace
    memberships = Membership.objects.select_related("workspace").filter(workspace=workspace)
    editors = [m for m in memberships if m.can_edit][:2]
    requests = [RequestFactory().get("/") for _ in editors]

    def blocks(membership, request, *, read_after):
        with CaptureQueriesContext(connection) as queries:
            found = live.status_blocks(
                request=request,
                membership=membership,
                episode=episode,
                scene_ids=[scene.pk],
                read_after=read_after,
            )
        return found[scene.pk], len(queries)

    heard = time.monotonic()
    first, read = blocks(editors[0], requests[0], read_after=heard)
    second, reused = blocks(editors[1], requests[1], read_after=heard)
    assert read > 0
    assert reused == 0
    assert "Retry" in first
    assert "Retry" in second
    tokens = [
        block.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        for block in (first, second)
    ]
    assert tokens[0] != tokens[1]  # each viewer's own form token

    Job.objects.filter(pk=take.job_id).update(error_message="The provider refused it.")
    later, again = blocks(editors[1], requests[1], read_after=time.monotonic())
    assert again > 0  # news heard after the block was read: it is read again
    assert "The provider refused it." in later


def test_a_stream_reuses_a_scene_read_after_its_own_news_whatever_else_it_heard_since(
    episode, openai, owner
):
    """Streams wake at their own moments; one that heard of another scene since must still
    reuse the block another stream read after this scene's news (not read it again)."""
    lamp, stairs = SceneFactory(episode=episode), SceneFactory(episode=episode)
    for scene in (lamp, stairs):
        TakeFactory(scene=scene, account=openai, state=JobState.RUNNING, job__progress=10)
    membership = Membership.objects.select_related("workspace").get(
        user=owner, workspace=episode.series.workspace
    )

    def reads(read_after) -> int:
        with CaptureQueriesContext(connection) as queries:
            live.status_blocks(
                request=RequestFactory().get("/"),
                membership=membership,
                episode=episode,
                scene_ids=[lamp.pk],
                read_after=read_after,
            )
        return len(queries)

    lamp_heard = time.monotonic()
    assert reads({lamp.pk: lamp_heard}) > 0  # the first stream reads it
    stairs_heard = time.monotonic()  # news of the other scene, heard later
    assert reads({lamp.pk: lamp_heard, stairs.pk: stairs_heard}) == 0
    assert reads(stairs_heard) > 0  # one moment for all: the lamp's block is older than it


def test_a_change_the_rows_show_is_fresh_in_a_block_read_once_it_surely_committed(episode, openai):
    """A stream's resync finds a take made 10 s ago: a block another stream read after that
    take's stamp plus the commit lag shows it, so it is reused, not read again."""
    made = SceneFactory(episode=episode)
    take = TakeFactory(scene=made, account=openai, state=JobState.QUEUED)
    Take.objects.filter(pk=take.pk).update(created_at=timezone.now() - timedelta(seconds=10))
    reviewed = SceneFactory(episode=episode)
    TakeFactory(scene=reviewed, account=openai, reviewed_at=timezone.now())

    changed = live.scenes_changed_at(episode=episode, since=time.time() - 60, jobs=False)

    now = time.monotonic()
    assert set(changed) == {made.pk, reviewed.pk}
    assert changed[made.pk] == pytest.approx(now - 10 + live.LAG_SECONDS, abs=0.5)
    assert changed[reviewed.pk] > now  # may still be committing: read it after the look
    assert live.scenes_changed_since(episode=episode, since=time.time() - 60, jobs=False) == (
        sorted(changed)
    )


def _subscribers(redis_url: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return dict(client.pubsub_numsub(jobs_live.CHANNEL))[jobs_live.CHANNEL.encode()]
    finally:
        client.close()


def test_a_process_listens_once_however_many_pages_are_open(redis_url, episode, openai):
    take = TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.QUEUED)
    listeners = [jobs_live.Listener()]
    subscribed = _subscribers(redis_url)  # this process's, and any other test process's
    listeners += [jobs_live.Listener() for _ in range(4)]
    try:
        assert all(listener.listening for listener in listeners)
        assert _subscribers(redis_url) == subscribed  # one subscription, not one per page
        take.job.move(JobState.RUNNING, progress=5)
        heard = [listener.wait(5.0, gather=0.0) for listener in listeners]
    finally:
        for listener in listeners:
            listener.close()
    change = jobs_live.Change(episode.series.workspace_id, take.job_id)
    assert heard == [[change]] * 5  # each page hears it once
    assert all(take.job_id in listener.heard for listener in listeners)


def test_a_new_listener_gets_what_its_process_heard_since_a_moment_it_can_vouch_for(
    redis_url, episode, openai
):
    """A page's new stream asks what was heard since the page's cursor: from the process's
    subscription when it was up all along since, else None (then the rows are read)."""
    take = TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.QUEUED)
    early = jobs_live.Listener()
    try:
        moment = time.time()
        take.job.move(JobState.RUNNING, progress=5)
        assert early.wait(5.0, gather=0.0)  # the process has heard it
        later = jobs_live.Listener()  # a page opened since
        change = jobs_live.Change(episode.series.workspace_id, take.job_id)
        assert later.since(moment) == [change]
        assert take.job_id in later.heard
        assert later.since(time.time()) == []  # nothing heard since now
        assert later.since(moment - 3600) is None  # before this process was listening
        assert later.wait(0.2) == []  # what `since` gave is not given again
    finally:
        early.close()


def test_a_listener_learns_it_missed_news_when_the_subscription_broke(redis_url):
    import redis

    listener = jobs_live.Listener()
    client = redis.Redis.from_url(redis_url)
    try:
        assert listener.missed()  # the first look reads everything
        assert not listener.missed()
        client.client_kill_filter(_type="pubsub")  # Redis drops the process's subscription
        deadline = time.monotonic() + 5
        while listener.listening and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.missed()  # whatever was announced meanwhile went unheard
        deadline = time.monotonic() + 5
        while not listener.listening and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.listening  # subscribed again by itself
        assert not listener.missed()
    finally:
        listener.close()
        client.close()


def test_a_listener_that_was_never_broken_has_missed_nothing(redis_url):
    listener = jobs_live.Listener()
    try:
        assert listener.missed()  # before the first look, every change is read
        assert not listener.missed()  # subscribed all along since
    finally:
        listener.close()
    assert listener.missed()  # a closed subscription hears nothing


# --- Who may listen ----------------------------------------------------------------------


def test_an_outsider_gets_404_from_the_stream_and_the_poll(live_server, episode, client):
    client.force_login(UserFactory())
    slug = episode.series.workspace.slug
    assert client.get(reverse("episode_events", args=[slug, episode.pk])).status_code == 404
    poll = reverse("episode_statuses", args=[slug, episode.pk])
    assert client.get(poll, {"since": time.time()}).status_code == 404


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(episode, client):
    slug = episode.series.workspace.slug
    for name in ("episode_events", "episode_statuses"):
        response = client.get(reverse(name, args=[slug, episode.pk]))
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


# --- The poll that stands in for the stream ---------------------------------------------


def test_the_poll_answers_the_changed_blocks_and_a_new_cursor(episode, openai, owner_client):
    moving = SceneFactory(episode=episode)
    still = SceneFactory(episode=episode)
    take = TakeFactory(scene=moving, account=openai, state=JobState.QUEUED)
    quiet = TakeFactory(scene=still, account=openai, state=JobState.QUEUED)
    _settled(take, quiet)
    since = time.time() - 60
    _running(take.job, 30)
    url = reverse("episode_statuses", args=[episode.series.workspace.slug, episode.pk])
    response = owner_client.get(url, {"since": since}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.startswith('<span id="live-cursor" hidden data-since="')
    assert f'id="scene-status-{moving.pk}"' in page
    assert f'id="scene-status-{still.pk}"' not in page
    assert 'aria-valuenow="30"' in page
    assert 'data-poll="3"' in page
    assert "no-cache" in response.headers["Cache-Control"]
    cursor = float(page.split('data-since="')[1].split('"')[0])
    assert cursor >= since


def test_the_poll_without_a_cursor_gives_one_and_refuses_a_broken_one(
    episode, openai, owner_client
):
    TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.RUNNING)
    url = reverse("episode_statuses", args=[episode.series.workspace.slug, episode.pk])
    page = owner_client.get(url).content.decode()
    assert page.startswith('<span id="live-cursor" hidden data-since="')
    assert "scene-status" not in page
    assert owner_client.get(url, {"since": "nan"}).status_code == 400
    assert owner_client.get(url, {"since": "soon"}).status_code == 400


# --- The cards ---------------------------------------------------------------------------


def test_cards_take_their_events_instead_of_polling(episode, openai, owner_client):
    scene = SceneFactory(episode=episode)
    TakeFactory(scene=scene, account=openai, state=JobState.RUNNING, job__progress=20)
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    assert "every 1s" not in page
    assert "every 3s" not in page
    assert f'sse-swap="scene-{scene.pk}"' in page
    slug = episode.series.workspace.slug
    events = reverse("episode_events", args=[slug, episode.pk])
    assert f'hx-ext="sse" sse-connect="{events}?since=' in page
    assert "django_htmx/ext/hx-sse-2.min.js" in page
    assert "js/live.js" in page


# --- The engine's announcements ------------------------------------------------------------


def test_announcing_with_redis_away_changes_nothing_for_the_job(redis_url, episode, openai):
    take = TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.QUEUED)
    point_celery_at("redis://127.0.0.1:9/0")  # nothing listens there
    try:
        assert take.job.move(JobState.RUNNING, progress=10)
        assert take.job.move(JobState.DOWNLOADING, progress=100)
    finally:
        point_celery_at(redis_url)
    take.job.refresh_from_db()
    assert (take.job.state, take.job.progress) == (JobState.DOWNLOADING, 100)


def test_a_listener_hears_each_job_that_moved(redis_url, episode, openai):
    first = TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.QUEUED)
    second = TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.QUEUED)
    listener = jobs_live.Listener()
    try:
        assert listener.listening
        first.job.move(JobState.RUNNING, progress=5)
        second.job.move(JobState.CANCELLED)
        heard = []
        deadline = time.monotonic() + 5
        while len(heard) < 2 and time.monotonic() < deadline:
            heard += listener.wait(1.0)
    finally:
        listener.close()
    workspace_id = episode.series.workspace_id
    assert heard == [
        jobs_live.Change(workspace_id, first.job_id),
        jobs_live.Change(workspace_id, second.job_id),
    ]


# --- The header's figures ------------------------------------------------------------------


def _counts_of(html: str) -> str:
    """The header line's words."""
    return html.split(">", 1)[1].rsplit("</p>", 1)[0]


def test_the_header_counts_each_scene_by_the_badge_its_card_shows(episode, openai):
    generating = SceneFactory(episode=episode)
    TakeFactory(scene=generating, account=openai, state=JobState.SUCCEEDED, is_selected=True)
    TakeFactory(scene=generating, account=openai, state=JobState.RUNNING)
    TakeFactory(scene=SceneFactory(episode=episode), account=openai)  # ready to choose
    failed = SceneFactory(episode=episode)
    TakeFactory(scene=failed, account=openai)
    TakeFactory(scene=failed, account=openai, state=JobState.FAILED)  # the latest
    chosen = SceneFactory(episode=episode)
    TakeFactory(scene=chosen, account=openai, is_selected=True)
    SceneFactory(episode=episode)  # no take yet
    with CaptureQueriesContext(connection) as queries:
        counts = storyboard_counts(episode=episode)
    assert len(queries) == 1  # the takes by scene, and the scenes: however many there are
    assert counts == {
        "scene_count": 5,
        "in_flight": 1,
        "ready": 1,
        "failed": 1,
        "missing": 3,
    }
    line = live.counts_line(episode=episode)
    assert line.startswith('<p class="muted small episode-counts" id="episode-counts"')
    assert 'sse-swap="episode-counts"' in line
    assert _counts_of(line) == (
        "5 scenes · 1 generating · 1 ready to choose · 1 failed · 3 without a chosen take"
    )


def test_streams_of_one_process_share_the_header_line_read_after_the_news(episode, openai):
    TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.RUNNING)
    heard = time.monotonic()
    first = live.counts_line(episode=episode, read_after=heard)
    with CaptureQueriesContext(connection) as queries:
        again = live.counts_line(episode=episode, read_after=heard)
    assert len(queries) == 0
    assert again == first
    with CaptureQueriesContext(connection) as queries:
        live.counts_line(episode=episode, read_after=time.monotonic())  # newer news
    assert len(queries) == 1


def test_the_stream_sends_the_header_line_with_the_cards_that_move_it(
    live_server, quick_streams, episode, openai, session
):
    scene = SceneFactory(episode=episode)
    take = TakeFactory(scene=scene, account=openai, state=JobState.QUEUED)
    ready = TakeFactory(scene=SceneFactory(episode=episode), account=openai)
    _settled(take, ready)
    with _stream(live_server, episode, session, since=time.time()) as response:
        events = _events(response)
        assert not [e for e in _listening(events) if e.data]  # nothing changed: no figures
        _running(take.job, 40)
        first = _until(events, "episode-counts", "generating")
        take.job.refresh_from_db()
        assert take.job.move(JobState.FAILED, error_message="The provider refused it.")
        second = _until(events, "episode-counts", "failed")
    assert [e.name for e in first] == [f"scene-{scene.pk}", "episode-counts"]
    assert _counts_of(first[-1].data) == (
        "2 scenes · 1 generating · 1 ready to choose · 1 without a chosen take"
    )
    assert [e.name for e in second] == [f"scene-{scene.pk}", "episode-counts"]
    assert _counts_of(second[-1].data) == (
        "2 scenes · 1 ready to choose · 1 failed · 2 without a chosen take"
    )
    # The same figures again would not be sent: progress moves the card, not the header.


def test_the_poll_brings_the_header_line_with_changed_cards(episode, openai, owner_client):
    take = TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.QUEUED)
    _settled(take)
    url = reverse("episode_statuses", args=[episode.series.workspace.slug, episode.pk])
    quiet = owner_client.get(url, {"since": time.time()}).content.decode()
    assert 'id="episode-counts"' not in quiet
    since = time.time() - 60
    _running(take.job, 30)
    page = owner_client.get(url, {"since": since}).content.decode()
    assert page.endswith("</p>")
    assert _counts_of(page.split('id="episode-counts"')[1]) == "1 scene · 1 generating"


def test_the_storyboard_header_carries_the_live_line(episode, openai, owner_client):
    TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.RUNNING)
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    assert '<p class="muted small episode-counts" id="episode-counts"' in page
    assert "1 scene · 1 generating" in page


# --- What a status block says ----------------------------------------------------------------


def _block(episode, owner, scene) -> str:
    membership = Membership.objects.select_related("workspace").get(
        user=owner, workspace=episode.series.workspace
    )
    blocks = live.status_blocks(
        request=RequestFactory().get("/"),
        membership=membership,
        episode=episode,
        scene_ids=[scene.pk],
    )
    return blocks[scene.pk]


@pytest.fixture
def seedance(workspace):
    return ProviderAccountFactory(workspace=workspace, name="Seedance", kind="seedance", model="")


def _history(account, *seconds: float) -> None:
    """Finished jobs of the account that took these many seconds from submit to finish."""
    finished = timezone.now() - timedelta(minutes=30)
    for took in seconds:
        JobFactory(
            provider_account=account,
            state=JobState.SUCCEEDED,
            submitted_at=finished - timedelta(seconds=took),
            finished_at=finished,
        )


def test_a_silent_providers_take_shows_an_estimate_said_to_be_one(episode, seedance, owner):
    _history(seedance, 100, 100, 100)
    scene = SceneFactory(episode=episode)
    submitted = timezone.now() - timedelta(seconds=40)
    TakeFactory(scene=scene, account=seedance, state=JobState.RUNNING, job__submitted_at=submitted)
    block = _block(episode, owner, scene)
    assert "about 40% (estimate) · about 1 min left" in block
    assert 'aria-valuenow="40"' in block
    assert "progress (estimate)" in block
    assert "Seedance · 0%" not in block  # not the provider's figure, which says nothing
    assert 'data-estimate-typical="100.0"' in block  # the page moves it on


def test_without_history_the_block_says_when_the_take_started(episode, seedance, owner):
    scene = SceneFactory(episode=episode)
    submitted = timezone.now() - timedelta(seconds=150)
    TakeFactory(scene=scene, account=seedance, state=JobState.RUNNING, job__submitted_at=submitted)
    block = _block(episode, owner, scene)
    assert "started 2 min ago" in block
    assert "%" not in block  # no figure made up
    assert "aria-valuenow" not in block  # an indeterminate bar


def test_a_provider_that_reports_progress_shows_its_own_figure(episode, openai, owner):
    scene = SceneFactory(episode=episode)
    submitted = timezone.now() - timedelta(seconds=40)
    TakeFactory(
        scene=scene,
        account=openai,
        state=JobState.RUNNING,
        job__progress=35,
        job__submitted_at=submitted,
    )
    block = _block(episode, owner, scene)
    assert "OpenAI · 35% ·" in block
    assert "estimate" not in block


def test_a_chosen_take_that_was_rejected_says_so_on_its_card(episode, openai, owner):
    scene = SceneFactory(episode=episode)
    take = TakeFactory(
        scene=scene,
        account=openai,
        is_selected=True,
        review_state=Take.Review.REJECTED,
        review_codes=["face", "motion"],
        review_reason="the hands melt",
    )
    block = _block(episode, owner, scene)
    assert f"Take {take.pk} chosen" in block
    assert "Chosen take rejected: Face, Motion artefact (the hands melt)" in block
    TakeFactory(scene=scene, account=openai, state=JobState.RUNNING)  # its replacement
    assert "Chosen take rejected: Face" in _block(episode, owner, scene)
    Take.objects.filter(pk=take.pk).update(review_state=Take.Review.APPROVED)
    assert "Chosen take rejected" not in _block(episode, owner, scene)


def test_a_review_after_the_cursor_counts_as_a_change(episode, openai):
    scene = SceneFactory(episode=episode)
    take = TakeFactory(scene=scene, account=openai, is_selected=True)
    _settled(take)
    since = time.time()
    assert live.scenes_changed_since(episode=episode, since=since) == []
    Take.objects.filter(pk=take.pk).update(
        review_state=Take.Review.REJECTED, reviewed_at=timezone.now()
    )
    assert live.scenes_changed_since(episode=episode, since=since) == [scene.pk]


def test_the_streams_of_a_process_send_their_batches_on_one_beat():
    """Streams that sent at different moments send next at the same one, so the first to
    wake renders what changed and the others reuse it."""
    from studio.views.live import BATCH_SECONDS, _next_tick

    sent = [100.05, 100.9, 101.7]  # three streams' last batches, within one beat
    ticks = {_next_tick(moment) for moment in sent}
    assert ticks == {102.0}
    assert all(0 < tick - moment <= BATCH_SECONDS for moment in sent for tick in ticks)
    assert _next_tick(102.0) == 104.0  # never the moment itself: a batch at most every beat
