"""The Google emulators over real HTTP: Vertex AI's Veo operations and Gemini's interactions."""

from __future__ import annotations

import base64
import io
import json
import time

import av
import httpx
import pytest

from jobs.emulators.base import RunningEmulator
from jobs.providers.google import GeminiOmniProvider
from tests.jobs.emulators.fixtures_google import gemini_emulator, veo_emulator  # noqa: F401
from tests.samples import clip_bytes, image_bytes
from tests.support.emulators import emulator_control, emulator_state
from tests.support.probes import probe

KEY = {"x-goog-api-key": "AIza-test"}
VEO = "veo-3.1-generate-001"
GEMINI = "gemini-omni-flash-preview"


def _post(emulator: RunningEmulator, path: str, body: dict, headers=KEY, base=None):
    return httpx.post((base or emulator.api_url) + path, json=body, headers=headers, timeout=10)


def _error(reply: httpx.Response, status: int, name: str) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["status"]) == (status, name)
    assert error["message"]
    return error


def _inline(data: bytes, mime: str = "image/png") -> dict:
    return {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": mime}


def _has_color(video: bytes, rgb: tuple[int, int, int], tolerance: int = 24) -> bool:
    """Whether the middle frame shows a patch of `rgb` (a cast member's figure)."""
    with av.open(io.BytesIO(video)) as container:
        frames = list(container.decode(video=0))
    pixels = frames[len(frames) // 2].to_image().convert("RGB").reduce(4).tobytes()
    close = sum(
        1
        for at in range(0, len(pixels), 3)
        if all(abs(pixels[at + n] - rgb[n]) <= tolerance for n in range(3))
    )
    return close >= 20


# The fixtures module's emulators, by short names (the long ones are the imports above).
@pytest.fixture
def veo(request) -> RunningEmulator:
    return request.getfixturevalue("veo_emulator")


@pytest.fixture
def gemini(request) -> RunningEmulator:
    return request.getfixturevalue("gemini_emulator")


# --- Veo on Vertex AI -------------------------------------------------------------------------


def _veo_body(prompt: str = "A lighthouse at dusk.", instance=None, **parameters) -> dict:
    return {
        "instances": [{"prompt": prompt, **(instance or {})}],
        "parameters": {
            "durationSeconds": 8,
            "aspectRatio": "16:9",
            "resolution": "720p",
            "generateAudio": True,
            "sampleCount": 1,
            **parameters,
        },
    }


def _predict(emulator: RunningEmulator, body: dict, model: str = VEO, **kwargs) -> httpx.Response:
    return _post(emulator, f"/publishers/google/models/{model}:predictLongRunning", body, **kwargs)


def _operation(emulator: RunningEmulator, name: str, model: str = VEO, **kwargs) -> httpx.Response:
    path = f"/publishers/google/models/{model}:fetchPredictOperation"
    return _post(emulator, path, {"operationName": name}, **kwargs)


def _done(emulator: RunningEmulator, name: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        operation = _operation(emulator, name).json()
        if operation["done"]:
            return operation
        assert time.monotonic() < deadline, operation
        time.sleep(0.05)


def test_a_veo_operation_is_named_then_done_with_the_video_inline(veo) -> None:
    emulator_control(veo, "config", {"latency_seconds": 600})
    reply = _predict(veo, _veo_body(resolution="1080p"))
    assert reply.status_code == 200, reply.text
    (name,) = reply.json().values()  # Vertex answers the operation's name alone
    assert name.startswith(
        f"projects/castboard-emulator/locations/us-central1/publishers/google/models/{VEO}/operations/"
    )
    assert _operation(veo, name).json() == {"name": name, "done": False}
    emulator_control(veo, "clock", {"advance_seconds": 600})
    operation = _operation(veo, name).json()
    assert operation["done"] is True
    response = operation["response"]
    assert response["@type"].endswith("GenerateVideoResponse")
    assert response["raiMediaFilteredCount"] == 0
    (video,) = response["videos"]
    assert video["mimeType"] == "video/mp4"
    seconds, width, height, codec = probe(base64.b64decode(video["bytesBase64Encoded"]))
    assert (round(seconds), width, height, codec) == (8, 1920, 1080, "h264")


def test_express_mode_and_storage_uris(veo) -> None:
    express = veo.url + "/v1"
    reply = _predict(veo, _veo_body(storageUri="gs://bucket/out"), base=express)
    assert reply.status_code == 200, reply.text
    name = reply.json()["name"]
    operation = _done(veo, name)
    (video,) = operation["response"]["videos"]
    assert video == {
        "gcsUri": f"gs://bucket/out/{name.rsplit('/', 1)[1]}/sample_0.mp4",
        "mimeType": "video/mp4",
    }


def test_reference_images_put_the_cast_in_colour(veo) -> None:
    mina = _inline(image_bytes(size=(160, 90), color=(220, 40, 40)))
    body = _veo_body(
        "Mina (image 1) waves.",
        {"referenceImages": [{"image": mina, "referenceType": "asset"}]},
    )
    reply = _predict(veo, body)
    assert reply.status_code == 200, reply.text
    video = _done(veo, reply.json()["name"])["response"]["videos"][0]
    assert _has_color(base64.b64decode(video["bytesBase64Encoded"]), (220, 40, 40))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_veo_body(durationSeconds=5), "supported durations are [4,6,8] for feature text_to_video"),
        (_veo_body(aspectRatio="1:1"), "Aspect ratio 1:1 is not supported"),
        (_veo_body(resolution="480p"), "Resolution 480p is not supported"),
        ({"instances": [{"prompt": "x"}], "parameters": {}}, "generateAudio"),
        ({**_veo_body(), "extra": 1}, 'Unknown name "extra"'),
        (_veo_body(instance={"mask": {}}), "Unknown name \"mask\" at 'instances[0]'"),
        (_veo_body(instance={"lastFrame": _inline(image_bytes())}), "needs `image`"),
        (_veo_body(instance={"image": _inline(b"GIF89a")}), "JPEG, PNG or WebP"),
        (_veo_body(instance={"image": {"mimeType": "image/png"}}), "exactly one of"),
        (
            _veo_body(
                instance={
                    "referenceImages": [{"image": _inline(image_bytes()), "referenceType": "asset"}]
                    * 4
                }
            ),
            "Too many reference images: 4",
        ),
        (
            _veo_body(
                instance={
                    "referenceImages": [{"image": _inline(image_bytes()), "referenceType": "asset"}]
                },
                durationSeconds=6,
            ),
            "supported durations are [8] for feature reference_to_video",
        ),
        (
            _veo_body(
                instance={
                    "referenceImages": [{"image": _inline(image_bytes()), "referenceType": "asset"}]
                },
                aspectRatio="9:16",
            ),
            "not supported for reference_to_video",
        ),
        (
            _veo_body(
                instance={
                    "referenceImages": [{"image": _inline(image_bytes()), "referenceType": "style"}]
                }
            ),
            'use "asset"',
        ),
        (
            _veo_body(instance={"video": _inline(b"not a video", "video/mp4")}, durationSeconds=7),
            "readable MP4",
        ),
        (
            _veo_body(instance={"video": _inline(clip_bytes(seconds=2.0), "video/mp4")}),
            "[7] for feature video_extension",
        ),
    ],
)
def test_veo_refuses_what_vertex_refuses(veo, body: dict, words: str) -> None:
    error = _error(_predict(veo, body), 400, "INVALID_ARGUMENT")
    assert words in error["message"]


