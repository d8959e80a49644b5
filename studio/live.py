"""Reads for live storyboards: which scenes' status changed, their status blocks, and the
episode's header figures.

A page keeps a cursor: the time (seconds since the epoch) it last looked. What changed
since is read from the rows (a take's job moved, a take was made or reviewed, a score was
started or finished), in a constant number of queries however long the episode. The engine's
announcements (jobs.live) only say when to look sooner.

Rows carry the time a process stamped them, which commits a little later (and several
machines' clocks differ a little): every look reaches back LAG before its cursor. A scene
may so come twice; its block is the same, and swapping it in again changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from django.db.models import Q
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template import engines
from django.template.loader import render_to_string
from django.utils.html import format_html
from markupsafe import Markup

from jobs import estimates
from jobs.compiled import Compiled
from studio.cards import CardKit
from studio.http import JINJA
from studio.models import Episode, Membership, ReviewReason, Take
from studio.storyboard import storyboard_counts, storyboard_statuses

LAG_SECONDS = 3.0
LAG = timedelta(seconds=LAG_SECONDS)
# When a reader heard its news: one moment for all the scenes it asks for, or one per scene.
ReadAfter = float | Mapping[int, float]
STATUS_TEMPLATE = "studio/storyboard/scene_status.html"
COUNTS_TEMPLATE = "studio/storyboard/episode_counts.html"
# Cursors older than this are read as this old: a page left open for a week and woken up
# gets the last hour's changes (what it shows of older ones is a reload away), not a scan.
_OLDEST = timedelta(hours=1)


def cursor_now() -> float:
    """A cursor for "now" (take it before reading, so nothing read is newer than it)."""
    return round(time.time(), 3)


def parse_cursor(text: str | None) -> float | None:
    """A cursor as a page sends it back (`since`, Last-Event-ID), or None when unreadable."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if 0 < value < 1e11 else None  # finite and plausible (no nan, no inf)


def _moment(cursor: float) -> datetime:
    moment = datetime.fromtimestamp(cursor, tz=UTC) - LAG
    return max(moment, datetime.now(tz=UTC) - _OLDEST)


def scenes_changed_since(*, episode: Episode, since: float, jobs: bool = True) -> list[int]:
    """Ids of the episode's scenes whose status may have changed since the cursor (one query):
    a take made, reviewed or scored, or its job moved.

    `jobs=False` leaves out changes of jobs, for a reader that heard every one announced
    (a board mid-generation has a hundred jobs moving: re-reading them all at every look
    was most of a stream's work); takes made and scores started or finished still count."""
    return sorted(scenes_changed_at(episode=episode, since=since, jobs=jobs))


def scenes_changed_at(*, episode: Episode, since: float, jobs: bool = True) -> dict[int, float]:
    """As `scenes_changed_since`, each scene with the moment (a time.monotonic() value) after
    which a block read from the rows shows its newest change: that change's stamp plus the
    lag a commit may take (one query)."""
    rows = _changed_takes(episode_id=episode.pk, moment=_moment(since), jobs=jobs)
    newest: dict[int, datetime] = {}
    for scene_id, *when in rows:
        latest = max(stamp for stamp in when if stamp is not None)
        if scene_id not in newest or latest > newest[scene_id]:
            newest[scene_id] = latest
    # The wall clock's moment on the monotonic clock (the blocks' reads are stamped on it).
    offset = time.monotonic() - time.time()
    return {scene_id: (stamp + LAG).timestamp() + offset for scene_id, stamp in newest.items()}


def _takes_changed_since(episode_id: int, moment: datetime, jobs: bool):
    changed = (
        Q(created_at__gt=moment)
        | Q(reviewed_at__gt=moment)
        | Q(score__created_at__gt=moment)
        | Q(score__scored_at__gt=moment)
    )
    stamps = ["created_at", "reviewed_at", "score__created_at", "score__scored_at"]
    if jobs:
        changed |= Q(job__updated_at__gt=moment)
        stamps.append("job__updated_at")
    return Take.objects.filter(changed, scene__episode_id=episode_id).values_list(
        "scene_id", *stamps
    )


# Each open board's stream reads it every LIVE_RESYNC_SECONDS: compiled once per process.
_changed_takes = Compiled(_takes_changed_since)


