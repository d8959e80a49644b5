"""API tokens: shown once, stored as a digest, revocable, no stronger than their owner."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from studio.api.tokens import digest_of, token_create, token_revoke
from studio.models import ApiCall, ApiToken, Membership, Role
from tests.support.api import Api, make_token

pytestmark = pytest.mark.django_db


def test_a_token_is_stored_only_as_its_digest(workspace, owner):
    token, raw = token_create(workspace=workspace, name="nightly", role="editor", created_by=owner)
    assert raw.startswith(token.prefix + "_")
    assert token.digest == digest_of(raw)
    stored = ApiToken.objects.filter(pk=token.pk).values_list(flat=True)
    assert all(
        raw not in str(value)
        for value in ApiToken.objects.filter(pk=token.pk).values().get().values()
    )
    assert stored


def test_only_owners_make_tokens(workspace, members):
    with pytest.raises(ValidationError):
        token_create(workspace=workspace, name="x", role="viewer", created_by=members["editor"])


def test_no_token_unknown_token_and_revoked_token_are_401(workspace, tokens):
    for api in (Api(None), Api("cb_00000000_nope"), Api("not-even-a-token")):
        response = api.get("/api/v1/workspaces")
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
    raw = tokens["editor"]
    assert Api(raw).get("/api/v1/workspaces").status_code == 200
    token_revoke(token=ApiToken.objects.get(digest=digest_of(raw)))
    assert Api(raw).get("/api/v1/workspaces").status_code == 401


def test_a_token_sees_only_its_own_workspace(workspace, tokens):
    listed = Api(tokens["viewer"]).get("/api/v1/workspaces").json()
    assert [w["slug"] for w in listed] == [workspace.slug]
    assert listed[0]["role"] == "viewer"
    other = Api(tokens["outsider"]).get("/api/v1/workspaces").json()[0]["slug"]
    assert Api(tokens["viewer"]).get(f"/api/v1/workspaces/{other}").status_code == 404


def test_a_token_never_acts_beyond_its_owners_current_role(workspace, members):
    raw = make_token(workspace, role=Role.OWNER)
    maker = ApiToken.objects.get(digest=digest_of(raw)).created_by
    Membership.objects.filter(workspace=workspace, user=maker).update(role=Role.VIEWER)
    assert Api(raw).get("/api/v1/workspaces").json()[0]["role"] == "viewer"
    Membership.objects.filter(workspace=workspace, user=maker).delete()
    assert Api(raw).get("/api/v1/workspaces").status_code == 401


def test_every_call_is_logged_and_last_used_is_kept(workspace, tokens):
    raw = tokens["editor"]
    Api(raw).get("/api/v1/workspaces")
    Api(raw).get(f"/api/v1/workspaces/{workspace.slug}")
    token = ApiToken.objects.get(digest=digest_of(raw))
    calls = list(ApiCall.objects.filter(token=token).values_list("method", "path", "status"))
    assert calls == [
        ("GET", f"/api/v1/workspaces/{workspace.slug}", 200),
        ("GET", "/api/v1/workspaces", 200),
    ]
    assert token.last_used_at is not None


def test_over_the_rate_limit_is_429_with_retry_after(settings, tokens):
    settings.RATE_LIMIT_API = "3/60"
    api = Api(tokens["editor"])
    assert [api.get("/api/v1/workspaces").status_code for _ in range(3)] == [200] * 3
    refused = api.get("/api/v1/workspaces")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["type"].endswith("rate-limit-exceeded")
    # Another token has its own window.
    assert Api(tokens["viewer"]).get("/api/v1/workspaces").status_code == 200


def test_the_schema_and_docs_are_published_without_a_token(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Castboard API"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_a_nul_character_is_refused_before_anything_runs(tokens, workspace):
    api = Api(tokens["editor"])
    query = api.get("/api/v1/characters", {"q": "mi\x00na"})
    body = api.post("/api/v1/series", {"title": "Night\u0000shift"})
    for refused in (query, body):
        assert refused.status_code == 422
        assert "NUL" in refused.json()["detail"]
    assert not workspace.series.exists()


def test_the_relay_gateway_refuses_in_the_relays_own_words(settings, tokens):
    assert Api(None).get("/gateway/relay/v1/sora/characters").json()["error"]["code"] == (
        "unauthorized"
    )
    settings.RATE_LIMIT_API = "1/60"
    api = Api(tokens["viewer"])
    api.get("/gateway/relay/v1/sora/characters")
    refused = api.get("/gateway/relay/v1/sora/characters")
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")


def test_old_calls_and_expired_idempotency_answers_are_forgotten(settings, tokens):
    from datetime import timedelta

    from django.utils import timezone

    from studio.api.calls import api_records_prune
    from studio.models import IdempotentAnswer

    token = ApiToken.objects.get(digest=digest_of(tokens["editor"]))
    Api(tokens["editor"]).get("/api/v1/workspaces")
    Api(tokens["editor"]).get("/api/v1/workspaces")
    old_call = ApiCall.objects.filter(token=token).first()
    ApiCall.objects.filter(pk=old_call.pk).update(at=timezone.now() - timedelta(days=31))
    fresh = IdempotentAnswer.objects.create(
        token=token, key="a", method="POST", path="/", fingerprint="x"
    )
    stale = IdempotentAnswer.objects.create(
        token=token, key="b", method="POST", path="/", fingerprint="x"
    )
    IdempotentAnswer.objects.filter(pk=stale.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )

    assert api_records_prune() == (1, 1)
    assert ApiCall.objects.filter(token=token).count() == 1
    assert list(IdempotentAnswer.objects.values_list("pk", flat=True)) == [fresh.pk]
