"""The spend ledger and budgets: reserve before sending, settle once when a job ends.

A job reserves its estimate in the transaction that creates it, against the
workspace's budget and the one its scope names, with those budget rows locked
(SELECT ... FOR UPDATE; SQLite's IMMEDIATE transactions serialise the same way):
of twenty simultaneous requests against room for three, exactly three get in. When
the job ends it releases the reservation and is charged what it cost (nothing for a
failure), each exactly once (a unique constraint), so a replayed step never pays twice.

What a budget has committed in a period is its reservations still open plus its
charges: sum(reserve) - sum(release) + sum(charge) over the period's entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, DecimalField, F, Max, Q, Sum, When
from django.utils import timezone

from jobs.models import Budget, ErrorCode, Job, JobState, LedgerEntry

ZERO = Decimal("0")
WORKSPACE = "workspace"


def current_period() -> str:
    return timezone.localdate().strftime("%Y-%m")


class OverBudget(Exception):
    """A reservation that does not fit a budget; the message says what is left."""

    def __init__(self, budget: Budget, *, needed: Decimal, left: Decimal) -> None:
        self.budget, self.needed, self.left = budget, needed, max(left, ZERO)
        when = " this month" if budget.period == Budget.Period.MONTH else ""
        name = budget.label or ("the workspace" if budget.scope == WORKSPACE else budget.scope)
        message = (
            f"This would cost about ${needed:.2f}, but {name} has ${self.left:.2f} left{when} "
            f"of its ${budget.cap:.2f} budget. An owner can raise the cap on the Costs page."
        )
        super().__init__(message)
        self.message = message


_SIGNED = Case(
    When(kind=LedgerEntry.Kind.RELEASE, then=-F("amount")),
    default=F("amount"),
    output_field=DecimalField(max_digits=14, decimal_places=4),
)


def _entries_for(budget: Budget, *, period: str):
    entries = LedgerEntry.objects.filter(workspace_id=budget.workspace_id)
    if budget.scope != WORKSPACE:
        entries = entries.filter(scope=budget.scope)
    if budget.period == Budget.Period.MONTH:
        entries = entries.filter(period=period)
    return entries


def committed(budget: Budget, *, period: str | None = None) -> Decimal:
    """Open reservations plus charges counted against the budget (in its period)."""
    entries = _entries_for(budget, period=period or current_period())
    return entries.aggregate(total=Sum(_SIGNED))["total"] or ZERO


def _locked_budgets(workspace_id: int, scope: str) -> list[Budget]:
    return list(
        Budget.objects.select_for_update()
        .filter(workspace_id=workspace_id, scope__in=[WORKSPACE, scope] if scope else [WORKSPACE])
        .order_by("pk")  # one lock order for everyone: no deadlocks
    )


def _check(budgets: list[Budget], *, amount: Decimal, period: str, freed: Decimal) -> None:
    for budget in budgets:
        used = committed(budget, period=period) - freed
        if used + amount > budget.cap:
            raise OverBudget(budget, needed=amount, left=budget.cap - used)


def reserve(*, job: Job, amount: Decimal, note: str = "", hold: str = "") -> LedgerEntry:
    """Reserve `amount` for a new job, or raise OverBudget. Call inside the job's transaction.

    Under a `hold`, the amount moves out of the hold (the hold releases what the job
    reserves, in the same transaction): the budgets were checked for it when the hold was
    taken, so only what exceeds what the hold still has is checked again.
    """
    period = current_period()
    with transaction.atomic():
        budgets = _locked_budgets(job.workspace_id, job.budget_scope)
        moved = ZERO
        if hold:
            left, hold_period = _hold_left(hold)
            period = hold_period or period  # the month the batch was asked for
            moved = min(left, amount)
        if amount > moved:
            _check(budgets, amount=amount, period=period, freed=moved)
        if moved:
            _hold_entry(
                job.workspace_id,
                hold,
                kind=LedgerEntry.Kind.RELEASE,
                amount=moved,
                period=period,
                scope=job.budget_scope,
                note=f"to job {job.pk}",
            )
        return LedgerEntry.objects.create(
            workspace_id=job.workspace_id,
            job=job,
            provider_account_id=job.provider_account_id,
            kind=LedgerEntry.Kind.RESERVE,
            amount=amount,
            period=period,
            scope=job.budget_scope,
            note=note,
        )


# --- Holds: a batch's whole estimate, reserved at once ---------------------------------------


def hold_take(
    *, workspace_id: int, key: str, amount: Decimal, scope: str = "", note: str = ""
) -> LedgerEntry:
    """Reserve `amount` under the hold `key` for jobs to be started later (reserve(hold=)),
    checked once against the workspace's budget and the scope's; raises OverBudget and
    records nothing when it does not fit."""
    if not key:
        raise ValueError("A hold needs a key.")
    period = current_period()
    with transaction.atomic():
        budgets = _locked_budgets(workspace_id, scope)
        _check(budgets, amount=amount, period=period, freed=ZERO)
        return _hold_entry(
            workspace_id,
            key,
            kind=LedgerEntry.Kind.RESERVE,
            amount=amount,
            period=period,
            scope=scope,
            note=note,
        )


def hold_left(key: str) -> Decimal:
    """What the hold still reserves (taken, less what moved to jobs or was released)."""
    return _hold_left(key)[0]


def hold_release(key: str, *, note: str = "") -> Decimal:
    """Release what the hold still reserves (its batch ended or failed); returns that amount.
    Safe to call again: a released hold has nothing left."""
    with transaction.atomic():
        first = (
            LedgerEntry.objects.select_for_update()
            .filter(hold=key, kind=LedgerEntry.Kind.RESERVE)
            .order_by("pk")
            .first()
        )
        if first is None:
            return ZERO
        left, period = _hold_left(key)
        if left > ZERO:
            _hold_entry(
                first.workspace_id,
                key,
                kind=LedgerEntry.Kind.RELEASE,
                amount=left,
                period=period,
                scope=first.scope,
                note=note,
            )
        return left


def _hold_left(key: str) -> tuple[Decimal, str]:
    totals = LedgerEntry.objects.filter(hold=key).aggregate(
        total=Sum(_SIGNED), period=Max("period")
    )
    return totals["total"] or ZERO, totals["period"] or ""


def _hold_entry(workspace_id: int, key: str, **fields) -> LedgerEntry:
    return LedgerEntry.objects.create(workspace_id=workspace_id, job=None, hold=key, **fields)


def reserved(job: Job) -> Decimal:
    """What the job has reserved and not yet released."""
    totals = job.ledger_entries.aggregate(
        reserved=Sum("amount", filter=Q(kind=LedgerEntry.Kind.RESERVE)),
        released=Sum("amount", filter=Q(kind=LedgerEntry.Kind.RELEASE)),
    )
    return (totals["reserved"] or ZERO) - (totals["released"] or ZERO)


def re_reserve(*, job: Job, amount: Decimal, account_id: int, note: str) -> None:
    """Move a waiting job's reservation to a new estimate (a fallback to another provider).

    Raises OverBudget (and changes nothing) when the new estimate does not fit.
    """
    with transaction.atomic():
        budgets = _locked_budgets(job.workspace_id, job.budget_scope)
        entries = job.ledger_entries.filter(kind=LedgerEntry.Kind.RESERVE)
        period = entries.values_list("period", flat=True).first() or current_period()
        held = reserved(job)
        _check(budgets, amount=amount, period=period, freed=held)
        difference = amount - held
        if difference:
            LedgerEntry.objects.create(
                workspace_id=job.workspace_id,
                job=job,
                provider_account_id=account_id,
                kind=LedgerEntry.Kind.RESERVE,
                amount=difference,
                period=period,
                scope=job.budget_scope,
                note=note,
            )


def settle(job: Job) -> bool:
    """Release an ended job's reservation and charge what it cost, once. False if done already.

    A succeeded job is charged its actual cost (its estimate if none was recorded); a
    failed or cancelled one nothing, except one abandoned at a provider that could not stop
    it: that may still be billed there, so it is charged its estimate.
    """
    if job.state not in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        return False
    entries = job.ledger_entries.filter(kind=LedgerEntry.Kind.RESERVE)
    period = entries.values_list("period", flat=True).first() or current_period()
    charge = ZERO
    if job.state == JobState.SUCCEEDED:
        charge = job.cost_actual if job.cost_actual is not None else job.cost_estimate
    elif job.state == JobState.CANCELLED and job.error_code == ErrorCode.ABANDONED:
        charge = job.cost_estimate or ZERO
    common = {
        "workspace_id": job.workspace_id,
        "job": job,
        "provider_account_id": job.provider_account_id,
        "period": period,
        "scope": job.budget_scope,
    }
    try:
        with transaction.atomic():
            LedgerEntry.objects.create(
                kind=LedgerEntry.Kind.RELEASE, amount=reserved(job), note=job.state, **common
            )
            LedgerEntry.objects.create(kind=LedgerEntry.Kind.CHARGE, amount=charge, **common)
    except IntegrityError:  # settled by another worker (or a replayed step) already
        return False
    return True


def unsettled_jobs(limit: int = 500) -> list[int]:
    """Ended jobs that reserved but were never settled (a crash between the two)."""
    return list(
        Job.objects.filter(state__in=(JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED))
        .filter(ledger_entries__kind=LedgerEntry.Kind.RESERVE)
        .exclude(ledger_entries__kind=LedgerEntry.Kind.RELEASE)
        .distinct()
        .values_list("pk", flat=True)[:limit]
    )


@dataclass(frozen=True)
class BudgetStanding:
    budget: Budget
    committed: Decimal

    @property
    def left(self) -> Decimal:
        return max(self.budget.cap - self.committed, ZERO)

    @property
    def share(self) -> int:
        """Percent of the cap committed (for a bar), capped at 100."""
        if not self.budget.cap:
            return 100
        return min(100, int(self.committed * 100 / self.budget.cap))


def standings(*, workspace_id: int) -> list[BudgetStanding]:
    budgets = Budget.objects.filter(workspace_id=workspace_id).order_by("scope")
    return [BudgetStanding(budget, committed(budget)) for budget in budgets]
