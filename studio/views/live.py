"""A storyboard's live progress: one event stream per open page, and the poll that stands in
for it where a browser (or a proxy) cannot keep a stream open.

The stream wakes when the engine announces a change to one of the workspace's jobs (Redis
pub/sub, jobs.live), and every LIVE_RESYNC_SECONDS whatever it heard, to read what changed
since its cursor (studio.live): an announcement lost only delays a card. It sends one
event per changed scene, named `scene-<id>`, whose data is the scene's status block (each
card's block swaps in the event named for it), with each batch of them the episode's header
line (`episode-counts`) when its figures moved, and ends after LIVE_STREAM_SECONDS so that
server threads are recycled; the browser reconnects by itself and sends the last cursor
back as Last-Event-ID, so nothing is missed between two streams. A stream with nothing to
send for LIVE_HEARTBEAT_SECONDS writes a comment line: a browser that has left is noticed
only when a write to it fails, and its stream then ends.

A stream holds one server thread for as long as it is open (a sync generator: it runs
under runserver, gunicorn's gthread workers and the test server alike).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import close_old_connections
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.views.decorators.http import require_GET

from jobs.compiled import Compiled
from jobs.live import Listener
from studio import live
from studio.access import episode_for, membership_for
from studio.http import HtmxHttpRequest
from studio.models import Episode, Membership

# How long the browser waits before reconnecting once a stream has ended.
RECONNECT_MS = 1000
# Announcements that arrive within this long of the first are answered together, and a
# stream sends at most one batch of them in this long: a board mid-generation hears of every
# job's progress about once a second (each poll of each job), and a card's bar moving every
# two seconds reads as live while halving what 50 open pages cost the server
# (benchmarks/load.py).
GATHER_SECONDS = 0.2
BATCH_SECONDS = 2.0
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what the event-stream format splits lines on


def _event(name: str, data: str, cursor: float) -> str:
    """One server-sent event; each line of the data on its own `data:` line."""
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return f"event: {name}\nid: {cursor}\n{lines}\n"


def _next_tick(after: float) -> float:
    """The first moment of the process-wide beat of BATCH_SECONDS later than `after` (a
    time.monotonic() value). A process's streams send their batches on the same beat, so
    that the first to wake reads and renders what changed and the others reuse it: woken
    each at its own moment, every stream read its own (what 50 open pages cost the web
    server was mostly that)."""
    return (math.floor(after / BATCH_SECONDS) + 1) * BATCH_SECONDS


def _still_member(membership: Membership, episode: Episode) -> Membership | None:
    """The membership as it is now (its role may have changed), or None if the member or the
    episode has gone: the stream then ends, and reconnecting gets a 404."""
    return _membership_of_episode.first(pk=membership.pk, episode_id=episode.pk)


# Each open board's stream reads it every LIVE_RESYNC_SECONDS: compiled once per process.
_membership_of_episode = Compiled(
    lambda pk, episode_id: (
        Membership.objects.select_related("workspace")
        .filter(pk=pk, workspace__series__episodes=episode_id)
        .order_by("pk")[:1]
    )
)


def _events(
    request: HtmxHttpRequest, membership: Membership, episode: Episode, cursor: float
) -> Iterator[str]:
    # Streams opened together (a deploy, a network blip) should not all end together.
    lifetime = settings.LIVE_STREAM_SECONDS * random.uniform(0.85, 1.0)  # noqa: S311 - not a secret
    ends = time.monotonic() + lifetime
    resync_every = settings.LIVE_RESYNC_SECONDS
    quiet_limit = settings.LIVE_HEARTBEAT_SECONDS
    listener = Listener()
    sent: dict[int, int] = {}  # scene id -> hash of the block last sent (nothing twice)
    counts_sent = ""  # the header line last sent
    workspace_id = membership.workspace_id
    try:
        yield f"retry: {RECONNECT_MS}\n: live\n\n"
        wrote_at = time.monotonic()
        resync_at = batch_at = 0.0  # at once: what changed since the page's cursor
        heard: dict[int, float] = {}  # of the jobs of this workspace in the last batch
        while True:
            # A scene's block another stream of this process read after that scene's news
            # arrived is as fresh as one read now.
            news = live.scene_news(episode=episode, heard=heard) if heard else {}
            resynced = time.monotonic() >= resync_at
            if resynced:
                first = not resync_at
                if not first:  # (the view has just checked it for the first)
                    current = _still_member(membership, episode)
                    if current is None:
                        return
                    membership = current
                looked, before = live.cursor_now(), time.monotonic()
                # Jobs' changes come announced while the subscription holds; after a break
                # in it, every change since the cursor is read. At the start, what this
                # process heard since the cursor (less the rows' lag, for other machines'
                # clocks) when it can vouch for it: those blocks are mostly read already.
                missed = listener.missed()
                vouched = listener.since(cursor - live.LAG_SECONDS) if first else None
                if vouched is not None:
                    missed = False
                    mine = {c.job_id for c in vouched if c.workspace_id == workspace_id}
                    news = live.scene_news(
                        episode=episode, heard={job: listener.heard[job] for job in mine}
                    )
                changed = live.scenes_changed_at(episode=episode, since=cursor, jobs=missed)
                # What the rows say changed needs a block read after they were read, or
                # after its change had surely committed (one another stream read then is as
                # good), and what was just heard of too.
                for scene_id, committed in changed.items():
                    news[scene_id] = max(news.get(scene_id, 0.0), min(before, committed))
                cursor = looked
                # Off the beat: the streams' resyncs each read the rows, and 25 of them at
                # once held up the pages served meanwhile (benchmarks/load.py).
                resync_at = time.monotonic() + resync_every
                heartbeat = f": {cursor}\nid: {cursor}\n\n"  # keeps proxies and the cursor fresh
            elif time.monotonic() - wrote_at >= quiet_limit:
                heartbeat = ": quiet\n\n"  # fails if the browser has left: the stream ends
            else:
                heartbeat = ""
            scene_ids, read_after = sorted(news), news
            newest = max(news.values(), default=0.0)
            # The pool's connection goes back while this stream may wait for another one
            # to render what it needs (16 a process, and 25 streams waking at once held
            # them all while pages waited).
            close_old_connections()
            blocks = live.status_blocks(
                request=request,
                membership=membership,
                episode=episode,
                scene_ids=scene_ids,
                read_after=read_after,
            )
            chunk = []
            for scene_id, block in blocks.items():
                if sent.get(scene_id) != (signature := hash(block)):
                    sent[scene_id] = signature
                    chunk.append(_event(f"scene-{scene_id}", block, cursor))
            if chunk:  # only a card's change moves the header's figures
                counts = live.counts_line(episode=episode, read_after=newest)
                if counts != counts_sent:
                    counts_sent = counts
                    chunk.append(_event("episode-counts", counts, cursor))
            close_old_connections()  # between batches the thread holds no connection it needs not
            if chunk or heartbeat:
                wrote_at = time.monotonic()
                if chunk or resynced:
                    batch_at = wrote_at
                yield "".join(chunk) + heartbeat
            if time.monotonic() >= ends:
                return
            changes = listener.wait(
                min(resync_at, ends, wrote_at + quiet_limit) - time.monotonic(),
                gather=GATHER_SECONDS,
                not_before=_next_tick(batch_at),
            )
            # News of other workspaces is dropped unread (it reads nothing: no job ids).
            mine = {c.job_id for c in changes if c.workspace_id == workspace_id}
            heard = {job_id: listener.heard[job_id] for job_id in mine}
    finally:
        listener.close()
        close_old_connections()


@login_required
@require_GET
def episode_events(request: HtmxHttpRequest, slug: str, episode_id: int) -> StreamingHttpResponse:
    """The storyboard's event stream (text/event-stream); `since` (or Last-Event-ID, which
    the browser sends when it reconnects) is the cursor to catch up from."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    cursor = (
        live.parse_cursor(request.headers.get("Last-Event-ID"))
        or live.parse_cursor(request.GET.get("since"))
        or live.cursor_now()
    )
    response = StreamingHttpResponse(
        _events(request, membership, episode, cursor), content_type="text/event-stream"
    )
    add_never_cache_headers(response)
    response["X-Accel-Buffering"] = "no"  # nginx and its kin: pass each event on at once
    return response


@login_required
@require_GET
def episode_statuses(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """The fallback poll: the status blocks that changed since `since`, after the new cursor
    (an empty element whose data the page sends back next time), and with any the episode's
    header line.

    Not out-of-band swaps: on a long board the page holds only the cards it has loaded, and
    htmx reports every out-of-band block without a place as an error; the page's script
    swaps in those it has (static/js/live.js)."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    looked = live.cursor_now()
    scene_ids = []
    if "since" in request.GET:  # without one, only a cursor to start from
        since = live.parse_cursor(request.GET["since"])
        if since is None:
            return HttpResponse("`since` is the cursor of a previous answer.", status=400)
        scene_ids = live.scenes_changed_since(episode=episode, since=since)
    blocks = live.status_blocks(
        request=request, membership=membership, episode=episode, scene_ids=scene_ids
    )
    cursor = format_html(
        '<span id="live-cursor" hidden data-since="{}" data-poll="{}"></span>',
        looked,
        settings.LIVE_POLL_SECONDS,
    )
    counts = live.counts_line(episode=episode) if blocks else ""
    response = HttpResponse(cursor + "".join(blocks.values()) + counts)
    add_never_cache_headers(response)
    return response
