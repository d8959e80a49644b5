"""The studio's API pages: owners make tokens (shown once), revoke them, read each token's
call log, and manage webhook endpoints with their delivery logs; nobody else gets in."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from studio import webhooks
from studio.api.tokens import digest_of
from studio.models import ApiCall, ApiToken, Membership, Role, WebhookDelivery, WebhookEndpoint
from tests.factories import SeriesFactory
from tests.support.api import Api, make_token
from tests.support.webhooks import Receiver, receiving

pytestmark = pytest.mark.django_db

RAW_TOKEN = re.compile(r"cb_[0-9a-f]{8}_[A-Za-z0-9_-]{40}")
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{44}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def _url(workspace, name: str, *args) -> str:
    return reverse(name, args=[workspace.slug, *args])


def _token(workspace, raw: str) -> ApiToken:
    return ApiToken.objects.get(workspace=workspace, digest=digest_of(raw))


def _other_workspace(members):
    return Membership.objects.get(user=members["outsider"]).workspace


# --- Tokens ---------------------------------------------------------------------------------


def test_an_owner_makes_a_token_and_sees_it_only_in_that_answer(owner_client, workspace):
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")

    made = owner_client.post(
        _url(workspace, "api_settings"),
        {"name": "nightly render", "role": "editor", "series": series.pk},
    )

    assert made.status_code == 200
    (raw,) = set(RAW_TOKEN.findall(made.content.decode()))
    assert "it will not be shown again" in made.content.decode()
    assert "no-store" in made["Cache-Control"]
    assert not [str(m) for m in get_messages(made.wsgi_request)]  # nothing kept in the session
    token = ApiToken.objects.get()
    assert (token.name, token.role, token.series, token.prefix) == (
        "nightly render",
        "editor",
        series,
        raw[:11],
    )
    assert token.digest == digest_of(raw)
    assert not any(raw in str(value) for value in ApiToken.objects.values().get().values())
    listed = owner_client.get(_url(workspace, "api_settings")).content.decode()
    assert "nightly render" in listed
    assert f"{token.prefix}…" in listed
    assert raw not in listed
    assert Api(raw).get("/api/v1/workspaces").json()[0]["role"] == "editor"


def test_a_token_form_with_a_mistake_keeps_what_was_typed(owner_client, workspace):
    answer = owner_client.post(
        _url(workspace, "api_settings"), {"name": "   ", "role": "reviewer", "series": ""}
    )

    assert answer.status_code == 422
    page = answer.content.decode()
    assert "This field is required." in page or "Give the token a name" in page
    assert '<option value="reviewer" selected>' in page
    assert not RAW_TOKEN.search(page)
    assert not ApiToken.objects.exists()


def test_revoking_a_token_makes_the_api_answer_401(owner_client, workspace):
    raw = make_token(workspace, role=Role.VIEWER)
    assert Api(raw).get("/api/v1/workspaces").status_code == 200

    revoked = owner_client.post(_url(workspace, "api_token_revoke", _token(workspace, raw).pk))

    assert revoked.status_code == 302
    assert Api(raw).get("/api/v1/workspaces").status_code == 401
    listed = owner_client.get(_url(workspace, "api_settings")).content.decode()
    assert "revoked" in listed


def test_the_api_page_links_the_docs_and_shows_how_to_call_it(owner_client, workspace):
    page = owner_client.get(_url(workspace, "api_settings")).content.decode()
    assert 'href="http://testserver/api/v1/docs"' in page
    assert (
        'curl -H "Authorization: Bearer $CASTBOARD_TOKEN" http://testserver/api/v1/workspaces'
        in (page)
    )


# --- A token's call log -------------------------------------------------------------------------


def test_the_call_log_lists_the_calls_made_with_that_token(owner_client, workspace):
    raw, other = make_token(workspace, name="script"), make_token(workspace, name="other")
    api = Api(raw)
    api.get("/api/v1/workspaces")
    api.get("/api/v1/workspaces/not-ours")
    api.post("/api/v1/workspaces", {}, headers={"Idempotency-Key": "retry-me"})
    api.post("/api/v1/workspaces", {}, headers={"Idempotency-Key": "retry-me"})
    Api(other).get("/api/v1/workspaces?from=the-other-token")

    page = owner_client.get(_url(workspace, "api_token_calls", _token(workspace, raw).pk))

    assert page.status_code == 200
    calls = list(page.context["page"].object_list)
    assert [(c.method, c.path) for c in calls] == [
        ("POST", "/api/v1/workspaces"),
        ("POST", "/api/v1/workspaces"),
        ("GET", "/api/v1/workspaces/not-ours"),
        ("GET", "/api/v1/workspaces"),
    ]
    assert [c.replayed for c in calls[:2]] == [True, False]
    html = page.content.decode()
    assert '<span class="status status-2xx">200</span>' in html
    assert '<span class="status status-4xx">404</span>' in html
    assert "retry-me" in html
    assert "replayed" in html
    assert "the-other-token" not in html
    # The chart: this hour's column has the 200 and the 404s, described in words.
    assert 'class="kind-2xx"' in html
    assert 'class="kind-4xx"' in html
    assert "Calls per hour, last 24 hours, by status: 4 calls in all" in html


def test_the_call_log_shows_a_hundred_calls_a_page_newest_first(owner_client, workspace):
    token = _token(workspace, make_token(workspace))
    ApiCall.objects.bulk_create(
        ApiCall(token=token, method="GET", path=f"/api/v1/series/{n}", status=200)
        for n in range(130)
    )
    url = _url(workspace, "api_token_calls", token.pk)

    first = owner_client.get(url).context["page"]
    second = owner_client.get(url, {"page": 2}).context["page"]

    assert len(first.object_list) == 100
    assert len(second.object_list) == 30
    assert first.object_list[0].path == "/api/v1/series/129"
    assert second.object_list[29].path == "/api/v1/series/0"


def test_calls_older_than_a_day_are_in_the_log_but_not_the_chart(owner_client, workspace):
    token = _token(workspace, make_token(workspace))
    old = ApiCall.objects.create(token=token, method="GET", path="/api/v1/old", status=500)
    ApiCall.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=2))

    page = owner_client.get(_url(workspace, "api_token_calls", token.pk))

    assert "/api/v1/old" in page.content.decode()
    assert page.context["chart"].top == 0
    assert "No calls in the last 24 hours." in page.content.decode()


# --- Who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["editor", "reviewer", "viewer", "outsider"])
def test_only_owners_may_see_or_change_the_api_settings(client, members, workspace, role):
    token = _token(workspace, make_token(workspace))
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, url="http://127.0.0.1:9/hooks", created_by=members["owner"]
    )
    delivery = webhooks.endpoint_ping(endpoint=endpoint)
    client.force_login(members[role])
    expected = 404 if role == "outsider" else 403

    for name, args in (
        ("api_settings", ()),
        ("api_token_calls", (token.pk,)),
        ("webhook_list", ()),
        ("webhook_detail", (endpoint.pk,)),
    ):
        assert client.get(_url(workspace, name, *args)).status_code == expected, name
    for name, args in (
        ("api_settings", ()),
        ("api_token_revoke", (token.pk,)),
        ("webhook_list", ()),
        ("webhook_enabled", (endpoint.pk,)),
        ("webhook_ping", (endpoint.pk,)),
        ("webhook_resend", (endpoint.pk, delivery.pk)),
        ("webhook_delete", (endpoint.pk,)),
    ):
        posted = client.post(_url(workspace, name, *args), {"name": "x", "role": "owner"})
        assert posted.status_code == expected, name
    token.refresh_from_db()
    assert token.revoked_at is None
    assert ApiToken.objects.count() == 1
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).exists()
    assert WebhookDelivery.objects.count() == 1


def test_the_nav_shows_the_api_page_to_owners_only(client, members, workspace):
    url = _url(workspace, "api_settings")
    client.force_login(members["owner"])
    assert url in client.get(_url(workspace, "dashboard")).content.decode()
    client.force_login(members["editor"])
    assert url not in client.get(_url(workspace, "dashboard")).content.decode()


def test_another_workspaces_token_or_endpoint_is_a_404(owner_client, members, workspace):
    elsewhere = _other_workspace(members)
    foreign = _token(elsewhere, make_token(elsewhere))
    endpoint, _ = webhooks.endpoint_create(
        workspace=elsewhere, url="http://127.0.0.1:9/hooks", created_by=members["outsider"]
    )
    delivery = webhooks.endpoint_ping(endpoint=endpoint)
    ours, _ = webhooks.endpoint_create(
        workspace=workspace, url="http://127.0.0.1:9/ours", created_by=members["owner"]
    )

    assert owner_client.get(_url(workspace, "api_token_calls", foreign.pk)).status_code == 404
    assert owner_client.post(_url(workspace, "api_token_revoke", foreign.pk)).status_code == 404
    assert owner_client.get(_url(workspace, "webhook_detail", endpoint.pk)).status_code == 404
    for name in ("webhook_enabled", "webhook_ping", "webhook_delete"):
        assert owner_client.post(_url(workspace, name, endpoint.pk)).status_code == 404
    # Another endpoint's delivery, even under one of ours.
    resend = _url(workspace, "webhook_resend", ours.pk, delivery.pk)
    assert owner_client.post(resend).status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).exists()
    assert WebhookDelivery.objects.count() == 1


def test_making_a_token_needs_the_csrf_token(members, workspace):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(members["owner"])
    answer = strict.post(_url(workspace, "api_settings"), {"name": "x", "role": "viewer"})
    assert answer.status_code == 403
    assert not ApiToken.objects.exists()


# --- Webhook endpoints ----------------------------------------------------------------------


def test_an_endpoint_at_a_private_address_is_refused_in_plain_words(
    owner_client, workspace, settings
):
    settings.PROVIDER_ALLOWED_NETWORKS = []
    answer = owner_client.post(
        _url(workspace, "webhook_list"),
        {"url": "http://10.0.0.1/hooks", "description": "Office", "events": ["cut.ready"]},
    )

    assert answer.status_code == 422
    page = answer.content.decode()
    assert (
        "10.0.0.1 is on a private network; Castboard only sends webhooks to public addresses."
        in page
    )
    assert 'value="http://10.0.0.1/hooks"' in page  # what was typed is kept
    assert 'value="Office"' in page
    assert re.search(r'value="cut.ready"[^>]*checked', page)
    assert not SECRET.search(page)
    assert not WebhookEndpoint.objects.exists()


def test_adding_an_endpoint_shows_its_secret_once(owner_client, workspace):
    answer = owner_client.post(
        _url(workspace, "webhook_list"),
        {"url": "http://127.0.0.1:9/hooks", "events": ["take.succeeded", "cut.ready"]},
    )

    assert answer.status_code == 200
    (secret,) = set(SECRET.findall(answer.content.decode()))
    assert "no-store" in answer["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["take.succeeded", "cut.ready"]
    assert webhooks.endpoint_secret(endpoint) == secret
    assert secret not in endpoint.secret_encrypted
    listed = owner_client.get(_url(workspace, "webhook_list")).content.decode()
    assert "http://127.0.0.1:9/hooks" in listed
    assert secret not in listed
    assert (
        secret
        not in owner_client.get(_url(workspace, "webhook_detail", endpoint.pk)).content.decode()
    )


def test_an_endpoint_can_be_turned_off_and_on_and_removed(owner_client, owner, workspace):
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, url="http://127.0.0.1:9/hooks", created_by=owner
    )
    toggle = _url(workspace, "webhook_enabled", endpoint.pk)

    owner_client.post(toggle, {"enabled": "off"})
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    owner_client.post(toggle, {"enabled": "on"})
    endpoint.refresh_from_db()
    assert endpoint.enabled

    assert owner_client.post(_url(workspace, "webhook_delete", endpoint.pk)).status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_shows_each_deliverys_attempts_and_last_answer(
    owner_client, owner, workspace
):
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, url="http://127.0.0.1:9/hooks", created_by=owner
    )
    delivery = webhooks.endpoint_ping(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=2,
        last_status=500,
        last_error="Answered 500 Internal Server Error.",
        last_response="database is down",
        next_attempt_at=timezone.now() + timedelta(minutes=30),
    )

    page = owner_client.get(_url(workspace, "webhook_detail", endpoint.pk)).content.decode()

    assert delivery.message_id in page
    assert "<code>ping</code>" in page
    assert '<td class="num">2</td>' in page
    assert '<span class="status status-5xx">500</span>' in page
    assert "Answered 500 Internal Server Error." in page
    assert "database is down" in page
    assert "in 29\xa0minutes" in page or "in 30\xa0minutes" in page


@pytest.mark.django_db(transaction=True)
def test_a_test_event_and_a_resend_each_make_an_attempt(
    client, members, workspace, celery_worker, receiver
):
    client.force_login(members["owner"])
    endpoint, secret = webhooks.endpoint_create(
        workspace=workspace, url=receiver.url, created_by=members["owner"]
    )

    sent = client.post(_url(workspace, "webhook_ping", endpoint.pk))
    assert sent.status_code == 302
    (first,) = receiver.wait_for(1)
    delivery = endpoint.deliveries.get()
    _wait_until(lambda: _state(delivery) == ("delivered", 1))

    resent = client.post(_url(workspace, "webhook_resend", endpoint.pk, delivery.pk))

    assert resent.status_code == 302
    _, again = receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == delivery.message_id
    assert Webhook(secret).verify(again.body, again.headers)["type"] == "ping"
    _wait_until(lambda: _state(delivery) == ("delivered", 2))
    page = client.get(_url(workspace, "webhook_detail", endpoint.pk)).content.decode()
    assert '<td class="num">2</td>' in page


def _state(delivery: WebhookDelivery) -> tuple[str, int]:
    delivery.refresh_from_db()
    return delivery.state, delivery.attempts


def _wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)
