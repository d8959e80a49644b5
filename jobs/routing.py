"""Routing: which provider account makes a request, in what order to fall back, and why.

The caller (studio.generation) compiles the request for every enabled account and
hands the results here as Options; `rank` orders the capable ones by the policy
and says in plain words why each other one is out. The engine walks that order at
submit time (jobs.pipeline), skipping accounts whose circuit breaker is open.

Policies:
- cost: the cheapest capable account (ties: the name);
- stability: the most reliable capable account, judged from its recent jobs: the
  success rate (smoothed, so two lucky jobs do not beat fifty good ones), then the
  median time to finish, then the price;
- characters: where the request mentions characters, only accounts with native
  characters, by cost; other requests by cost;
- pinned: only the pinned account.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs.models import ErrorCode, Job, JobKind, JobState

COST, STABILITY, CHARACTERS, PINNED = "cost", "stability", "characters", "pinned"
POLICIES = (COST, STABILITY, CHARACTERS, PINNED)

# Failures that say something about the provider (not about the prompt or the account).
_PROVIDER_FAILURES = (
    ErrorCode.PROVIDER_ERROR,
    ErrorCode.GENERATION_FAILED,
    ErrorCode.UNCONFIRMED,
    ErrorCode.RESULT_INVALID,
)
_RECENT_JOBS = 50


@dataclass(frozen=True)
class Health:
    """An account's recent record: finished generations, how many succeeded, how fast."""

    finished: int = 0
    succeeded: int = 0
    median_seconds: float | None = None

    @property
    def success_rate(self) -> float:
        """Laplace-smoothed: no history counts as 50%, and each job moves it a little."""
        return (self.succeeded + 1) / (self.finished + 2)


@dataclass(frozen=True)
class Option:
    """One account's answer for a request: its price, or why it cannot make it."""

    account_id: int
    name: str
    estimate: Decimal
    native_characters: bool
    problems: Sequence[str] = ()
    health: Health = field(default_factory=Health)
    breaker_open: bool = False


@dataclass(frozen=True)
class Ranking:
    ordered: list[Option]  # capable accounts, best first
    excluded: list[tuple[Option, str]]  # (account, why it is not used)
    reasons: list[str] = field(default_factory=list)  # why each ordered one is there

    @property
    def chosen(self) -> Option | None:
        return self.ordered[0] if self.ordered else None

    @property
    def reason(self) -> str:
        return self.reasons[0] if self.reasons else ""


def _by_cost(option: Option) -> tuple:
    return (option.estimate, option.name, option.account_id)


def _by_stability(option: Option) -> tuple:
    median = option.health.median_seconds
    return (
        -option.health.success_rate,
        float("inf") if median is None else median,
        option.estimate,
        option.name,
    )


def rank(
    options: Iterable[Option],
    *,
    policy: str,
    mentions_characters: bool,
    pinned_account_id: int | None = None,
) -> Ranking:
    """The capable options in the policy's order, and the others with the reason each is out."""
    if policy not in POLICIES:
        raise ValueError(f"Unknown routing policy {policy!r}")
    ordered: list[Option] = []
    excluded: list[tuple[Option, str]] = []
    for option in options:
        if option.problems:
            excluded.append((option, " ".join(option.problems)))
        elif policy == PINNED and option.account_id != pinned_account_id:
            excluded.append((option, "The policy is pinned to another provider account."))
        elif policy == CHARACTERS and mentions_characters and not option.native_characters:
            excluded.append(
                (option, "It has no saved characters, and this scene's policy asks for them.")
            )
        else:
            ordered.append(option)
    ordered.sort(key=_by_stability if policy == STABILITY else _by_cost)
    return Ranking(
        ordered, excluded, reasons=[_why(policy, o, mentions_characters) for o in ordered]
    )


def _why(policy: str, option: Option, mentions_characters: bool) -> str:
    price = f"about ${option.estimate:.2f}"
    if policy == PINNED:
        return f"Pinned to {option.name} ({price})."
    if policy == STABILITY:
        health = option.health
        record = (
            f"{health.succeeded} of {health.finished} recent takes succeeded"
            if health.finished
            else "no recent takes yet"
        )
        return f"Most reliable: {option.name}, {record} ({price})."
    if policy == CHARACTERS and mentions_characters:
        return f"Cheapest with saved characters: {option.name} ({price})."
    return f"Cheapest: {option.name} ({price})."


def health_of(account_ids: Iterable[int]) -> dict[int, Health]:
    """Each account's record over its last 50 finished generations (videos, or speech at a
    speech account) of the last N days."""
    since = timezone.now() - timedelta(days=settings.JOBS_STABILITY_DAYS)
    health: dict[int, Health] = {}
    for account_id in set(account_ids):
        rows = list(
            Job.objects.filter(
                provider_account_id=account_id,
                kind__in=(JobKind.GENERATE, JobKind.SPEECH),  # what the account makes
                finished_at__gte=since,
            )
            .filter(
                Q(state=JobState.SUCCEEDED)
                | Q(state=JobState.FAILED, error_code__in=_PROVIDER_FAILURES)
            )
            .order_by("-finished_at")
            .values_list("state", "submitted_at", "finished_at")[:_RECENT_JOBS]
        )
        succeeded = [r for r in rows if r[0] == JobState.SUCCEEDED]
        durations = [
            (finished - submitted).total_seconds()
            for _, submitted, finished in succeeded
            if submitted and finished
        ]
        health[account_id] = Health(
            finished=len(rows),
            succeeded=len(succeeded),
            median_seconds=statistics.median(durations) if durations else None,
        )
    return health