# job id -> (episode id, scene id) of its take, or None for a job of no take: a job's take
# never moves, so this process reads each job's once, not once per stream per batch.
_scene_of_job: dict[int, tuple[int, int] | None] = {}
_SCENES_KEPT = 100_000


def _scenes_by_job(job_ids: Iterable[int]) -> dict[int, tuple[int, int] | None]:
    """Each job's (episode id, scene id), or None for a job of no take (one query, for the
    jobs this process has not looked up before)."""
    job_ids = set(job_ids)
    unknown = [job_id for job_id in job_ids if job_id not in _scene_of_job]
    if unknown:
        if len(_scene_of_job) > _SCENES_KEPT:
            _scene_of_job.clear()  # a crude bound: a miss costs a query
        found = dict.fromkeys(unknown)
        rows = Take.objects.filter(job_id__in=unknown).values_list(
            "job_id", "scene__episode_id", "scene_id"
        )
        for job_id, episode_id, scene_id in rows:
            found[job_id] = (episode_id, scene_id)
        _scene_of_job.update(found)
    return {job_id: _scene_of_job.get(job_id) for job_id in job_ids}


def scenes_of_jobs(*, episode: Episode, job_ids: Iterable[int]) -> list[int]:
    """Ids of the episode's scenes that have a take made by one of these jobs (one query,
    for the jobs this process has not looked up before)."""
    return sorted(scene_news(episode=episode, heard=dict.fromkeys(job_ids, 0.0)))


def scene_news(*, episode: Episode, heard: dict[int, float]) -> dict[int, float]:
    """The episode's scenes that have a take made by one of these jobs, each with when the
    newest news of its jobs was heard (`heard`: job id -> a time.monotonic() value)."""
    news: dict[int, float] = {}
    for job_id, place in _scenes_by_job(heard).items():
        if place is not None and place[0] == episode.pk:
            news[place[1]] = max(news.get(place[1], 0.0), heard[job_id])
    return news


# The CSRF field is the one part of a block that is the viewer's own: blocks are rendered
# once with this in its place, and each stream puts in its viewer's field.
_CSRF_PLACEHOLDER = "\x00csrf\x00"


class _RenderedBlocks:
    """Status blocks this process rendered, shared by its streams.

    Every open page of a board mid-generation hears of the same changes: without this,
    each of 50 streams read and rendered every changed scene itself (most of the web
    server's time under benchmarks/load.py). A block is reused only by a stream that
    needs one read after a moment the block was read after (the change it heard was
    committed before it was announced), so a reused block is never older than the news.
    """

    def __init__(self, *, keep: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[tuple[int, bool], tuple[float, str]] = {}
        self._keep = keep
        self.rendering = threading.Lock()  # held by the one stream reading what is missing

    def take(
        self, scene_ids: list[int], *, can_edit: bool, read_after: ReadAfter
    ) -> tuple[dict[int, str], list[int]]:
        """(the blocks read after `read_after` (one moment, or one per scene id), by scene
        id; the scene ids without one)."""
        found, missing = {}, []
        with self._lock:
            for scene_id in scene_ids:
                entry = self._blocks.get((scene_id, can_edit))
                moment = read_after if isinstance(read_after, float) else read_after[scene_id]
                if entry is not None and entry[0] >= moment:
                    found[scene_id] = entry[1]
                else:
                    missing.append(scene_id)
        return found, missing

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()

    def keep(self, key: tuple[int, bool], *, read_at: float, block: str) -> None:
        with self._lock:
            if len(self._blocks) >= self._keep:
                self._blocks.clear()  # a crude bound: a miss costs one render
            self._blocks[key] = (read_at, block)


_rendered = _RenderedBlocks()


def forget() -> None:
    """Drop what this process keeps of jobs, blocks, counts and accounts' paces (a test
    database's ids come back)."""
    _scene_of_job.clear()
    _rendered.clear()
    with _counting:
        _counts.clear()
    estimates.forget()


def status_blocks(
    *,
    request: HttpRequest,
    membership: Membership,
    episode: Episode,
    scene_ids: Iterable[int],
    read_after: ReadAfter | None = None,
) -> dict[int, str]:
    """Each scene's status block as its card shows it, by scene id in the order of
    `scene_ids` (scenes deleted meanwhile are left out).

    With `read_after` (a time.monotonic() value, or one per scene id: when its news was
    heard), a block this process read from the rows after that moment is reused rather
    than read and rendered again. Per scene, a stream reuses what another stream read
    after that scene's news, whatever else it heard of since."""
    scene_ids = list(scene_ids)
    if not scene_ids:
        return {}
    can_edit = bool(membership.can_edit)
    if read_after is None:
        blocks = _render(membership, episode, scene_ids)
    else:
        blocks, missing = _rendered.take(scene_ids, can_edit=can_edit, read_after=read_after)
        if missing:
            # One stream at a time reads what is missing: the streams of a process all wake
            # on the same news at once, and those that come second find it rendered.
            with _rendered.rendering:
                found, missing = _rendered.take(missing, can_edit=can_edit, read_after=read_after)
                blocks |= found
                if missing:
                    blocks |= _render(membership, episode, missing)
    field = format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
    )
    order = {scene_id: index for index, scene_id in enumerate(scene_ids)}
    present = sorted(blocks.items(), key=lambda item: order[item[0]])
    return {scene_id: block.replace(_CSRF_PLACEHOLDER, field) for scene_id, block in present}


