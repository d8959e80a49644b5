"""Standard Webhooks verification in the OpenAI adapter, against the scheme's published vector."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from jobs.providers.base import WebhookRejected
from jobs.providers.openai import OpenAIProvider

# The test vector published with the Standard Webhooks specification.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = "1614265330"
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture
def provider():
    with OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_key="k") as adapter:
        yield adapter


def _signed(body: bytes, *, secret: str = VECTOR_SECRET, at: int | None = None, event="evt_1"):
    stamp = str(at if at is not None else int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{event}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": event,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


def test_it_accepts_the_published_test_vector(provider, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: int(VECTOR_TIMESTAMP) + 10)
    notice = provider.verify_webhook(
        headers={
            "Webhook-Id": VECTOR_ID,
            "Webhook-Timestamp": VECTOR_TIMESTAMP,
            "Webhook-Signature": f"v1,bogus {VECTOR_SIGNATURE}",
        },
        body=VECTOR_BODY,
        secret=VECTOR_SECRET,
    )
    assert notice.event_id == VECTOR_ID


def test_it_reads_the_video_id_and_event_type(provider):
    body = json.dumps(
        {"id": "evt_9", "object": "event", "type": "video.completed", "data": {"id": "video_1"}}
    ).encode()
    notice = provider.verify_webhook(
        headers=_signed(body, event="evt_9"), body=body, secret=VECTOR_SECRET
    )
    assert (notice.event_type, notice.provider_job_id) == ("video.completed", "video_1")


def test_a_tampered_body_is_rejected(provider):
    body = b'{"type": "video.completed", "data": {"id": "video_1"}}'
    headers = _signed(body)
    with pytest.raises(WebhookRejected, match="signature"):
        provider.verify_webhook(
            headers=headers, body=body.replace(b"1", b"2"), secret=VECTOR_SECRET
        )


def test_a_signature_made_with_another_secret_is_rejected(provider):
    body = b"{}"
    other = "whsec_" + base64.b64encode(b"another secret of 24 b").decode()
    with pytest.raises(WebhookRejected):
        provider.verify_webhook(
            headers=_signed(body, secret=other), body=body, secret=VECTOR_SECRET
        )


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_stale_or_future_timestamp_is_rejected(provider, skew):
    body = b"{}"
    headers = _signed(body, at=int(time.time()) + skew)
    with pytest.raises(WebhookRejected, match="timestamp"):
        provider.verify_webhook(headers=headers, body=body, secret=VECTOR_SECRET)


def test_missing_headers_are_rejected(provider):
    with pytest.raises(WebhookRejected, match="Missing"):
        provider.verify_webhook(headers={}, body=b"{}", secret=VECTOR_SECRET)
