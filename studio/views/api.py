"""The workspace's API settings (owners only): tokens with their call logs, and outgoing
webhook endpoints with their delivery logs.

A token's plain text and an endpoint's signing secret are shown once, in the answer to the
POST that made them: never in a URL, a redirect or a message kept in the session, and
that answer is not stored by caches.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.forms import Form
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio import charts, webhooks
from studio.access import (
    api_token_for,
    membership_for,
    require,
    webhook_delivery_for,
    webhook_endpoint_for,
)
from studio.api import calls as api_calls
from studio.api.tokens import token_create, token_revoke, tokens_of
from studio.forms import ApiTokenForm, WebhookEndpointForm
from studio.http import HtmxHttpRequest
from studio.models import WEBHOOK_EVENTS, Membership, WebhookEndpoint

CALLS_PER_PAGE = 100
DELIVERIES_PER_PAGE = 50
EVENT_LABELS = dict(WEBHOOK_EVENTS)


def _owner(request: HtmxHttpRequest, slug: str) -> Membership:
    """The owner's membership: other members get a 403, like every settings page."""
    membership = membership_for(request.user, slug)
    require(membership, "manage")
    return membership


def _add_errors(form: Form, error: ValidationError) -> None:
    """A service's refusal onto the form: by field where it names one, else above it."""
    if hasattr(error, "error_dict"):
        for field, problems in error.message_dict.items():
            form.add_error(field if field in form.fields else None, problems)
    else:
        form.add_error(None, error.messages)


def _page_of(request: HtmxHttpRequest, rows, per_page: int) -> Page:
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def _shown_once(response: HttpResponse) -> HttpResponse:
    """An answer carrying a secret: no cache (the browser's back button included) keeps it."""
    add_never_cache_headers(response)
    return response


# --- Tokens ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def api_settings(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The workspace's tokens, and the form that makes one (its plain text shown once)."""
    membership = _owner(request, slug)
    workspace = membership.workspace
    form = ApiTokenForm(request.POST or None, workspace=workspace)
    created, raw, status = None, "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created, raw = token_create(
                    workspace=workspace,
                    name=form.cleaned_data["name"],
                    role=form.cleaned_data["role"],
                    series=form.cleaned_data["series"],
                    created_by=request.user,
                )
            except ValidationError as error:
                _add_errors(form, error)
        if created is None:
            status = 422
        else:
            form = ApiTokenForm(workspace=workspace)
    context = {
        "membership": membership,
        "tokens": tokens_of(workspace=workspace),
        "form": form,
        "created": created,
        "raw_token": raw,
        "docs_url": request.build_absolute_uri("/api/v1/docs"),
        "api_url": request.build_absolute_uri("/api/v1/"),
    }
    response = render(request, "studio/api/tokens.html", context, status=status)
    return _shown_once(response) if created else response


@login_required
@require_POST
def api_token_revoke(request: HtmxHttpRequest, slug: str, token_id: int) -> HttpResponse:
    membership = _owner(request, slug)
    token = api_token_for(membership, token_id)
    if token.revoked_at is None:
        token_revoke(token=token)
        messages.success(request, f"“{token.name}” is revoked: calls with it are refused now.")
    else:
        messages.info(request, f"“{token.name}” was already revoked.")
    return redirect("api_settings", slug)


@login_required
@require_GET
def api_token_calls(request: HtmxHttpRequest, slug: str, token_id: int) -> HttpResponse:
    """A token's calls, newest first, and a picture of its last 24 hours."""
    membership = _owner(request, slug)
    token = api_token_for(membership, token_id)
    hours = api_calls.calls_by_hour(token=token)
    columns = [
        (
            f"{hour.start:%H}:00 on {hour.start:%b} {hour.start.day}",
            f"{hour.start:%H}h" if index % 3 == 0 else "",
            hour.counts,
        )
        for index, hour in enumerate(hours)
    ]
    context = {
        "membership": membership,
        "token": token,
        "page": _page_of(request, api_calls.calls_of(token=token), CALLS_PER_PAGE),
        "hours": [hour for hour in hours if hour.total],
        "classes": api_calls.STATUS_CLASSES,
        "chart": charts.stacked_counts(
            "calls-chart",
            title="Calls per hour, last 24 hours, by status",
            columns=columns,
            kinds=api_calls.STATUS_CLASSES,
            unit="calls",
        ),
    }
    return render(request, "studio/api/calls.html", context)