def _render(membership: Membership, episode: Episode, scene_ids: list[int]) -> dict[int, str]:
    """The scenes' blocks read from the rows now (kept for other streams), the CSRF field
    left as a placeholder."""
    can_edit = bool(membership.can_edit)
    blocks: dict[int, str] = {}
    if scene_ids:
        template = engines[JINJA].get_template(STATUS_TEMPLATE)
        kit = CardKit(membership.workspace.slug)
        read_at = time.monotonic()
        csrf = Markup(_CSRF_PLACEHOLDER)  # noqa: S704 - our own constant, no user text
        for scene in storyboard_statuses(episode=episode, scene_ids=scene_ids):
            context = {
                "membership": membership,
                "scene": scene,
                "links": kit.links(scene),
                "csrf_input": csrf,
            }
            html = template.render(context)  # no request: nothing of the viewer's in it
            # The template's blank lines are most of a block's bytes, sent once per change
            # per page.
            block = "\n".join(line for line in html.splitlines() if line.strip())
            _rendered.keep((scene.pk, can_edit), read_at=read_at, block=block)
            blocks[scene.pk] = block
    return blocks


# --- The episode's header figures ----------------------------------------------------------


# episode id -> (time.monotonic() it was read at, its header line): like the blocks, read
# once for all of a process's streams that heard the same news.
_counts: dict[int, tuple[float, str]] = {}
_counting = threading.Lock()
_COUNTS_KEPT = 10_000


def counts_line(*, episode: Episode, read_after: float | None = None) -> str:
    """The episode's header line (its figures, rendered), read from the rows now or, with
    `read_after` (a time.monotonic() value), one this process read after that moment."""
    if read_after is not None and (kept := _counts.get(episode.pk)) and kept[0] >= read_after:
        return kept[1]
    with _counting:  # one stream reads; those that wake on the same news reuse it
        if read_after is not None and (kept := _counts.get(episode.pk)) and kept[0] >= read_after:
            return kept[1]
        read_at = time.monotonic()
        line = render_to_string(COUNTS_TEMPLATE, storyboard_counts(episode=episode)).strip()
        if len(_counts) >= _COUNTS_KEPT:
            _counts.clear()  # a crude bound: a miss costs a query
        _counts[episode.pk] = (read_at, line)
        return line


# --- What a status block asks of its takes ---------------------------------------------------


def take_estimate(job: object) -> estimates.Progress | None:
    """The estimated progress of an in-flight take's job whose provider reports none, or
    None where its own figure is the one to show (jobs.estimates)."""
    if not hasattr(job, "submitted_at"):  # a card row without the times (no estimate)
        return None
    return estimates.progress_of(job)  # type: ignore[arg-type]


def rejection_reason(take: object) -> str:
    """Why a reviewer rejected the take, in words: its reasons' labels, then what the
    reviewer wrote ("Face, Motion artefact (the hands melt)"); "" when nothing was given."""
    labels = dict(ReviewReason.choices)
    codes = [labels.get(code, code) for code in getattr(take, "review_codes", None) or ()]
    words = getattr(take, "review_reason", "") or ""
    if codes and words:
        return f"{', '.join(codes)} ({words})"
    return ", ".join(codes) or words
