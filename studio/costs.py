"""The Costs page's reads (budgets against what they committed, spend, waste, projections)
and its two writes (set or remove a budget).

Every read is one aggregate query whatever the number of jobs or series, and counts
money the way jobs.ledger does: spend is the sum of CHARGE entries; a budget has
committed its open reservations (reserve - release) plus its charges, in its period.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, F, FloatField, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from jobs import prices
from jobs.ledger import WORKSPACE, current_period
from jobs.models import Budget, Job, JobState, LedgerEntry, ProviderAccount
from jobs.providers import provider_for
from studio.models import Series, Take, Workspace, series_scope

ZERO = Decimal("0")
MONTHS_SHOWN = 12
OTHER_SPEND = "Characters and other"


# --- Budgets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Committed:
    """What is held against a budget: charged (spent) and reserved (takes in progress)."""

    charged: Decimal = ZERO
    reserved: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.charged + self.reserved

    def __add__(self, other: Committed) -> Committed:
        return Committed(self.charged + other.charged, self.reserved + other.reserved)


@dataclass(frozen=True)
class BudgetLine:
    """One line of the Budgets section: the workspace, a series, or a budget left behind by a
    series since deleted. `budget` is None where no cap is set."""

    scope: str
    name: str
    budget: Budget | None
    committed: Committed
    series: Series | None = None

    @property
    def period_words(self) -> str:
        if self.budget is None or self.budget.period == Budget.Period.MONTH:
            return "this month"
        return "in all"

    @property
    def left(self) -> Decimal:
        return max(self.budget.cap - self.committed.total, ZERO) if self.budget else ZERO

    @property
    def over(self) -> Decimal:
        """How far committed goes past the cap (a cap lowered below what was already spent)."""
        return max(self.committed.total - self.budget.cap, ZERO) if self.budget else ZERO

    @property
    def is_over(self) -> bool:
        return self.budget is not None and self.committed.total > self.budget.cap

    @property
    def is_full(self) -> bool:
        return self.budget is not None and self.committed.total >= self.budget.cap

    def _share(self, amount: Decimal) -> float:
        if self.budget is None:
            return 0.0
        if not self.budget.cap:
            return 100.0 if amount > 0 else 0.0
        return min(100.0, round(float(amount * 100 / self.budget.cap), 1))

    @property
    def charged_share(self) -> float:
        """Percent of the bar the charges fill."""
        return self._share(self.committed.charged)

    @property
    def reserved_share(self) -> float:
        """Percent of the bar the open reservations fill, after the charges."""
        return min(100.0 - self.charged_share, self._share(self.committed.reserved))


@dataclass(frozen=True)
class Budgets:
    workspace: BudgetLine
    series: list[BudgetLine]
    period: str  # "YYYY-MM", the month that monthly budgets count

    @property
    def reserved(self) -> Decimal:
        """Everything reserved for takes in progress this month, in the whole workspace."""
        return self.workspace.committed.reserved


CENT = Decimal("0.01")


def dollars(amount: Decimal | None) -> str | None:
    """Money as the API and the webhooks write it: US dollars, a decimal string to the cent
    ("0.40")."""
    return None if amount is None else str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def _committed_by_scope(
    workspace: Workspace, *, period: str
) -> tuple[dict[str, Committed], dict[str, Committed]]:
    """Per ledger scope: what is committed in `period`, and what is committed in all."""
    reserve, release, charge = (
        LedgerEntry.Kind.RESERVE,
        LedgerEntry.Kind.RELEASE,
        LedgerEntry.Kind.CHARGE,
    )
    in_month = Q(period=period)
    totals = (
        LedgerEntry.objects.filter(workspace=workspace)
        .values("scope")
        .annotate(
            month_reserved=Sum("amount", filter=Q(kind=reserve) & in_month),
            month_released=Sum("amount", filter=Q(kind=release) & in_month),
            month_charged=Sum("amount", filter=Q(kind=charge) & in_month),
            all_reserved=Sum("amount", filter=Q(kind=reserve)),
            all_released=Sum("amount", filter=Q(kind=release)),
            all_charged=Sum("amount", filter=Q(kind=charge)),
        )
        .order_by()
    )
    month: dict[str, Committed] = {}
    overall: dict[str, Committed] = {}
    for row in totals:
        for result, prefix in ((month, "month"), (overall, "all")):
            result[row["scope"]] = Committed(
                charged=row[f"{prefix}_charged"] or ZERO,
                reserved=(row[f"{prefix}_reserved"] or ZERO) - (row[f"{prefix}_released"] or ZERO),
            )
    return month, overall


def _committed_to(
    budget_scope: str,
    period: str,
    *,
    month: dict[str, Committed],
    overall: dict[str, Committed],
) -> Committed:
    """What a budget of this scope and period has committed (the rule of ledger.committed)."""
    by_scope = month if period == Budget.Period.MONTH else overall
    if budget_scope == WORKSPACE:
        return sum(by_scope.values(), Committed())
    return by_scope.get(budget_scope, Committed())


def budgets_of(*, workspace: Workspace) -> Budgets:
    """The workspace's budget and one line per series (capped or not), in three queries."""
    period = current_period()
    budgets = {
        budget.scope: budget for budget in Budget.objects.filter(workspace=workspace).order_by()
    }
    month, overall = _committed_by_scope(workspace, period=period)

    def line(scope: str, name: str, series: Series | None = None) -> BudgetLine:
        budget = budgets.pop(scope, None)
        # Uncapped lines still say what they committed this month.
        counted = budget.period if budget else Budget.Period.MONTH
        committed = _committed_to(scope, counted, month=month, overall=overall)
        return BudgetLine(scope, name, budget, committed, series)

    workspace_line = line(WORKSPACE, "This workspace")
    series_lines = [
        line(series_scope(series.pk), series.title, series)
        for series in Series.objects.filter(workspace=workspace).only("pk", "title")
    ]
    # Budgets whose series is gone still hold a cap and can be removed.
    series_lines += [
        line(scope, budget.label or scope) for scope, budget in sorted(budgets.items())
    ]
    return Budgets(workspace=workspace_line, series=series_lines, period=period)