# --- Webhooks -------------------------------------------------------------------------------


def _endpoint_rows(membership: Membership):
    return WebhookEndpoint.objects.filter(workspace=membership.workspace).order_by("pk")


@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The workspace's endpoints, and the form that adds one (its secret shown once)."""
    membership = _owner(request, slug)
    form = WebhookEndpointForm(request.POST or None)
    created, secret, status = None, "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created, secret = webhooks.endpoint_create(
                    workspace=membership.workspace,
                    url=form.cleaned_data["url"],
                    description=form.cleaned_data["description"],
                    events=form.cleaned_data["events"],
                    created_by=request.user,
                )
            except ValidationError as error:
                _add_errors(form, error)
        if created is None:
            status = 422
        else:
            form = WebhookEndpointForm()
    context = {
        "membership": membership,
        "endpoints": _endpoint_rows(membership),
        "form": form,
        "created": created,
        "secret": secret,
        "event_labels": EVENT_LABELS,
        "retry_hours": round(sum(webhooks.retry_schedule()) / 3600),
    }
    response = render(request, "studio/api/webhooks.html", context, status=status)
    return _shown_once(response) if created else response


@login_required
@require_GET
def webhook_detail(request: HtmxHttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    """One endpoint and its delivery log, newest first."""
    membership = _owner(request, slug)
    endpoint = webhook_endpoint_for(membership, endpoint_id)
    context = {
        "membership": membership,
        "endpoint": endpoint,
        "page": _page_of(
            request, endpoint.deliveries.order_by("-created_at", "-pk"), DELIVERIES_PER_PAGE
        ),
        "event_labels": EVENT_LABELS,
        "now": timezone.now(),
    }
    return render(request, "studio/api/webhook_detail.html", context)


@login_required
@require_POST
def webhook_enabled(request: HtmxHttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    """Turn an endpoint on or off (`enabled` = "on" or "off")."""
    membership = _owner(request, slug)
    endpoint = webhook_endpoint_for(membership, endpoint_id)
    enabled = request.POST.get("enabled") == "on"
    webhooks.endpoint_set_enabled(endpoint=endpoint, enabled=enabled)
    if enabled:
        messages.success(request, f"{endpoint.url} receives events again.")
    else:
        messages.success(request, f"{endpoint.url} is off: its events wait until it is back on.")
    return redirect("webhook_list", slug)


@login_required
@require_POST
def webhook_delete(request: HtmxHttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    membership = _owner(request, slug)
    endpoint = webhook_endpoint_for(membership, endpoint_id)
    webhooks.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"{endpoint.url} was removed with its delivery log.")
    return redirect("webhook_list", slug)


def _to_log(slug: str, endpoint: WebhookEndpoint) -> HttpResponse:
    return redirect(reverse("webhook_detail", args=[slug, endpoint.pk]) + "#deliveries")


@login_required
@require_POST
def webhook_ping(request: HtmxHttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    """Send the endpoint a test event (`ping`)."""
    membership = _owner(request, slug)
    endpoint = webhook_endpoint_for(membership, endpoint_id)
    try:
        delivery = webhooks.endpoint_ping(endpoint=endpoint)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"A test event ({delivery.message_id}) is on its way.")
    return _to_log(slug, endpoint)


@login_required
@require_POST
def webhook_resend(
    request: HtmxHttpRequest, slug: str, endpoint_id: int, delivery_id: int
) -> HttpResponse:
    """One more attempt at a delivery, with the same message id."""
    membership = _owner(request, slug)
    endpoint = webhook_endpoint_for(membership, endpoint_id)
    delivery = webhook_delivery_for(endpoint, delivery_id)
    try:
        webhooks.delivery_resend(delivery=delivery)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"{delivery.event_type} ({delivery.message_id}) is sent again.")
    return _to_log(slug, endpoint)
