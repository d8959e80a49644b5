"""Reads of an API token's call log for the studio: its calls, and how many it made each
hour by status class (the chart on its call log)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, IntegerField, QuerySet
from django.db.models.functions import Cast, TruncHour
from django.utils import timezone

from studio.models import ApiCall, ApiToken

# Status classes in the order the chart stacks them, bottom up.
STATUS_CLASSES = (
    ("2xx", "answered 2xx"),
    ("3xx", "answered 3xx"),
    ("4xx", "refused (4xx)"),
    ("5xx", "failed (5xx)"),
)
HOURS = 24


def calls_of(*, token: ApiToken) -> QuerySet[ApiCall]:
    """The token's calls, newest first."""
    return ApiCall.objects.filter(token=token).order_by("-at", "-pk")


@dataclass(frozen=True)
class Hour:
    """One hour of a token's calls: when it began (local time) and its calls per class."""

    start: datetime
    counts: tuple[int, ...]  # one per STATUS_CLASSES entry

    @property
    def total(self) -> int:
        return sum(self.counts)


def calls_by_hour(*, token: ApiToken, now: datetime | None = None) -> list[Hour]:
    """The last HOURS hours (the current one last) with the token's calls in each, counted
    by the database, so a busy token's thousands of calls never come into memory."""
    now = timezone.localtime(now or timezone.now())
    current = now.replace(minute=0, second=0, microsecond=0)
    starts = [current - timedelta(hours=back) for back in range(HOURS - 1, -1, -1)]
    rows = (
        ApiCall.objects.filter(token=token, at__gte=starts[0])
        .annotate(hour=TruncHour("at"), status_class=Cast(F("status") / 100, IntegerField()))
        .values("hour", "status_class")
        .annotate(calls=Count("pk"))
        .order_by()
    )
    counts: dict[tuple[datetime, int], int] = {}
    for row in rows:
        key = (timezone.localtime(row["hour"]), row["status_class"])
        counts[key] = counts.get(key, 0) + row["calls"]
    classes = [int(name[0]) for name, _ in STATUS_CLASSES]
    return [
        Hour(start, tuple(counts.get((start, status_class), 0) for status_class in classes))
        for start in starts
    ]


def api_records_prune(*, now: datetime | None = None) -> tuple[int, int]:
    """Forget calls older than API_CALLS_KEEP_DAYS and kept answers to Idempotency-Keys older
    than API_IDEMPOTENCY_KEEP_HOURS (a key is honoured at least that long). Returns how many
    of each were deleted."""
    from django.conf import settings

    from studio.models import IdempotentAnswer

    now = now or timezone.now()
    calls, _ = ApiCall.objects.filter(
        at__lt=now - timedelta(days=settings.API_CALLS_KEEP_DAYS)
    ).delete()
    answers, _ = IdempotentAnswer.objects.filter(
        created_at__lt=now - timedelta(hours=settings.API_IDEMPOTENCY_KEEP_HOURS)
    ).delete()
    return calls, answers
