"""A workspace's provider accounts: owners add and edit them, every member may read them.

Keys are write-only. The capability page shows what each account can make, how it names
characters, what it charges and how it is doing.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from jobs import selectors, services
from jobs.forms import ProviderAccountForm
from jobs.models import PriceEntry, ProviderAccount
from studio.access import membership_for, require
from studio.http import HtmxHttpRequest


@login_required
@require_http_methods(["GET", "POST"])
def provider_accounts(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    membership = membership_for(request.user, slug)
    require(membership, "manage")
    form = ProviderAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account = form.save(commit=False)
        account.workspace = membership.workspace
        services.account_save(
            account=account,
            api_key=form.cleaned_data["api_key"],
            webhook_secret=form.cleaned_data["webhook_secret"],
        )
        messages.success(
            request, f"Provider account “{account.name}” added. Its key is stored encrypted."
        )
        return redirect("provider_accounts", slug)
    accounts = ProviderAccount.objects.filter(workspace=membership.workspace).order_by("name")
    context = {"membership": membership, "accounts": accounts, "form": form}
    return render(request, "studio/providers/accounts.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def provider_account_edit(request: HtmxHttpRequest, slug: str, account_id: int) -> HttpResponse:
    membership = membership_for(request.user, slug)
    require(membership, "manage")
    account = get_object_or_404(ProviderAccount, pk=account_id, workspace=membership.workspace)
    # The column keeps ten decimals: the field shows 0.1, not 0.1000000000.
    initial = {}
    if account.price_override is not None:
        initial["price_override"] = Decimal(format(account.price_override.normalize(), "f"))
    form = ProviderAccountForm(request.POST or None, instance=account, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.account_save(
            account=form.save(commit=False),
            api_key=form.cleaned_data["api_key"],
            webhook_secret=form.cleaned_data["webhook_secret"],
        )
        messages.success(request, "Provider account saved.")
        return redirect("provider_accounts", slug)
    webhook_url = request.build_absolute_uri(f"/hooks/{account.webhook_token}/")
    context = {
        "membership": membership,
        "account": account,
        "form": form,
        "webhook_url": webhook_url,
    }
    return render(request, "studio/providers/account_form.html", context)


@login_required
@require_GET
def provider_capabilities(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """What each of the workspace's provider accounts can make, how it names characters,
    what it charges, and how it is doing (every member may read it)."""
    membership = membership_for(request.user, slug)
    accounts = list(
        ProviderAccount.objects.filter(workspace=membership.workspace).order_by("name", "pk")
    )
    context = {
        "membership": membership,
        "columns": selectors.capability_matrix(accounts),
        "price_book": PriceEntry.objects.order_by("provider_kind", "model", "size", "unit"),
    }
    return render(request, "studio/providers/capabilities.html", context)
