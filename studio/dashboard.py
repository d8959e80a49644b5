"""The workspace dashboard's reads: takes in progress, awaiting review and failed, this
month's spend against the budget, and a feed of recent activity.

Every read is a fixed number of queries whatever the amount of work (each list is cut in
SQL), scoped to one workspace through the scene's series, as studio.access.take_for is.
Money is counted the way jobs.ledger counts it, through studio.costs' budget lines.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from characters.models import Character
from jobs.ledger import WORKSPACE, current_period
from jobs.models import TERMINAL_STATES, Budget, Job, JobState, LedgerEntry
from studio import charts
from studio.costs import BudgetLine, Committed
from studio.models import Episode, Scene, Series, Take, Workspace

ZERO = Decimal("0")
IN_PROGRESS_ID = "in-progress"  # the polling block's id: htmx names it in HX-Target
IN_PROGRESS_SHOWN = 12
AWAITING_SHOWN = 8
FAILURES_SHOWN = 10
FAILURE_DAYS = 14
ACTIVITY_SHOWN = 15


def ago(moment: datetime.datetime, now: datetime.datetime) -> str:
    """How long ago, in words: 3 minutes ago, 2 hours ago; just now under a minute."""
    if now - moment < datetime.timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment, now, depth=1)} ago"


def scene_label(scene: Scene) -> str:
    """The scene by number and title (S3 · The lamp), or by number alone when untitled."""
    return f"S{scene.number} · {scene.title}" if scene.title else f"S{scene.number}"


def take_url(take: Take, *, slug: str) -> str:
    """The take's card on its scene's page (where it is retried, selected, reviewed)."""
    return f"{reverse('scene_detail', args=[slug, take.scene_id])}#take-{take.pk}"


def failure_reason(job: Job) -> str:
    """Why a job failed, in the provider's or the engine's plain words."""
    return job.error_message or job.get_error_code_display() or "The provider gave no reason."


def _who(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else ""


def _takes(workspace: Workspace) -> QuerySet[Take]:
    return Take.objects.filter(scene__episode__series__workspace=workspace).select_related(
        "job__provider_account", "scene__episode__series"
    )


# --- Takes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkTake:
    """A take as the dashboard lists it: where it belongs, and a link to it on its scene."""

    take: Take
    now: datetime.datetime
    slug: str  # the workspace's, for the links

    @property
    def job(self) -> Job:
        return self.take.job

    @property
    def scene_label(self) -> str:
        return scene_label(self.take.scene)

    @property
    def where(self) -> str:
        """Its episode and series: Episode 2: Night watch · Harbour Lights."""
        episode = self.take.scene.episode
        return f"Episode {episode.number}: {episode.title} · {episode.series.title}"

    @property
    def url(self) -> str:
        """The scene's page, scrolled to the take's card (where it can be retried or reviewed)."""
        return take_url(self.take, slug=self.slug)

    @property
    def running_for(self) -> str:
        """How long since it was asked for: "3 minutes"."""
        if self.now - self.take.created_at < datetime.timedelta(minutes=1):
            return "under a minute"
        return timesince(self.take.created_at, self.now, depth=1)

    @property
    def finished_ago(self) -> str:
        finished = self.job.finished_at
        return ago(finished, self.now) if finished else ""

    @property
    def reason(self) -> str:
        return failure_reason(self.job)


def _ended_counts(workspace: Workspace, *, since: datetime.datetime) -> dict[str, int]:
    """How many takes await review and how many failed since `since`, in one query."""
    return Take.objects.filter(scene__episode__series__workspace=workspace).aggregate(
        awaiting=Count(
            "pk", filter=Q(job__state=JobState.SUCCEEDED, review_state=Take.Review.PENDING)
        ),
        failures=Count("pk", filter=Q(job__state=JobState.FAILED, job__finished_at__gte=since)),
    )


@dataclass(frozen=True)
class Listing:
    """The first takes of a section, and how many there are in all."""

    takes: list[WorkTake]
    count: int

    @property
    def more(self) -> int:
        return self.count - len(self.takes)


@dataclass(frozen=True)
class InProgress(Listing):
    """The newest takes whose job has not finished."""

    @property
    def shown_ids(self) -> str:
        """The ids shown, for the poll to say what it had (so the page knows what ended)."""
        return ",".join(str(work.take.pk) for work in self.takes)

    def moved_on(self, *, shown: set[int]) -> bool:
        """Whether a take the page showed has left this list (it ended, or newer ones came)."""
        return bool(shown - {work.take.pk for work in self.takes})


def in_progress(workspace: Workspace, *, now: datetime.datetime) -> InProgress:
    """Takes still waiting, sending, queued, generating, downloading or being checked."""
    unfinished = _takes(workspace).exclude(job__state__in=TERMINAL_STATES)
    rows = unfinished.order_by("-created_at", "-pk")[:IN_PROGRESS_SHOWN]
    return InProgress([WorkTake(take, now, workspace.slug) for take in rows], unfinished.count())


def awaiting_review(workspace: Workspace, *, now: datetime.datetime, count: int) -> Listing:
    """Finished takes nobody has reviewed yet, the most recently finished first."""
    takes = (
        _takes(workspace)
        .filter(job__state=JobState.SUCCEEDED, review_state=Take.Review.PENDING)
        .order_by(F("job__finished_at").desc(nulls_last=True), "-pk")
    )
    return Listing([WorkTake(take, now, workspace.slug) for take in takes[:AWAITING_SHOWN]], count)


def recent_failures(
    workspace: Workspace, *, now: datetime.datetime, since: datetime.datetime, count: int
) -> Listing:
    """Takes that failed since `since`, newest first, each marked when its scene has had a
    take since (a retry or a new generation), so what still needs someone stands out."""
    newer = Take.objects.filter(scene=OuterRef("scene"), created_at__gt=OuterRef("created_at"))
    takes = (
        _takes(workspace)
        .filter(job__state=JobState.FAILED, job__finished_at__gte=since)
        .annotate(tried_again=Exists(newer))
        .order_by("-job__finished_at", "-pk")
    )
    return Listing([WorkTake(take, now, workspace.slug) for take in takes[:FAILURES_SHOWN]], count)


# --- Spend ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthSpend:
    """This month's spend: the workspace's budget line (cap or none), and charges by account."""

    budget: BudgetLine
    by_account: list[tuple[str, Decimal]]
    chart: charts.Chart | None
    month: str  # "July 2025"

    @property
    def charged(self) -> Decimal:
        return self.budget.committed.charged

    @property
    def reserved(self) -> Decimal:
        return self.budget.committed.reserved


def month_spend(workspace: Workspace) -> MonthSpend:
    """What the workspace committed this month (the sum jobs.ledger.committed takes for the
    workspace's budget), split into charges and open reservations, in two queries."""
    period = current_period()
    reserve, release, charge = (
        LedgerEntry.Kind.RESERVE,
        LedgerEntry.Kind.RELEASE,
        LedgerEntry.Kind.CHARGE,
    )
    rows = (
        LedgerEntry.objects.filter(workspace=workspace, period=period)
        .values("provider_account_id", "provider_account__name")
        .annotate(
            reserved=Sum("amount", filter=Q(kind=reserve)),
            released=Sum("amount", filter=Q(kind=release)),
            charged=Sum("amount", filter=Q(kind=charge)),
            charges=Count("pk", filter=Q(kind=charge)),
        )
        .order_by()
    )
    committed = Committed()
    by_account = []
    for row in rows:
        committed += Committed(
            charged=row["charged"] or ZERO,
            reserved=(row["reserved"] or ZERO) - (row["released"] or ZERO),
        )
        if row["charges"]:
            by_account.append((row["provider_account__name"], row["charged"] or ZERO))
    by_account.sort(key=lambda line: (-line[1], line[0]))
    budget = Budget.objects.filter(workspace=workspace, scope=WORKSPACE).first()
    line = BudgetLine(WORKSPACE, "This workspace", budget, committed)
    month = timezone.localdate().strftime("%B %Y")
    chart = None
    if any(amount for _, amount in by_account):
        chart = charts.rows(
            "dashboard-spend-chart",
            title=f"Charged in {month}, by provider account",
            bars=by_account,
        )
    return MonthSpend(line, by_account, chart, month)


# --- Activity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One line of the feed: "{who} {before} <a>{subject}</a> {after}", and when."""

    at: datetime.datetime
    kind: str  # started, finished, failed, cancelled, approved, rejected, character, ...
    subject: str
    url: str
    who: str = ""
    before: str = ""
    after: str = ""
    ago: str = ""  # filled in once the feed is cut


def _take_subject(take: Take, *, capital: bool) -> str:
    return f"{'T' if capital else 't'}ake {take.pk} of {scene_label(take.scene)}"


def _take_events(workspace: Workspace) -> list[Event]:
    """Takes started, ended (finished, failed, cancelled) and reviewed: three queries."""
    events = []
    started = _takes(workspace).select_related("created_by").order_by("-created_at", "-pk")
    for take in started[:ACTIVITY_SHOWN]:
        who = _who(take.created_by)
        events.append(
            Event(
                take.created_at,
                "started",
                _take_subject(take, capital=not who),
                take_url(take, slug=workspace.slug),
                who=who,
                before="started" if who else "",
                after=f"at {take.job.provider_account.name}" if who else "was started",
            )
        )
    ended = (
        _takes(workspace)
        .filter(job__state__in=TERMINAL_STATES, job__finished_at__isnull=False)
        .order_by("-job__finished_at", "-pk")
    )
    for take in ended[:ACTIVITY_SHOWN]:
        job = take.job
        if job.state == JobState.SUCCEEDED:
            kind = "finished"
            # A take's selection keeps no time of its own: it is told with its finishing.
            after = "finished; it is the scene's selected take" if take.is_selected else "finished"
        elif job.state == JobState.FAILED:
            kind, after = "failed", f"failed: {failure_reason(job)}"
        else:
            kind, after = "cancelled", "was cancelled"
        subject = _take_subject(take, capital=True)
        events.append(
            Event(job.finished_at, kind, subject, take_url(take, slug=workspace.slug), after=after)
        )
    reviewed = (
        _takes(workspace)
        .filter(reviewed_at__isnull=False)
        .exclude(review_state=Take.Review.PENDING)
        .select_related("reviewed_by")
        .order_by("-reviewed_at", "-pk")
    )
    for take in reviewed[:ACTIVITY_SHOWN]:
        who = _who(take.reviewed_by)
        verb = "approved" if take.review_state == Take.Review.APPROVED else "rejected"
        after = f"({take.review_reason})" if take.review_reason else ""
        events.append(
            Event(
                take.reviewed_at,
                verb,
                _take_subject(take, capital=not who),
                take_url(take, slug=workspace.slug),
                who=who,
                before=verb if who else "",
                after=after if who else f"was {verb} {after}".strip(),
            )
        )
    return events


def _library_events(workspace: Workspace) -> list[Event]:
    """Characters added, series and episodes created: three queries."""
    slug = workspace.slug
    events = []
    characters = (
        Character.objects.filter(workspace=workspace)
        .select_related("created_by")
        .order_by("-created_at", "-pk")
    )
    for character in characters[:ACTIVITY_SHOWN]:
        who = _who(character.created_by)
        events.append(
            Event(
                character.created_at,
                "character",
                f"{character.name} (@{character.handle})",
                reverse("character_detail", args=[slug, character.pk]),
                who=who,
                before="added the character" if who else "New character",
            )
        )
    series_list = (
        Series.objects.filter(workspace=workspace)
        .select_related("created_by")
        .order_by("-created_at", "-pk")
    )
    for series in series_list[:ACTIVITY_SHOWN]:
        who = _who(series.created_by)
        events.append(
            Event(
                series.created_at,
                "series",
                series.title,
                reverse("series_detail", args=[slug, series.pk]),
                who=who,
                before="started the series" if who else "New series",
            )
        )
    episodes = (
        Episode.objects.filter(series__workspace=workspace)
        .select_related("series")
        .order_by("-created_at", "-pk")
    )
    for episode in episodes[:ACTIVITY_SHOWN]:
        events.append(
            Event(
                episode.created_at,
                "episode",
                f"Episode {episode.number}: {episode.title}",
                reverse("episode_detail", args=[slug, episode.pk]),
                before="New episode",
                after=f"of {episode.series.title}",
            )
        )
    return events


def recent_activity(workspace: Workspace, *, now: datetime.datetime) -> list[Event]:
    """The latest events across the workspace, newest first, from the rows' own timestamps
    (six queries, each cut to the feed's length, so the merge never needs more)."""
    events = _take_events(workspace) + _library_events(workspace)
    events.sort(key=lambda event: event.at, reverse=True)
    return [replace(event, ago=ago(event.at, now)) for event in events[:ACTIVITY_SHOWN]]


# --- The whole dashboard ----------------------------------------------------------------


def work_of(workspace: Workspace) -> dict[str, object]:
    """Everything the dashboard shows about work, under the names its template uses."""
    now = timezone.now()
    since = now - datetime.timedelta(days=FAILURE_DAYS)
    return {
        "in_progress": in_progress(workspace, now=now),
        **ended_work_of(workspace, now=now, since=since),
    }


def ended_work_of(
    workspace: Workspace,
    *,
    now: datetime.datetime | None = None,
    since: datetime.datetime | None = None,
) -> dict[str, object]:
    """The sections that change when a take ends: refreshed with the in-progress block when
    one of its takes has left it."""
    now = now or timezone.now()
    since = since or now - datetime.timedelta(days=FAILURE_DAYS)
    counts = _ended_counts(workspace, since=since)
    return {
        "awaiting": awaiting_review(workspace, now=now, count=counts["awaiting"]),
        "failures": recent_failures(workspace, now=now, since=since, count=counts["failures"]),
        "failure_days": FAILURE_DAYS,
        "spend": month_spend(workspace),
        "activity": recent_activity(workspace, now=now),
    }