def test_an_extension_adds_seven_seconds_to_the_video_it_is_given(veo) -> None:
    body = _veo_body(
        instance={"video": _inline(clip_bytes(seconds=3.0), "video/mp4")}, durationSeconds=7
    )
    reply = _predict(veo, body)
    assert reply.status_code == 200, reply.text
    video = _done(veo, reply.json()["name"])["response"]["videos"][0]
    seconds, *_ = probe(base64.b64decode(video["bytesBase64Encoded"]))
    assert seconds == pytest.approx(10, abs=0.3)


def test_unknown_models_and_operations(veo) -> None:
    error = _error(_predict(veo, _veo_body(), model="veo-9"), 404, "NOT_FOUND")
    assert "Publisher Model" in error["message"]
    _error(_operation(veo, "operations/123"), 400, "INVALID_ARGUMENT")
    name = (
        "projects/castboard-emulator/locations/us-central1/publishers/google/models/"
        f"{VEO}/operations/nope"
    )
    _error(_operation(veo, name), 404, "NOT_FOUND")


def test_rai_filtering_ends_the_operation_without_a_video(veo) -> None:
    emulator_control(veo, "faults", {"faults": [{"op": "create", "kind": "moderation"}]})
    reply = _predict(veo, _veo_body())
    operation = _done(veo, reply.json()["name"])
    response = operation["response"]
    assert "videos" not in response
    assert "error" not in operation
    assert response["raiMediaFilteredCount"] == 1
    assert "usage guidelines" in response["raiMediaFilteredReasons"][0]
    refused = _error(_predict(veo, _veo_body("x [[emulate:refuse]]")), 400, "INVALID_ARGUMENT")
    assert "Responsible AI" in refused["message"]
    failed = _done(veo, _predict(veo, _veo_body("x [[emulate:fail]]")).json()["name"])
    assert failed["error"] == {"code": 13, "message": "Internal error encountered."}