# --- Spend -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthSpend:
    period: str  # "YYYY-MM"
    label: str  # "March 2025"
    short_label: str  # "Mar"
    amount: Decimal


@dataclass(frozen=True)
class SpendLine:
    """Spend of one series or one provider account (`key` is None for "Characters and other")."""

    key: int | None
    name: str
    amount: Decimal
    charges: int  # jobs charged (failed ones are charged nothing, and counted)


def _charges(workspace: Workspace):
    return LedgerEntry.objects.filter(workspace=workspace, kind=LedgerEntry.Kind.CHARGE)


def _months_back(period: str, count: int) -> list[datetime.date]:
    year, month = (int(part) for part in period.split("-"))
    firsts = []
    for _ in range(count):
        firsts.append(datetime.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return firsts[::-1]


def spend_by_month(*, workspace: Workspace, months: int = MONTHS_SHOWN) -> list[MonthSpend]:
    """Charges per requested month, the last `months` months oldest first, empty months too."""
    firsts = _months_back(current_period(), months)
    keys = [first.strftime("%Y-%m") for first in firsts]
    totals = dict(
        _charges(workspace)
        .filter(period__gte=keys[0], period__lte=keys[-1])
        .values("period")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("period", "total")
    )
    return [
        MonthSpend(key, first.strftime("%B %Y"), first.strftime("%b"), totals.get(key) or ZERO)
        for key, first in zip(keys, firsts, strict=True)
    ]


def _spend_lines(rows: Iterable[dict], *, other: str = OTHER_SPEND) -> list[SpendLine]:
    lines = [
        SpendLine(row["key"], row["name"] or other, row["total"] or ZERO, row["charges"])
        for row in rows
    ]
    # Most spent first; what belongs to no series last, whatever it cost.
    return sorted(lines, key=lambda line: (line.key is None, -line.amount, line.name))


def spend_by_series(*, workspace: Workspace) -> list[SpendLine]:
    """All-time charges per series, through take, scene and episode; jobs without a take
    (character registrations) are "Characters and other"."""
    series = "job__take__scene__episode__series"
    rows = (
        _charges(workspace)
        .values(key=F(f"{series}__id"), name=F(f"{series}__title"))
        .annotate(total=Sum("amount"), charges=Count("pk"))
        .order_by()
    )
    return _spend_lines(rows)


def spend_by_account(*, workspace: Workspace) -> list[SpendLine]:
    """All-time charges per provider account."""
    rows = (
        _charges(workspace)
        .values(key=F("provider_account_id"), name=F("provider_account__name"))
        .annotate(total=Sum("amount"), charges=Count("pk"))
        .order_by()
    )
    return _spend_lines(rows)


# --- Waste and value ---------------------------------------------------------------------


@dataclass(frozen=True)
class Waste:
    """Where take spend went: failures (billed nothing, normally), rejections, takes still
    awaiting review, and approved takes with the seconds of video they made."""

    failed: Decimal
    failed_takes: int
    rejected: Decimal
    rejected_takes: int
    awaiting: Decimal
    awaiting_takes: int
    approved: Decimal
    approved_takes: int
    approved_seconds: Decimal

    @property
    def per_approved_second(self) -> Decimal | None:
        if not self.approved_seconds:
            return None
        return self.approved / self.approved_seconds


def waste_of(*, workspace: Workspace) -> Waste:
    """Charges of the workspace's takes by outcome (one query) and approved seconds (one)."""
    ended_badly = Q(job__state__in=(JobState.FAILED, JobState.CANCELLED))
    made = ~ended_badly

    def review(state: str) -> Q:
        return made & Q(job__take__review_state=state)

    outcomes = {
        "failed": ended_badly,
        "rejected": review(Take.Review.REJECTED),
        "awaiting": review(Take.Review.PENDING),
        "approved": review(Take.Review.APPROVED),
    }
    sums = {name: Sum("amount", filter=condition) for name, condition in outcomes.items()}
    counts = {
        f"{name}_takes": Count("pk", filter=condition) for name, condition in outcomes.items()
    }
    totals = _charges(workspace).filter(job__take__isnull=False).aggregate(**sums, **counts)
    seconds = Job.objects.filter(
        workspace=workspace, state=JobState.SUCCEEDED, take__review_state=Take.Review.APPROVED
    ).aggregate(seconds=Sum(Cast(KT("result__duration"), FloatField())))["seconds"]
    return Waste(
        **{name: totals[name] or ZERO for name in outcomes},
        **{name: totals[name] for name in counts},
        # Through str: a float's binary tail is not a figure anyone measured.
        approved_seconds=Decimal(str(round(seconds or 0.0, 3))),
    )


# --- Projection -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectionLine:
    """What `videos` videos a month would cost at one account, or why it cannot make them."""

    account: ProviderAccount
    per_video: Decimal | None
    videos: int
    problem: str = ""

    @property
    def monthly(self) -> Decimal | None:
        return None if self.per_video is None else self.per_video * self.videos

    @property
    def yearly(self) -> Decimal | None:
        monthly = self.monthly
        return None if monthly is None else monthly * 12


def _size_words(size: str) -> str:
    return size.replace("x", "×")


def projection(
    *, workspace: Workspace, videos: int, seconds: int, size: str
) -> list[ProjectionLine]:
    """For each enabled account: the price of one video of `seconds` at `size` (the same
    estimate a take reserves, price book and overrides included) times `videos` a month;
    or what it cannot make. Cheapest first; those that cannot, after."""
    lines = []
    accounts = ProviderAccount.objects.filter(workspace=workspace, enabled=True).order_by("name")
    for account in accounts:
        capabilities = account.capabilities
        if capabilities.output != "video":  # a speech account makes no videos to project
            continue
        cannot = []
        if seconds not in capabilities.durations:
            cannot.append(f"{seconds} s")
        if size not in capabilities.sizes:
            cannot.append(_size_words(size))
        if cannot:
            problem = f"cannot make {' at '.join(cannot)}"
            lines.append(ProjectionLine(account, None, videos, problem))
            continue
        provider = provider_for(account)
        try:
            per_video = prices.estimate(account, provider, seconds=seconds, size=size)
        finally:
            provider.close()
        lines.append(ProjectionLine(account, per_video, videos))
    return sorted(
        lines,
        key=lambda line: (line.per_video is None, line.per_video or ZERO, line.account.name),
    )
