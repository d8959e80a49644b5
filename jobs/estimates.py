"""How far along a job probably is when its provider does not say: from how long the
account's recent jobs took.

Some providers report no progress at all (Seedance's tasks are queued, running or done,
and sit at 0% until the video is there); their adapters declare it
(Capabilities.reports_progress). For those, a job's progress is estimated from the time
since it was submitted against the median time from submit to finish of the account's
last RECENT_JOBS finished videos, and said to be an estimate. An account without enough
history gets no made-up figure, only how long ago the job started.

Pages show many cards at once (a storyboard with a hundred in flight), so an account's
pace is read once and kept: in the Django cache, shared by the processes, for
CACHE_SECONDS, and in this process for a few seconds in front of it, so a card costs a
dictionary lookup rather than a query or a cache round trip.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.core.cache import cache
from django.utils import timezone

from jobs.models import Job, JobKind, JobState, ProviderAccount
from jobs.providers import capabilities_of

RECENT_JOBS = 20
# Fewer finished jobs than this say too little about the next one: no figure is made up.
MIN_HISTORY = 3
# An estimate never reads as more than this; past it, "almost done".
ALMOST_DONE = 95
CACHE_SECONDS = 60
_MEMO_SECONDS = 10.0
# A job is estimated only while it is at the provider (its own figure says nothing there);
# before it is sent and once it is downloading, its own state says where it is.
_AT_PROVIDER = (JobState.QUEUED, JobState.RUNNING)
_VIDEO_KINDS = (JobKind.GENERATE, JobKind.REMIX, JobKind.EXTEND)


@dataclass(frozen=True, slots=True)
class Pace:
    """What an account's jobs say about the next one: whether its provider reports progress
    itself, and the median seconds from submit to finish (None: not enough history)."""

    reports_progress: bool
    typical: float | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """An estimated progress, as a card shows it."""

    percent: int | None  # for the bar; None when unknown (no history)
    text: str  # "about 40% (estimate) · about 1 min left", or "started 2 min ago"
    elapsed: float  # seconds since the job was submitted
    typical: float | None  # the account's median seconds from submit to finish

    @property
    def estimated(self) -> bool:
        return self.percent is not None


class InFlightJob(Protocol):
    """What an estimate reads of a job (jobs.models.Job has it, and so do lighter rows)."""

    state: str
    provider_account_id: int | None
    submitted_at: datetime | None


def progress_of(job: InFlightJob, *, now: datetime | None = None) -> Progress | None:
    """The job's estimated progress, or None where its own figure is the one to show (its
    provider reports progress, or the job is not at the provider)."""
    if job.state not in _AT_PROVIDER or job.submitted_at is None or not job.provider_account_id:
        return None
    pace = account_pace(job.provider_account_id)
    if pace.reports_progress:
        return None
    elapsed = max(0.0, ((now or timezone.now()) - job.submitted_at).total_seconds())
    return estimate(elapsed=elapsed, typical=pace.typical)


def estimate(*, elapsed: float, typical: float | None) -> Progress:
    """The progress of a job submitted `elapsed` seconds ago whose like take `typical`
    seconds (static/js/live.js words it the same way as time passes)."""
    if not typical:
        return Progress(None, f"started {_ago(elapsed)}", elapsed, typical)
    percent = math.floor(elapsed / typical * 100)
    if percent >= ALMOST_DONE:
        return Progress(ALMOST_DONE, "almost done (estimate)", elapsed, typical)
    percent = max(percent, 1)  # under way: a bar that has begun
    text = f"about {percent}% (estimate) · {_left(typical - elapsed)}"
    return Progress(percent, text, elapsed, typical)


def _ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "under a minute ago"
    if minutes < 60:
        return f"{minutes} min ago"
    return f"{minutes // 60} h {minutes % 60} min ago"


def _left(seconds: float) -> str:
    minutes = round(seconds / 60)
    return "under a minute left" if minutes < 1 else f"about {minutes} min left"


# account id -> (monotonic time it is good until, its pace)
_memo: dict[int, tuple[float, Pace]] = {}
_memo_lock = threading.Lock()
_generation = 0  # part of the cache key: forget() makes every kept pace unreachable


def account_pace(account_id: int) -> Pace:
    """The account's pace, from this process's memo, the cache, or (at most once a
    CACHE_SECONDS per account) the rows."""
    kept = _memo.get(account_id)
    if kept is not None and kept[0] > time.monotonic():
        return kept[1]
    key = f"jobs:pace:{_generation}:{account_id}"
    cached = cache.get(key)
    if cached is None:
        cached = _read_pace(account_id)
        cache.set(key, cached, CACHE_SECONDS)
    pace = Pace(*cached)
    with _memo_lock:
        _memo[account_id] = (time.monotonic() + _MEMO_SECONDS, pace)
    return pace


def _read_pace(account_id: int) -> tuple[bool, float | None]:
    """(reports progress, median seconds) from the rows: the account's kind, and if its
    provider says nothing of progress, its last RECENT_JOBS finished videos."""
    account = ProviderAccount.objects.filter(pk=account_id).values_list("kind", "model").first()
    if account is None:
        return (True, None)  # nothing to estimate for
    try:
        reports = capabilities_of(*account).reports_progress
    except KeyError:  # a kind no adapter handles any more
        reports = True
    if reports:
        return (True, None)
    rows = (
        Job.objects.filter(
            provider_account_id=account_id,
            kind__in=_VIDEO_KINDS,
            state=JobState.SUCCEEDED,
            submitted_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("submitted_at", "finished_at")[:RECENT_JOBS]
    )
    durations = [(finished - submitted).total_seconds() for submitted, finished in rows]
    durations = [seconds for seconds in durations if seconds > 0]
    if len(durations) < MIN_HISTORY:
        return (False, None)
    return (False, float(statistics.median(durations)))


def forget() -> None:
    """Drop every kept pace (a test database's ids come back)."""
    global _generation  # a process-wide counter, bumped only here
    with _memo_lock:
        _memo.clear()
        _generation += 1
