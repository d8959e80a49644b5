"""The shared pieces on their own: multipart, markers, timelines, signing, serving."""

from __future__ import annotations

import pytest

from jobs.emulators.base import serve
from jobs.emulators.inputs import fetch
from jobs.emulators.openai import OpenAIVideosEmulator
from jobs.emulators.state import EmulatorConfig, Timeline, strip_markers
from jobs.emulators.webhooks import sign
from jobs.emulators.wsgi import ApiError, UploadedFile, parse_multipart, unflatten
from tests.jobs.emulators.conftest import encode_multipart


def test_multipart_keeps_binary_files_byte_for_byte() -> None:
    data = bytes(range(256)) * 50 + b"\r\n--not-the-boundary\r\n\r\n" + b"\x00\r\r\n\n"
    body, content_type = encode_multipart(
        {"prompt": "héllo\r\nworld", "video[id]": "video_1"},
        {"input_reference": ("ref.png", "image/png", data)},
    )
    parsed = parse_multipart(body, content_type)
    assert parsed["prompt"] == "héllo\r\nworld"
    assert parsed["video"] == {"id": "video_1"}
    assert parsed["input_reference"] == UploadedFile("ref.png", "image/png", data)


def test_multipart_without_boundary_is_a_400() -> None:
    with pytest.raises(ApiError) as caught:
        parse_multipart(b"whatever", "multipart/form-data")
    assert caught.value.status == 400


def test_unflatten_bracket_forms() -> None:
    assert unflatten([("characters[0][id]", "a"), ("characters[1][id]", "b")]) == {
        "characters": [{"id": "a"}, {"id": "b"}]
    }
    assert unflatten([("characters[][id]", "a"), ("characters[][id]", "b")]) == {
        "characters": [{"id": "a"}, {"id": "b"}]
    }
    assert unflatten([("tags[]", "x"), ("tags[]", "y"), ("plain", "z")]) == {
        "tags": ["x", "y"],
        "plain": "z",
    }


def test_markers_are_stripped_and_read() -> None:
    clean, markers = strip_markers("A cat [[emulate:latency=3.5]] sings [[emulate:moderation]]")
    assert clean == "A cat sings"
    assert markers.latency == 3.5
    assert markers.moderation
    assert not markers.fail
    assert strip_markers("[[emulate:fail]]")[1].fail
    assert strip_markers("[[emulate:unknown]] stays")[0] == "[[emulate:unknown]] stays"


def test_timeline_phases() -> None:
    timeline = Timeline(started=100.0, latency=10.0, steps=4)
    assert timeline.phase(100.5) == ("queued", 0)
    progress = [timeline.phase(t)[1] for t in (101.0, 103.5, 106.0, 109.9)]
    assert progress == sorted(progress)
    assert all(0 < p < 100 for p in progress)
    assert len(set(progress)) == 4
    assert timeline.phase(110.0) == ("succeeded", 100)

    moderated = Timeline(started=100.0, latency=10.0, steps=4, fails=True, fails_early=True)
    assert moderated.finishes_at == 101.0
    assert moderated.phase(101.0) == ("failed", 0)
    assert Timeline(started=0, latency=0, steps=3).phase(0) == ("succeeded", 100)


def test_standard_webhooks_reference_vector() -> None:
    # The example from the Standard Webhooks specification's reference libraries.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_config_merge_validates() -> None:
    config = EmulatorConfig().merged({"latency_seconds": 1, "accepted_api_keys": ["k"]})
    assert config.latency_seconds == 1.0
    assert config.accepted_api_keys == ("k",)
    for bad in (
        {"progress_steps": 0},
        {"outage": 1},
        {"webhook_url": "ftp://x"},
        {"rate_limit_per_minute": True},
    ):
        with pytest.raises(ValueError, match="must"):
            EmulatorConfig().merged(bad)


def test_serve_only_on_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve(OpenAIVideosEmulator(), host="0.0.0.0")  # noqa: S104 - the point of the test
    with serve(OpenAIVideosEmulator(), host="127.0.0.1") as running:
        assert running.api_url == f"http://127.0.0.1:{running.port}/v1"


def test_fetch_caps_size_and_refuses_other_schemes(local_server) -> None:
    local_server.files["/big.mp4"] = b"x" * 5000
    assert fetch(f"{local_server.url}/big.mp4", max_bytes=5000) == b"x" * 5000
    with pytest.raises(ValueError, match="too large"):
        fetch(f"{local_server.url}/big.mp4", max_bytes=4999)
    with pytest.raises(ValueError, match="HTTP 404"):
        fetch(f"{local_server.url}/missing.mp4")
    with pytest.raises(ValueError, match="http"):
        fetch("file:///etc/hostname")
