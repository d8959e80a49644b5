"""Fault injection, rate limits, outages and signed webhooks, seen from a client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import time
import urllib.error

import pytest

from tests.jobs.emulators.conftest import Api, call


def _create(api: Api, prompt: str = "a lighthouse at dusk", **kwargs):
    return api.post("/videos", {"prompt": prompt}, **kwargs)


def _expected_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks, computed here from the scheme rather than with the emulator's code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_queued_429_answers_with_retry_after_then_clears(openai_api: Api) -> None:
    openai_api.control("faults", {"faults": [{"op": "create", "kind": "429", "retry_after": 2.5}]})
    limited = _create(openai_api)
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "3"
    assert limited.headers["retry-after-ms"] == "2500"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert _create(openai_api).status == 200
    assert openai_api.control("state")["counters"]["creates"] == 1


def test_quota_fault_is_a_429_without_retry_hint(openai_api: Api) -> None:
    openai_api.control("faults", {"faults": [{"op": "any", "kind": "quota"}]})
    reply = _create(openai_api)
    assert reply.status == 429
    assert reply.json()["error"]["type"] == "insufficient_quota"
    assert reply.json()["error"]["code"] == "insufficient_quota"
    assert "Retry-After" not in reply.headers


def test_server_errors_match_only_their_op_and_count_down(openai_api: Api) -> None:
    video = _create(openai_api).json()
    openai_api.control(
        "faults",
        {"faults": [{"op": "retrieve", "kind": "500", "times": 2}, {"op": "list", "kind": "503"}]},
    )
    assert openai_api.get("/videos").status == 503
    assert openai_api.get("/videos").status == 200
    for _ in range(2):
        reply = openai_api.get(f"/videos/{video['id']}")
        assert reply.status == 500
        assert reply.json()["error"]["type"] == "server_error"
    assert openai_api.get(f"/videos/{video['id']}").status == 200
    assert openai_api.control("state")["faults"] == []


def test_outage_answers_503_everywhere_but_the_controls(openai_api: Api) -> None:
    openai_api.control("config", {"outage": True})
    assert _create(openai_api).status == 503
    reply = openai_api.get("/videos")
    assert reply.status == 503
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
    assert openai_api.control("state")["config"]["outage"] is True
    openai_api.control("config", {"outage": False})
    assert openai_api.get("/videos").status == 200


def test_rate_limit_per_minute(openai_api: Api) -> None:
    openai_api.control("config", {"rate_limit_per_minute": 2})
    assert openai_api.get("/videos").status == 200
    assert openai_api.get("/videos").status == 200
    limited = openai_api.get("/videos")
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert int(limited.headers["retry-after-ms"]) > 0


def test_timed_out_create_is_recorded_and_still_completes(openai_api: Api) -> None:
    openai_api.control(
        "faults", {"faults": [{"op": "create", "kind": "timeout", "timeout_seconds": 1.0}]}
    )
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        _create(openai_api, timeout=0.3)

    entries = openai_api.control("log")["entries"]
    assert len(entries) == 1
    assert entries[0]["dropped"] is True
    assert entries[0]["status"] is None
    video_id = entries[0]["job_id"]
    assert video_id.startswith("video_")
    assert openai_api.control("state")["counters"]["creates"] == 1
    listed = openai_api.get("/videos").json()["data"]
    assert [v["id"] for v in listed] == [video_id]
    done = openai_api.wait(f"/videos/{video_id}", until=lambda v: v["status"] == "completed")
    assert done["progress"] == 100


def test_a_held_connection_closes_without_any_response(openai_api: Api) -> None:
    openai_api.control(
        "faults", {"faults": [{"op": "list", "kind": "timeout", "timeout_seconds": 0.1}]}
    )
    with pytest.raises(http.client.RemoteDisconnected):
        openai_api.get("/videos", timeout=5)


def test_moderation_fault_fails_the_next_create(openai_api: Api) -> None:
    openai_api.control("faults", {"faults": [{"op": "create", "kind": "moderation"}]})
    video = _create(openai_api).json()
    failed = openai_api.wait(f"/videos/{video['id']}", until=lambda v: v["status"] != "queued")
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "moderation_blocked"
    assert _create(openai_api).json()["error"] is None


def test_bad_control_input_is_refused(openai_emulator, openai_api: Api) -> None:
    url = f"{openai_emulator.url}/_emulator"
    for path, body in [
        ("config", {"latency_seconds": "fast"}),
        ("config", {"no_such_key": 1}),
        ("config", {"webhook_secret": "not-whsec"}),
        ("faults", {"faults": [{"op": "create", "kind": "418"}]}),
        ("faults", {"faults": [{"op": "upload", "kind": "500"}]}),
        ("clock", {"advance_seconds": -5}),
    ]:
        reply = call("POST", f"{url}/{path}", json_body=body, token=None)
        assert reply.status == 400, (path, body)


def test_reset_forgets_everything_but_constructor_config(openai_api: Api) -> None:
    _create(openai_api)
    openai_api.control("config", {"latency_seconds": 9, "outage": True})
    openai_api.control("faults", {"faults": [{"op": "any", "kind": "500"}]})
    openai_api.control("reset", {})
    state = openai_api.control("state")
    assert state["videos"] == 0
    assert state["faults"] == []
    assert state["counters"]["creates"] == 0
    assert state["config"]["latency_seconds"] == 0.3  # the fixture's, not the default 2.0
    assert state["config"]["outage"] is False
    assert openai_api.control("log")["entries"] == []


def test_request_log_names_created_jobs(openai_api: Api) -> None:
    video = _create(openai_api).json()
    openai_api.get(f"/videos/{video['id']}")
    entries = openai_api.control("log")["entries"]
    assert [(e["method"], e["op"], e["status"]) for e in entries] == [
        ("POST", "create", 200),
        ("GET", "retrieve", 200),
    ]
    assert entries[0]["job_id"] == video["id"]
    assert openai_api.control("state")["counters"]["polls"] == {"retrieve": 1}


def test_signed_webhooks_on_completion_and_failure(openai_api: Api, local_server) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    openai_api.control(
        "config", {"webhook_url": f"{local_server.url}/hooks/openai", "webhook_secret": secret}
    )
    completed = _create(openai_api).json()
    failed = _create(openai_api, prompt="x [[emulate:fail]]").json()

    received = local_server.wait_for(2)
    by_video = {}
    for delivery in received:
        assert delivery.path == "/hooks/openai"
        headers = delivery.headers
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        expected = _expected_signature(
            secret, headers["webhook-id"], headers["webhook-timestamp"], delivery.body
        )
        assert expected in headers["webhook-signature"].split(" ")
        event = json.loads(delivery.body)
        assert set(event) == {"id", "object", "created_at", "type", "data"}
        assert event["id"] == headers["webhook-id"]
        assert event["id"].startswith("evt_")
        assert event["object"] == "event"
        by_video[event["data"]["id"]] = event["type"]
    assert by_video == {completed["id"]: "video.completed", failed["id"]: "video.failed"}
    # The event arrives once the video is terminal: a refresh right after it sees that.
    assert openai_api.get(f"/videos/{completed['id']}").json()["status"] == "completed"


def test_duplicate_deliveries_share_the_event_id(openai_api: Api, local_server) -> None:
    secret = "whsec_" + base64.b64encode(b"castboard-test-secret").decode()
    openai_api.control(
        "config",
        {"webhook_url": local_server.url, "webhook_secret": secret, "webhook_duplicates": 3},
    )
    _create(openai_api)
    received = local_server.wait_for(3)
    assert len({d.headers["webhook-id"] for d in received}) == 1
    assert len({d.body for d in received}) == 1
    for delivery in received:
        expected = _expected_signature(
            secret,
            delivery.headers["webhook-id"],
            delivery.headers["webhook-timestamp"],
            delivery.body,
        )
        assert delivery.headers["webhook-signature"] == expected


def test_failed_deliveries_are_retried_and_recorded(openai_api: Api, local_server) -> None:
    local_server.post_statuses.extend([500, 502])
    openai_api.control("config", {"webhook_url": local_server.url})
    _create(openai_api)
    received = local_server.wait_for(3)
    assert len({d.headers["webhook-id"] for d in received}) == 1
    assert "webhook-signature" not in received[0].headers  # no secret configured
    deadline = time.monotonic() + 5
    while len(deliveries := openai_api.control("state")["webhooks"]["deliveries"]) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert [(d["attempt"], d["status"], d["ok"]) for d in deliveries] == [
        (1, 500, False),
        (2, 502, False),
        (3, 204, True),
    ]