@pytest.mark.parametrize("emulator_name", ["veo_emulator", "gemini_emulator"])
def test_keys_limits_and_outages_in_googles_words(request, emulator_name) -> None:
    emulator = request.getfixturevalue(emulator_name)
    path, body = (
        (f"/publishers/google/models/{VEO}:predictLongRunning", _veo_body())
        if emulator_name == "veo_emulator"
        else ("/interactions", _gemini_body())
    )
    missing = _post(emulator, path, body, headers={})
    if emulator_name == "veo_emulator":
        _error(missing, 401, "UNAUTHENTICATED")
    else:
        _error(missing, 403, "PERMISSION_DENIED")
    emulator_control(emulator, "config", {"accepted_api_keys": ["AIza-right"]})
    wrong = _error(_post(emulator, path, body), 400, "INVALID_ARGUMENT")
    assert wrong["details"][0]["reason"] == "API_KEY_INVALID"
    _error(
        _post(emulator, path, body, headers={"Authorization": "Bearer ya29.x"}),
        401,
        "UNAUTHENTICATED",
    )
    assert _post(emulator, f"{path}?key=AIza-right", body, headers={}).status_code == 200
    emulator_control(emulator, "config", {"accepted_api_keys": [], "rate_limit_per_minute": 1})
    assert _post(emulator, path, body).status_code == 200
    limited = _post(emulator, path, body)
    error = _error(limited, 429, "RESOURCE_EXHAUSTED")
    assert int(limited.headers["retry-after"]) >= 1
    kinds = {detail["@type"].rsplit(".", 1)[1]: detail for detail in error["details"]}
    assert "PerMinute" in kinds["QuotaFailure"]["violations"][0]["quotaId"]
    assert kinds["RetryInfo"]["retryDelay"].endswith("s")
    emulator_control(emulator, "config", {"rate_limit_per_minute": None, "outage": True})
    _error(_post(emulator, path, body), 503, "UNAVAILABLE")


# --- Gemini Omni Flash ------------------------------------------------------------------------


def _gemini_body(prompt: str = "A lighthouse at dusk.", *blocks: dict, **response_format) -> dict:
    return {
        "model": GEMINI,
        "input": [{"type": "text", "text": prompt}, *blocks],
        "response_format": {
            "type": "video",
            "duration": "4s",
            "delivery": "uri",
            **response_format,
        },
        "background": True,
    }


def _image_block(name: str, color=(40, 160, 60)) -> dict:
    data = base64.b64encode(image_bytes(size=(160, 90), color=color)).decode()
    return {"type": "image", "data": data, "mime_type": "image/png", "name": name}


