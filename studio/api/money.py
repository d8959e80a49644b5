"""Costs and budgets (REST API): what the workspace spent (by month, series and provider
account) and holds reserved, and the caps that stop new paid work, as the Costs page shows.

Every token reads them; only owners' tokens set or remove a cap (as only owners do on the
web). Money is counted the way jobs.ledger counts it: spend is what jobs were charged; a
budget has committed its open reservations (work under way) plus its charges, in its period.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from ninja import Field, Path, Router, Schema, Status

from jobs.ledger import WORKSPACE
from jobs.models import Budget
from jobs.services import budget_remove, budget_set
from studio import access
from studio.api.common import ID_MAX, created, dollars, problems, require, token_of
from studio.api.pagination import Page, paginate
from studio.costs import (
    BudgetLine,
    Committed,
    budgets_of,
    spend_by_account,
    spend_by_month,
    spend_by_series,
)
from studio.models import ApiToken, Series, series_scope

router = Router(tags=["Costs and budgets"])

BudgetId = Annotated[int, Path(ge=1, le=ID_MAX, description="A budget of this workspace.")]
SERIES_PREFIX = "series:"


# --- Costs ------------------------------------------------------------------------------------


class CommittedOut(Schema):
    charged: str = Field(description="Dollars charged for work that ended.")
    reserved: str = Field(description="Dollars reserved for work still under way.")
    total: str = Field(description="Both: what counts against a budget.")


def committed_out(committed: Committed) -> CommittedOut:
    return CommittedOut(
        charged=dollars(committed.charged),
        reserved=dollars(committed.reserved),
        total=dollars(committed.total),
    )


class MonthOut(Schema):
    period: str = Field(examples=["2026-03"])
    label: str = Field(examples=["March 2026"])
    amount: str = Field(description="Dollars charged for work requested that month.")


class SpendLineOut(Schema):
    id: int | None = Field(
        description='The series or account; null for "Characters and other" (work of no take).'
    )
    name: str
    amount: str = Field(description="Dollars charged, all time.")
    charges: int = Field(description="Jobs charged (a failure is charged nothing, and counted).")


class CostsOut(Schema):
    """What the workspace spent and has committed."""

    period: str = Field(description="The month monthly budgets count now (YYYY-MM).")
    committed: CommittedOut = Field(description="The whole workspace, this month.")
    total_spent: str = Field(description="Dollars charged, all time.")
    months: list[MonthOut] = Field(description="The last 12 months, oldest first.")
    by_series: list[SpendLineOut] = Field(description="All time, most spent first.")
    by_account: list[SpendLineOut] = Field(description="All time, most spent first.")


@router.get(
    "/costs",
    response={200: CostsOut, **problems(401)},
    summary="Spend and commitments",
    description="Spend by month, by series and by provider account, and what the workspace "
    "has charged and reserved this month. Every role.",
)
def costs(request):
    workspace = token_of(request).workspace
    budgets = budgets_of(workspace=workspace)
    by_account = spend_by_account(workspace=workspace)
    return CostsOut(
        period=budgets.period,
        committed=committed_out(budgets.workspace.committed),
        total_spent=dollars(sum((line.amount for line in by_account), start=Decimal(0))),
        months=[
            MonthOut(period=month.period, label=month.label, amount=dollars(month.amount))
            for month in spend_by_month(workspace=workspace)
        ],
        by_series=[_spend(line) for line in spend_by_series(workspace=workspace)],
        by_account=[_spend(line) for line in by_account],
    )


def _spend(line) -> SpendLineOut:
    return SpendLineOut(
        id=line.key, name=line.name, amount=dollars(line.amount), charges=line.charges
    )


# --- Budgets ----------------------------------------------------------------------------------


class BudgetOut(Schema):
    """A hard cap: paid work that would take what it has committed past it is refused."""

    id: int
    scope: str = Field(
        description='"workspace" (counted per month, every series included) or "series:<id>".',
        examples=["workspace", "series:12"],
    )
    series_id: int | None = Field(
        description="The series it caps (null for the workspace's, or a series since deleted)."
    )
    label: str
    period: Literal["month", "total"] = Field(
        description="month: per calendar month; total: in all."
    )
    cap: str = Field(description="Dollars.")
    committed: CommittedOut = Field(description="Counted against it, in its period.")
    left: str = Field(description="Dollars it still has room for.")
    is_over: bool = Field(
        description="It has committed more than its cap (a cap lowered below what was spent): "
        "new paid work is refused until it has room."
    )


def _series_id(scope: str) -> int | None:
    number = scope.removeprefix(SERIES_PREFIX)
    return int(number) if scope.startswith(SERIES_PREFIX) and number.isdigit() else None


def budget_out(budget: Budget, line: BudgetLine | None) -> BudgetOut:
    committed = line.committed if line is not None else Committed()
    series_id = _series_id(budget.scope)
    return BudgetOut(
        id=budget.pk,
        scope=budget.scope,
        series_id=series_id if line is not None and line.series is not None else None,
        label=budget.label or ("This workspace" if budget.scope == WORKSPACE else budget.scope),
        period=budget.period,
        cap=dollars(budget.cap),
        committed=committed_out(committed),
        left=dollars(max(budget.cap - committed.total, Decimal(0))),
        is_over=committed.total > budget.cap,
    )


def _lines(token: ApiToken) -> dict[str, BudgetLine]:
    """Every budget line of the workspace by scope, with what it committed (three queries)."""
    budgets = budgets_of(workspace=token.workspace)
    return {line.scope: line for line in (budgets.workspace, *budgets.series)}


def _standing(token: ApiToken, budget: Budget) -> BudgetOut:
    budget.refresh_from_db()
    return budget_out(budget, _lines(token).get(budget.scope))


@router.get(
    "/budgets",
    response={200: Page[BudgetOut], **problems(401, 422)},
    summary="List the workspace's budgets",
    description="The workspace's monthly cap and each series' cap, with what each has "
    "committed. Every role.",
)
def budget_list(request, cursor: str | None = None, limit: int = 50):
    token = token_of(request)
    rows, next_cursor = paginate(
        Budget.objects.filter(workspace=token.workspace),
        cursor=cursor,
        limit=limit,
        descending=False,
    )
    lines = _lines(token) if rows else {}
    return Page[BudgetOut](
        items=[budget_out(budget, lines.get(budget.scope)) for budget in rows],
        next_cursor=next_cursor,
    )


Dollars = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
Period = Literal["month", "total"]


class BudgetIn(Schema):
    series_id: int | None = Field(
        None, ge=1, le=ID_MAX, description="Cap this series; omitted: the workspace's cap."
    )
    cap: Dollars = Field(description="Dollars, to the cent.", examples=["250.00"])
    period: Period = Field(
        "month",
        description="month: per calendar month; total: in all (series only: the workspace's cap "
        "is monthly).",
    )


class BudgetPatch(Schema):
    cap: Dollars | None = Field(None, description="Dollars, to the cent.")
    period: Period | None = Field(None, description="month or total (series only).")


def _set(token: ApiToken, *, series: Series | None, cap: Decimal, period: str) -> Budget:
    """Set a cap of the workspace or of one of its series, refusing what the page never offers:
    a workspace cap counted other than monthly."""
    if series is None and period != Budget.Period.MONTH:
        raise ValidationError({"period": "The workspace's cap is counted per month."})
    return budget_set(
        workspace=token.workspace,
        scope=WORKSPACE if series is None else series_scope(series.pk),
        cap=cap,
        period=period,
        label=series.title if series else "",
    )


@router.post(
    "/budgets",
    response={200: BudgetOut, 201: BudgetOut, **problems(401, 403, 422)},
    summary="Set a cap (the workspace's, or a series')",
    description="Creates the cap (201), or changes the one already set for that scope (200). "
    "A cap below what is already committed stops new paid work; nothing under way is touched. "
    "Owners only.",
)
def budget_create(request, response: HttpResponse, payload: BudgetIn):
    token = require(request, "manage")
    series = None
    if payload.series_id is not None:
        series = Series.objects.filter(pk=payload.series_id, workspace=token.workspace).first()
        if series is None:
            raise ValidationError({"series_id": "No such series in this workspace."})
    scope = WORKSPACE if series is None else series_scope(series.pk)
    existed = Budget.objects.filter(workspace=token.workspace, scope=scope).exists()
    budget = _set(token, series=series, cap=payload.cap, period=payload.period)
    if not existed:
        created(response, f"budgets/{budget.pk}")
    return Status(200 if existed else 201, _standing(token, budget))


@router.patch(
    "/budgets/{budget_id}",
    response={200: BudgetOut, **problems(401, 403, 404, 422)},
    summary="Change a cap",
    description="Its amount or its period; what is omitted stays. Owners only.",
)
def budget_update(request, budget_id: BudgetId, payload: BudgetPatch):
    token = token_of(request)
    budget = access.budget_for(token, budget_id)
    require(request, "manage")
    series = None
    if budget.scope != WORKSPACE:
        series_id = _series_id(budget.scope)
        series = (
            Series.objects.filter(pk=series_id, workspace=token.workspace).first()
            if series_id is not None
            else None
        )
        if series is None:
            raise ValidationError(
                "The series this budget capped was deleted; remove the budget instead."
            )
    budget = _set(
        token,
        series=series,
        cap=budget.cap if payload.cap is None else payload.cap,
        period=budget.period if payload.period is None else payload.period,
    )
    return _standing(token, budget)


@router.delete(
    "/budgets/{budget_id}",
    response={204: None, **problems(401, 403, 404)},
    summary="Remove a cap",
    description="A series' takes then count only against the workspace's budget. Owners only.",
)
def budget_delete(request, budget_id: BudgetId):
    token = token_of(request)
    budget = access.budget_for(token, budget_id)
    require(request, "manage")
    budget_remove(budget=budget)
    return Status(204, None)
