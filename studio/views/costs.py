"""The Costs page: budgets (owners change them), spend, waste and value, and projections."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from jobs import ledger
from jobs.ledger import WORKSPACE
from jobs.models import Budget
from jobs.services import budget_remove, budget_set
from studio import charts
from studio.access import budget_for, membership_for, require, series_for
from studio.costs import (
    BudgetLine,
    budgets_of,
    projection,
    spend_by_account,
    spend_by_month,
    spend_by_series,
    waste_of,
)
from studio.forms import BudgetForm, ProjectionForm
from studio.http import HtmxHttpRequest
from studio.models import SIZE_CHOICES, Membership, Series

SERIES_PREFIX = "series:"


@dataclass(frozen=True)
class BudgetRow:
    """A budget line as the page shows it: with its form for owners, None for others."""

    line: BudgetLine
    form: BudgetForm | None

    @property
    def anchor(self) -> str:
        return _anchor(self.line.scope)


def _anchor(scope: str) -> str:
    return "budget-" + scope.replace(":", "-")


def _budget_form(line: BudgetLine) -> BudgetForm:
    initial = {"period": line.budget.period, "cap": line.budget.cap} if line.budget else {}
    return BudgetForm(initial=initial, auto_id=f"id_{_anchor(line.scope)}_%s")


def _scope_for(membership: Membership, scope: str) -> tuple[str, Series | None]:
    """The posted scope, checked: "workspace", or a series of this workspace (else 404)."""
    if scope == WORKSPACE:
        return scope, None
    series_id = scope.removeprefix(SERIES_PREFIX)
    if not scope.startswith(SERIES_PREFIX) or not series_id.isdigit():
        raise Http404
    series = series_for(membership, int(series_id))
    return scope, series


def _projection_context(form: ProjectionForm, membership: Membership) -> dict[str, object]:
    if form.is_bound and not form.is_valid():
        return {"projection_form": form, "projection": [], "projection_chart": None}
    values = (
        form.cleaned_data
        if form.is_bound
        else {name: field.initial for name, field in form.fields.items()}
    )
    lines = projection(workspace=membership.workspace, **values)
    capable = [(line.account.name, line.monthly) for line in lines if line.monthly is not None]
    chart = None
    if capable:
        chart = charts.rows(
            "projection-chart",
            title=f"A month of {values['videos']} videos of {values['seconds']} s, by provider",
            bars=capable,
            highlight=capable[0][0],
        )
    return {
        "projection_form": form,
        "projection": lines,
        "projection_chart": chart,
        "size_label": dict(SIZE_CHOICES)[values["size"]],
        **values,
    }


def _page(
    request: HtmxHttpRequest,
    membership: Membership,
    *,
    projection_form: ProjectionForm,
    invalid: tuple[str, BudgetForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    workspace = membership.workspace
    budgets = budgets_of(workspace=workspace)
    rows = []
    for line in (budgets.workspace, *budgets.series):
        form = None
        # A budget left by a deleted series can only be removed: there is nothing to cap.
        if membership.can_manage and (line.scope == WORKSPACE or line.series is not None):
            form = invalid[1] if invalid and invalid[0] == line.scope else _budget_form(line)
        rows.append(BudgetRow(line, form))
    months = spend_by_month(workspace=workspace)
    by_series = spend_by_series(workspace=workspace)
    by_account = spend_by_account(workspace=workspace)
    context = {
        "membership": membership,
        "budgets": budgets,
        "workspace_row": rows[0],
        "series_rows": rows[1:],
        "spent": bool(by_account),  # any charge at all, even of $0 for a failure
        "total_spent": sum((line.amount for line in by_account), Decimal(0)),
        "months": months,
        "by_series": by_series,
        "by_account": by_account,
        "waste": waste_of(workspace=workspace),
        "month_chart": charts.columns(
            "month-chart",
            title="Spend by month, last 12 months",
            bars=[(month.label, month.short_label, month.amount) for month in months],
        ),
        "series_chart": charts.rows(
            "series-chart",
            title="Spend by series, all time",
            bars=[(line.name, line.amount) for line in by_series],
        ),
        "account_chart": charts.rows(
            "account-chart",
            title="Spend by provider account, all time",
            bars=[(line.name, line.amount) for line in by_account],
        ),
        **_projection_context(projection_form, membership),
    }
    return render(request, "studio/costs.html", context, status=status)


def _bound_projection(request: HtmxHttpRequest) -> ProjectionForm:
    """The projection form, bound only when the GET carries its fields."""
    asked = any(name in request.GET for name in ProjectionForm.base_fields)
    return ProjectionForm(request.GET if asked else None)


@login_required
@require_GET
def costs(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Every member sees the costs; only owners get the budget forms."""
    membership = membership_for(request.user, slug)
    form = _bound_projection(request)
    # A history restore after hx-push-url asks for the whole page, not the projection.
    if request.htmx and not request.htmx.history_restore_request and form.is_bound:
        context = {"membership": membership, **_projection_context(form, membership)}
        response = render(request, "studio/costs.html#projection", context)
    else:
        response = _page(request, membership, projection_form=form)
    patch_vary_headers(response, ["HX-Request"])  # one URL, two answers: caches keep both
    return response


def _saved_message(series: Series | None, budget: Budget) -> str:
    name = f"“{series.title}”" if series else "The workspace"
    period = "a month" if budget.period == Budget.Period.MONTH else "in all"
    return f"{name} may now commit {charts.dollars(budget.cap)} {period}."


@login_required
@require_POST
def budget_save(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Set or change the cap of the workspace (monthly) or of one series (monthly or total)."""
    membership = membership_for(request.user, slug)
    require(membership, "manage")
    scope, series = _scope_for(membership, request.POST.get("scope", ""))
    form = BudgetForm(request.POST, auto_id=f"id_{_anchor(scope)}_%s")
    if not form.is_valid():
        return _page(
            request,
            membership,
            projection_form=ProjectionForm(),
            invalid=(scope, form),
            status=422,
        )
    period = form.cleaned_data["period"] or Budget.Period.MONTH
    budget = budget_set(
        workspace=membership.workspace,
        scope=scope,
        cap=form.cleaned_data["cap"],
        # The workspace's cap is a monthly one: the page and the ledger's message say so.
        period=Budget.Period.MONTH if series is None else period,
        label=series.title if series else "",
    )
    messages.success(request, _saved_message(series, budget))
    committed = ledger.committed(budget)
    if committed > budget.cap:
        until = "next month or a higher cap" if budget.period == Budget.Period.MONTH else "it rises"
        messages.warning(
            request,
            f"It has already committed {charts.dollars(committed)}, more than the cap: "
            f"new takes are refused until {until}.",
        )
    return redirect(reverse("costs", args=[slug]) + f"#{_anchor(scope)}")


@login_required
@require_POST
def budget_delete(request: HtmxHttpRequest, slug: str, budget_id: int) -> HttpResponse:
    """Remove a cap; the takes it covered still count against the workspace's budget."""
    membership = membership_for(request.user, slug)
    require(membership, "manage")
    budget = budget_for(membership, budget_id)
    if budget.scope == WORKSPACE:
        message = "The workspace has no monthly cap any more."
    else:
        message = (
            f"“{budget.label or budget.scope}” has no cap of its own any more; "
            "its takes still count against the workspace's budget."
        )
    budget_remove(budget=budget)
    messages.success(request, message)
    return redirect(reverse("costs", args=[slug]) + f"#{_anchor(budget.scope)}")
