"""The fal.ai queue emulator over real HTTP: paths, Key auth, validation per hosted model,
the queue's states, results and their expiry, and Ed25519-signed webhooks."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from jobs.providers.base import GenerationRequest, Reference, WebhookRejected
from jobs.providers.fal import FalProvider
from tests.jobs.emulators.fixtures_fal import fal_emulator  # noqa: F401 - used by name
from tests.samples import image_bytes
from tests.support.emulators import emulator_control

SEEDANCE = "bytedance/seedance-2.0/reference-to-video"
VEO = "fal-ai/veo3.1"
KEY = {"Authorization": "Key fal-test"}


@pytest.fixture
def emulator(request):
    """The fal emulator (fixtures_fal.emulator), under a shorter name."""
    return request.getfixturevalue("fal_emulator")


def _submit(emulator, endpoint: str = SEEDANCE, body: dict | None = None, **kwargs):
    body = {"prompt": "A lighthouse at dusk."} if body is None else body
    return httpx.post(f"{emulator.url}/{endpoint}", json=body, headers=KEY, **kwargs)


def _until(emulator, request_id: str, status: str, app: str = "bytedance/seedance-2.0") -> dict:
    deadline = time.monotonic() + 10
    while True:
        reply = httpx.get(
            f"{emulator.url}/{app}/requests/{request_id}/status", params={"logs": "1"}, headers=KEY
        ).json()
        if reply["status"] == status:
            return reply
        assert time.monotonic() < deadline, reply
        time.sleep(0.03)


def test_a_request_is_queued_runs_with_logs_and_completes_with_a_video(emulator):
    # A minute's latency keeps both in the queue (its first tenth) however slow the machine;
    # the emulator's clock is then moved on rather than waited for.
    emulator_control(emulator, "config", {"latency_seconds": 60.0})
    first, second = _submit(emulator).json(), _submit(emulator).json()
    base = f"{emulator.url}/bytedance/seedance-2.0/requests/{second['request_id']}"
    # Status, result and cancel drop the endpoint's sub-path: owner/app only.
    assert (second["status_url"], second["response_url"], second["cancel_url"]) == (
        f"{base}/status",
        base,
        f"{base}/cancel",
    )
    assert (first["queue_position"], second["queue_position"]) == (0, 1)
    emulator_control(emulator, "clock", {"advance_seconds": 12})
    running = _until(emulator, second["request_id"], "IN_PROGRESS")
    assert running["logs"]
    assert "step 1" in running["logs"][0]["message"]
    emulator_control(emulator, "clock", {"advance_seconds": 60})
    done = _until(emulator, second["request_id"], "COMPLETED")
    assert "error" not in done
    assert "inference_time" in done["metrics"]
    video = httpx.get(base, headers=KEY).json()["video"]
    assert video["content_type"] == "video/mp4"
    data = httpx.get(video["url"]).content  # a public CDN link: no key
    assert data[4:8] == b"ftyp"
    assert len(data) == video["file_size"]


def test_paths_and_keys_are_strict(emulator):
    assert _submit(emulator, "fal-ai/not-a-model").status_code == 404
    missing = httpx.get(f"{emulator.url}/acme/nothing/requests/x/status", headers=KEY)
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "Application 'acme/nothing' not found"},
    )
    unknown = httpx.get(f"{emulator.url}/fal-ai/veo3.1/requests/nope/status", headers=KEY)
    assert unknown.status_code == 404
    assert "not found" in unknown.json()["detail"]
    bearer = httpx.post(
        f"{emulator.url}/{SEEDANCE}",
        json={"prompt": "x"},
        headers={"Authorization": "Bearer fal-test"},
    )
    assert bearer.status_code == 401
    assert "Key" in bearer.json()["detail"]
    emulator_control(emulator, "config", {"accepted_api_keys": ["right"]})
    wrong = _submit(emulator)
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"detail": "No user found for Key ID and Secret"},
    )


def test_each_model_validates_its_own_fields_like_fastapi(emulator):
    bad = _submit(emulator, VEO, {"prompt": "x", "duration": "8", "seconds": 8})
    assert bad.status_code == 422
    assert bad.json()["detail"] == [
        {
            "loc": ["body", "seconds"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        },
        {
            "loc": ["body", "duration"],
            "msg": "Input should be '4s', '6s' or '8s'",
            "type": "literal_error",
            "input": "8",
            "ctx": {"expected": "'4s', '6s' or '8s'"},
        },
    ]
    assert _submit(emulator, VEO, {"prompt": "x", "duration": "8s"}).status_code == 200
    missing = _submit(emulator, VEO, {"duration": "8s"}).json()["detail"]
    assert missing == [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}]
    # Kling 2.1 Master has no resolution field; Seedance 2.0 on fal has no 1:1 at 480p.
    kling = _submit(
        emulator,
        "fal-ai/kling-video/v2.1/master/text-to-video",
        {"prompt": "x", "resolution": "720p"},
    )
    assert kling.json()["detail"][0]["type"] == "extra_forbidden"
    odd = _submit(emulator, SEEDANCE, {"prompt": "x", "aspect_ratio": "1:1", "resolution": "480p"})
    assert odd.json()["detail"][0]["type"] == "value_error"
    picture = "data:image/png;base64," + base64.b64encode(image_bytes()).decode()
    too_many = _submit(
        emulator,
        "fal-ai/veo3.1/reference-to-video",
        {"prompt": "x", "image_urls": [picture] * 4},
    )
    assert too_many.json()["detail"][0]["type"] == "too_long"
    broken = _submit(
        emulator, SEEDANCE, {"prompt": "x", "image_urls": ["data:image/png;base64,AAAA"]}
    )
    assert broken.json()["detail"][0]["type"] == "image_load_error"


def test_moderation_fails_the_request_with_the_content_policy_error(emulator):
    request_id = _submit(emulator, body={"prompt": "Storm [[emulate:moderation]]"}).json()[
        "request_id"
    ]
    status = _until(emulator, request_id, "COMPLETED")
    assert (status["error_type"], status["error"]) == (
        "content_policy_violation",
        "Invalid status code: 422",
    )
    result = httpx.get(f"{emulator.url}/bytedance/seedance-2.0/requests/{request_id}", headers=KEY)
    assert result.status_code == 422
    assert result.headers["x-fal-retryable"] == "false"
    assert result.json()["detail"][0]["type"] == "content_policy_violation"


def test_rate_limits_outages_and_expired_links(emulator):
    emulator_control(emulator, "config", {"rate_limit_per_minute": 1})
    assert _submit(emulator).status_code == 200
    limited = _submit(emulator)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    emulator_control(emulator, "config", {"rate_limit_per_minute": None, "outage": True})
    assert _submit(emulator).json() == {"detail": "Service Unavailable"}
    emulator_control(emulator, "config", {"outage": False, "asset_ttl_seconds": 60})
    request_id = _submit(emulator).json()["request_id"]
    _until(emulator, request_id, "COMPLETED")
    url = httpx.get(
        f"{emulator.url}/bytedance/seedance-2.0/requests/{request_id}", headers=KEY
    ).json()["video"]["url"]
    assert httpx.get(url).status_code == 200
    emulator_control(emulator, "clock", {"advance_seconds": 61})
    assert httpx.get(url).status_code == 403


# --- Webhooks, verified by the adapter against the emulator's JWKS ---------------------------


def _adapter(emulator) -> FalProvider:
    return FalProvider(base_url=emulator.api_url, api_key="k", timeout=5)


def _delivered(adapter, local_server, prompt: str, count: int):
    request = GenerationRequest(
        prompt=prompt, seconds=5, size="1280x720", callback_url=f"{local_server.url}/hooks/fal"
    )
    job, _ = adapter.submit(request)
    received = local_server.wait_for(count)[-1]
    assert received.path == "/hooks/fal"
    return job, received


def test_webhooks_are_signed_with_ed25519_and_verified_against_the_jwks(emulator, local_server):
    jwks = httpx.get(f"{emulator.url}/.well-known/jwks.json").json()
    assert [(k["kty"], k["crv"]) for k in jwks["keys"]] == [("OKP", "Ed25519")]
    with _adapter(emulator) as adapter:
        assert adapter.jwks_url() == f"{emulator.url}/.well-known/jwks.json"
        job, received = _delivered(adapter, local_server, "A pier.", 1)
        notice = adapter.verify_webhook(headers=received.headers, body=received.body, secret="")
        assert (notice.event_type, notice.provider_job_id) == ("fal.completed", job.provider_job_id)
        assert notice.payload["status"] == "OK"
        assert notice.payload["payload"]["video"]["url"]
        with pytest.raises(WebhookRejected):  # a changed body no longer matches the signature
            adapter.verify_webhook(headers=received.headers, body=received.body + b" ", secret="")
        stale = {**received.headers, "x-fal-webhook-timestamp": str(int(time.time()) - 301)}
        with pytest.raises(WebhookRejected, match="too old"):
            adapter.verify_webhook(headers=stale, body=received.body, secret="")

        # fal rotates its key: the cached JWKS no longer knows it, so it is read once more.
        emulator_control(emulator, "rotate_webhook_key", {})
        _, flagged = _delivered(adapter, local_server, "x [[emulate:moderation]]", 2)
        notice = adapter.verify_webhook(headers=flagged.headers, body=flagged.body, secret="")
        assert notice.event_type == "fal.failed"  # a nudge: the poll reads why
        assert notice.payload["payload"]["detail"][0]["type"] == "content_policy_violation"


def test_the_official_queue_is_verified_against_fals_published_keys():
    adapter = FalProvider(base_url="https://queue.fal.run", api_key="k")
    with adapter:
        assert adapter.jwks_url() == "https://rest.alpha.fal.ai/.well-known/jwks.json"


def test_a_webhook_for_another_request_than_the_signed_one_is_refused(emulator, local_server):
    with _adapter(emulator) as adapter:
        _, received = _delivered(adapter, local_server, "A pier.", 1)
        headers = {**received.headers, "x-fal-webhook-request-id": "someone-else"}
        with pytest.raises(WebhookRejected):
            adapter.verify_webhook(headers=headers, body=received.body, secret="")


def test_a_reference_image_reaches_the_model_by_address(emulator, local_server):
    local_server.files["/mina.png"] = image_bytes(size=(320, 180))
    with _adapter(emulator) as adapter:
        reference = Reference(kind="image", url=f"{local_server.url}/mina.png")
        request = GenerationRequest(
            prompt="Mina (image 1).", seconds=5, size="1280x720", references=(reference,)
        )
        job, sent = adapter.submit(request)
        assert sent["image_urls"] == [f"{local_server.url}/mina.png"]
        deadline = time.monotonic() + 10
        while (job := adapter.fetch(job.provider_job_id)).status != "succeeded":
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