def _interaction(emulator: RunningEmulator, interaction_id: str) -> dict:
    reply = httpx.get(f"{emulator.api_url}/interactions/{interaction_id}", headers=KEY)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _finished(emulator: RunningEmulator, interaction_id: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        interaction = _interaction(emulator, interaction_id)
        if interaction["status"] in ("completed", "failed", "cancelled"):
            return interaction
        assert time.monotonic() < deadline, interaction
        time.sleep(0.05)


def test_an_interaction_goes_queued_in_progress_completed_with_a_keyed_file(
    gemini,
) -> None:
    emulator_control(gemini, "config", {"latency_seconds": 100})
    reply = _post(
        gemini,
        "/interactions",
        _gemini_body("Mina (image_1) waves.", _image_block("image_1")),
    )
    assert reply.status_code == 200, reply.text
    created = reply.json()
    assert created["status"] == "queued"
    assert created["response_format"]["duration"] == "4s"
    emulator_control(gemini, "clock", {"advance_seconds": 50})
    assert _interaction(gemini, created["id"])["status"] == "in_progress"
    emulator_control(gemini, "clock", {"advance_seconds": 50})
    done = _interaction(gemini, created["id"])
    assert done["status"] == "completed"
    (step,) = done["steps"]
    (video,) = step["content"]
    assert step["type"] == "model_output"
    assert (video["type"], video["mime_type"]) == ("video", "video/mp4")
    assert httpx.get(video["uri"]).status_code == 403  # the Files API wants the key
    data = httpx.get(video["uri"], headers=KEY).content
    assert probe(data)[:3] == (4.0, 1280, 720)
    assert _has_color(data, (40, 160, 60))
    emulator_control(gemini, "clock", {"advance_seconds": 48 * 3600})
    gone = _error(httpx.get(video["uri"], headers=KEY), 403, "PERMISSION_DENIED")
    assert "may not exist" in gone["message"]


def test_an_inline_video_comes_as_base64_and_the_adapter_decodes_it(gemini) -> None:
    reply = _post(gemini, "/interactions", _gemini_body(delivery="inline", aspect_ratio="9:16"))
    done = _finished(gemini, reply.json()["id"])
    video = done["steps"][0]["content"][0]
    assert "uri" not in video
    with GeminiOmniProvider(base_url=gemini.api_url, api_key="k") as adapter:
        job = adapter.fetch(done["id"])
        data = b"".join(adapter.stream_result(job))
    assert data == base64.b64decode(video["data"])
    assert probe(data)[1:3] == (720, 1280)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**_gemini_body(), "background": False}, "background"),
        ({**_gemini_body(), "stream_mode": 1}, 'Unknown name "stream_mode"'),
        (_gemini_body(duration="12s"), '"3s" to "10s"'),
        (_gemini_body(duration=8), '"3s" to "10s"'),
        (_gemini_body(resolution="1080p"), "use 720p"),
        (_gemini_body(aspect_ratio="1:1"), "16:9 or 9:16"),
        ({**_gemini_body(), "response_format": {"type": "text"}}, "must ask for a video"),
        (_gemini_body("x", *[_image_block(f"i{n}") for n in range(6)]), "At most 5 images"),
        (_gemini_body("x", _image_block("a"), _image_block("a")), "used by another block"),
        (
            _gemini_body("x", {"type": "audio", "data": "AA==", "mime_type": "audio/wav"}),
            "not supported",
        ),
        (_gemini_body("x", {"type": "image", "mime_type": "image/png"}), "exactly one of"),
        (
            _gemini_body(
                "x",
                {
                    "type": "video",
                    "data": base64.b64encode(clip_bytes(seconds=11.0)).decode(),
                    "mime_type": "video/mp4",
                },
            ),
            "up to 10 s",
        ),
    ],
)
def test_gemini_refuses_what_the_interactions_api_refuses(gemini, body, words) -> None:
    error = _error(_post(gemini, "/interactions", body), 400, "INVALID_ARGUMENT")
    assert words in error["message"]


def test_unknown_models_interactions_and_late_cancels(gemini) -> None:
    error = _error(
        _post(gemini, "/interactions", {**_gemini_body(), "model": "veo-3"}),
        404,
        "NOT_FOUND",
    )
    assert "models/veo-3" in error["message"]
    _error(httpx.get(f"{gemini.api_url}/interactions/v1_nope", headers=KEY), 404, "NOT_FOUND")
    done = _finished(gemini, _post(gemini, "/interactions", _gemini_body()).json()["id"])
    late = _post(gemini, f"/interactions/{done['id']}/cancel", {})
    _error(late, 400, "FAILED_PRECONDITION")


def test_a_blocked_video_fails_with_a_safety_error(gemini) -> None:
    emulator_control(gemini, "faults", {"faults": [{"op": "create", "kind": "moderation"}]})
    failed = _finished(gemini, _post(gemini, "/interactions", _gemini_body()).json()["id"])
    assert failed["status"] == "failed"
    assert failed["errors"][0]["code"] == "SAFETY"
    assert "steps" not in failed


def test_finished_interactions_are_announced_by_signed_webhooks(gemini, local_server) -> None:
    secret = "whsec_" + base64.b64encode(b"gemini-account-secret").decode()
    emulator_control(gemini, "config", {"webhook_secret": secret})
    body = {
        **_gemini_body(),
        "webhook_config": {"uris": [f"{local_server.url}/hooks"], "user_metadata": {"job": 7}},
    }
    made = _post(gemini, "/interactions", body).json()
    failed = _post(gemini, "/interactions", {**body, "input": "x [[emulate:fail]]"}).json()
    received = local_server.wait_for(2)
    adapter = GeminiOmniProvider(base_url=gemini.api_url, api_key="k")
    notices = {}
    for delivery in received:
        assert delivery.path == "/hooks"
        notice = adapter.verify_webhook(headers=delivery.headers, body=delivery.body, secret=secret)
        notices[notice.provider_job_id] = notice
    assert notices[made["id"]].event_type == "interaction.completed"
    assert json.loads(received[0].body)["data"]["user_metadata"] == {"job": 7}
    raw_types = {json.loads(d.body)["type"] for d in received}
    assert raw_types == {"video.generated", "interaction.failed"}
    assert notices[failed["id"]].event_type == "interaction.failed"
    deliveries = emulator_state(gemini)["webhooks"]["deliveries"]
    assert all(d["ok"] for d in deliveries)
