"""The OpenAI Videos emulator over real HTTP: lifecycle, media, validation, characters."""

from __future__ import annotations

import base64
import json

import pytest

from jobs.emulators.render import padded_length
from tests.jobs.emulators.conftest import Api
from tests.samples import image_bytes
from tests.support.probes import probe

# The spec's VideoResource lists exactly these (all required).
VIDEO_FIELDS = {
    "id",
    "object",
    "model",
    "status",
    "progress",
    "created_at",
    "completed_at",
    "expires_at",
    "prompt",
    "size",
    "seconds",
    "remixed_from_video_id",
    "error",
}


def _done(video: dict) -> bool:
    return video["status"] in ("completed", "failed")


def _create(api: Api, **body) -> dict:
    reply = api.post("/videos", {"prompt": "A calico cat playing a piano on stage", **body})
    assert reply.status == 200, reply.body
    return reply.json()


def _completed(api: Api, **body) -> dict:
    video = _create(api, **body)
    return api.wait(f"/videos/{video['id']}", until=_done)


def _character(api: Api, clip, name: str = "Mira", seconds: float = 3.0):
    return api.post(
        "/videos/characters",
        fields={"name": name},
        files={"video": ("mira.mp4", "video/mp4", clip(seconds))},
    )


def _assert_error(reply, status: int, *, param: str | None, code: str | None = None) -> dict:
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


def test_create_poll_and_download_a_playable_video(openai_api: Api) -> None:
    created = _create(openai_api)
    assert set(created) == VIDEO_FIELDS
    assert created["id"].startswith("video_")
    assert created["object"] == "video"
    assert (created["model"], created["size"], created["seconds"]) == ("sora-2", "720x1280", "4")
    assert created["status"] == "queued"
    assert created["completed_at"] is None
    assert created["expires_at"] is None

    video = openai_api.wait(f"/videos/{created['id']}", until=_done)
    assert video["status"] == "completed"
    assert video["progress"] == 100
    assert video["expires_at"] == video["completed_at"] + 3600
    assert video["error"] is None

    reply = openai_api.get(f"/videos/{video['id']}/content")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "video/mp4"
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    seconds, width, height, codec = probe(reply.body)
    assert seconds == pytest.approx(4, abs=0.3)
    assert (width, height, codec) == (720, 1280, "h264")

    for variant in ("thumbnail", "spritesheet"):
        image = openai_api.get(f"/videos/{video['id']}/content?variant={variant}")
        assert image.status == 200
        assert image.headers["Content-Type"] == "image/webp"
        assert image.body[:4] == b"RIFF"
        assert image.body[8:12] == b"WEBP"


def test_multipart_create_with_pro_size_and_characters(openai_api: Api, clip) -> None:
    character = _character(openai_api, clip).json()
    reply = openai_api.post(
        "/videos",
        fields={
            "prompt": "Mira waves at the camera",
            "model": "sora-2-pro",
            "size": "1792x1024",
            "seconds": "8",
            "characters": json.dumps([{"id": character["id"]}]),
        },
    )
    assert reply.status == 200, reply.body
    video = reply.json()
    assert (video["model"], video["size"], video["seconds"]) == ("sora-2-pro", "1792x1024", "8")


def test_bracketed_multipart_fields_are_read_as_objects(openai_api: Api, clip) -> None:
    character = _character(openai_api, clip).json()
    reply = openai_api.post(
        "/videos",
        fields={"prompt": "Mira", "characters[0][id]": character["id"]},
    )
    assert reply.status == 200, reply.body


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": "x", "seconds": "5"}, "seconds", "invalid_value"),
        ({"prompt": "x", "seconds": 8}, "seconds", "invalid_type"),
        ({"prompt": "x", "size": "640x480"}, "size", "invalid_value"),
        ({"prompt": "x", "size": "1024x1792"}, "size", "invalid_value"),
        ({"prompt": "x", "model": "sora-3"}, "model", "invalid_value"),
        ({}, "prompt", "missing_required_parameter"),
        ({"prompt": ""}, "prompt", "empty_string"),
        ({"prompt": "x" * 32_001}, "prompt", "string_above_max_length"),
        ({"prompt": "x", "quality": "hd"}, "quality", "unknown_parameter"),
        ({"prompt": "x", "characters": [{"id": "char_nobody"}]}, "characters", None),
        ({"prompt": "x", "characters": "char_1"}, "characters", "invalid_type"),
        (
            {"prompt": "x", "input_reference": {"image_url": "https://x/y.png", "file_id": "f"}},
            "input_reference",
            None,
        ),
    ],
)
def test_create_validation_errors(openai_api: Api, body: dict, param: str, code: str) -> None:
    error = _assert_error(openai_api.post("/videos", body), 400, param=param, code=code)
    assert error["type"] == "invalid_request_error"


def test_pro_sizes_need_a_pro_model(openai_api: Api) -> None:
    assert openai_api.post("/videos", {"prompt": "x", "size": "1024x1792"}).status == 400
    reply = openai_api.post(
        "/videos", {"prompt": "x", "size": "1024x1792", "model": "sora-2-pro-2025-10-06"}
    )
    assert reply.status == 200


def test_at_most_two_characters(openai_api: Api, clip) -> None:
    ids = [_character(openai_api, clip, name=f"C{n}").json()["id"] for n in range(3)]
    ok = openai_api.post("/videos", {"prompt": "x", "characters": [{"id": i} for i in ids[:2]]})
    assert ok.status == 200
    reply = openai_api.post("/videos", {"prompt": "x", "characters": [{"id": i} for i in ids]})
    _assert_error(reply, 400, param="characters", code="array_above_max_length")


def test_input_reference_must_be_an_image_of_the_video_size(openai_api: Api) -> None:
    wrong = openai_api.post(
        "/videos",
        fields={"prompt": "x"},
        files={"input_reference": ("ref.png", "image/png", image_bytes(size=(100, 100)))},
    )
    _assert_error(wrong, 400, param="input_reference")
    not_image = openai_api.post(
        "/videos",
        fields={"prompt": "x"},
        files={"input_reference": ("ref.png", "image/png", b"not an image at all")},
    )
    _assert_error(not_image, 400, param="input_reference", code="invalid_image_format")
    right = openai_api.post(
        "/videos",
        fields={"prompt": "x", "size": "1280x720"},
        files={"input_reference": ("ref.jpg", "image/png", image_bytes(size=(1280, 720)))},
    )
    assert right.status == 200, right.body


def test_auth_is_required(openai_emulator, openai_api: Api) -> None:
    error = _assert_error(openai_api.get("/videos", token=None), 401, param=None)
    assert error["code"] == "invalid_api_key"
    openai_api.control("config", {"accepted_api_keys": ["sk-good"]})
    assert openai_api.get("/videos", token="sk-bad").status == 401
    assert openai_api.get("/videos", token="sk-good").status == 200


def test_poll_hint_while_running_and_progress_from_the_clock(openai_api: Api) -> None:
    openai_api.control("config", {"poll_after_ms": 250, "progress_steps": 4})
    video = _create(openai_api, prompt="slow [[emulate:latency=100]]")
    assert video["prompt"] == "slow"
    path = f"/videos/{video['id']}"

    queued = openai_api.get(path)
    assert queued.headers["openai-poll-after-ms"] == "250"
    assert queued.json()["status"] == "queued"

    openai_api.control("clock", {"advance_seconds": 50})
    running = openai_api.get(path)
    assert running.headers["openai-poll-after-ms"] == "250"
    assert running.json()["status"] == "in_progress"
    assert 0 < running.json()["progress"] < 100

    openai_api.control("clock", {"advance_seconds": 50})
    done = openai_api.get(path)
    assert done.json()["status"] == "completed"
    assert "openai-poll-after-ms" not in done.headers


def test_list_pages_newest_first_by_default(openai_api: Api) -> None:
    ids = [_create(openai_api, prompt=f"video {n}")["id"] for n in range(5)]

    first = openai_api.get("/videos?limit=2").json()
    assert first["object"] == "list"
    assert [v["id"] for v in first["data"]] == [ids[4], ids[3]]
    assert (first["first_id"], first["last_id"], first["has_more"]) == (ids[4], ids[3], True)
    second = openai_api.get(f"/videos?limit=2&after={first['last_id']}").json()
    assert [v["id"] for v in second["data"]] == [ids[2], ids[1]]
    third = openai_api.get(f"/videos?limit=2&after={second['last_id']}").json()
    assert [v["id"] for v in third["data"]] == [ids[0]]
    assert third["has_more"] is False

    ascending = openai_api.get("/videos?order=asc").json()
    assert [v["id"] for v in ascending["data"]] == ids
    assert ascending["has_more"] is False
    _assert_error(openai_api.get("/videos?limit=101"), 400, param="limit")
    _assert_error(openai_api.get("/videos?order=up"), 400, param="order")


def test_delete_only_finished_videos(openai_api: Api) -> None:
    running = _create(openai_api, prompt="slow [[emulate:latency=60]]")
    _assert_error(openai_api.delete(f"/videos/{running['id']}"), 400, param=None)

    video = _completed(openai_api)
    reply = openai_api.delete(f"/videos/{video['id']}")
    assert reply.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    missing = openai_api.get(f"/videos/{video['id']}")
    _assert_error(missing, 404, param=None, code="video_not_found")


def test_remix_needs_a_completed_source(openai_api: Api) -> None:
    running = _create(openai_api, prompt="slow [[emulate:latency=60]]")
    _assert_error(
        openai_api.post(f"/videos/{running['id']}/remix", {"prompt": "again"}),
        400,
        param=None,
        code="video_not_completed",
    )
    _assert_error(openai_api.post("/videos/video_nope/remix", {"prompt": "again"}), 404, param=None)

    source = _completed(openai_api, seconds="8", size="1280x720")
    remix = openai_api.post(f"/videos/{source['id']}/remix", {"prompt": "now at night"}).json()
    assert set(remix) == VIDEO_FIELDS
    assert remix["remixed_from_video_id"] == source["id"]
    assert (remix["seconds"], remix["size"], remix["prompt"]) == ("8", "1280x720", "now at night")
    assert openai_api.wait(f"/videos/{remix['id']}", until=_done)["status"] == "completed"


def test_extension_reports_the_stitched_total(openai_api: Api) -> None:
    source = _completed(openai_api, seconds="4")
    body = {"prompt": "and then it bows", "video": {"id": source["id"]}}
    _assert_error(
        openai_api.post("/videos/extensions", {**body, "seconds": "6"}), 400, param="seconds"
    )
    _assert_error(
        openai_api.post("/videos/extensions", body),
        400,
        param="seconds",
        code="missing_required_parameter",
    )

    extension = openai_api.post("/videos/extensions", {**body, "seconds": "8"}).json()
    assert extension["seconds"] == "12"
    assert extension["remixed_from_video_id"] is None
    done = openai_api.wait(f"/videos/{extension['id']}", until=_done)
    content = openai_api.get(f"/videos/{done['id']}/content")
    assert probe(content.body)[0] == pytest.approx(12, abs=0.3)


def test_edits_take_a_video_id_or_a_file(openai_api: Api, clip) -> None:
    source = _completed(openai_api, size="1280x720")
    by_id = openai_api.post("/videos/edits", {"prompt": "make it snow", "video": source})
    _assert_error(by_id, 400, param="video")  # the whole resource is not a reference
    by_id = openai_api.post(
        "/videos/edits", {"prompt": "make it snow", "video": {"id": source["id"]}}
    )
    assert by_id.status == 200, by_id.body
    assert by_id.json()["size"] == "1280x720"

    by_file = openai_api.post(
        "/videos/edits",
        fields={"prompt": "make it snow"},
        files={"video": ("clip.mp4", "video/mp4", clip(3.0))},
    )
    assert by_file.status == 200, by_file.body
    assert (by_file.json()["size"], by_file.json()["seconds"]) == ("1280x720", "3")


def test_characters_from_a_short_clip(openai_api: Api, clip) -> None:
    reply = _character(openai_api, clip, name="Mira", seconds=3.0)
    assert reply.status == 200, reply.body
    character = reply.json()
    assert set(character) == {"id", "name", "created_at"}
    assert character["id"].startswith("char_")
    assert character["name"] == "Mira"
    assert openai_api.get(f"/videos/characters/{character['id']}").json() == character
    missing = openai_api.get("/videos/characters/char_nobody")
    _assert_error(missing, 404, param=None, code="character_not_found")

    too_long = _character(openai_api, clip, seconds=6.0)
    _assert_error(too_long, 400, param="video", code="invalid_video_duration")
    not_video = openai_api.post(
        "/videos/characters",
        fields={"name": "Mira"},
        files={"video": ("mira.mp4", "video/mp4", image_bytes(size=(64, 64)))},
    )
    _assert_error(not_video, 400, param="video", code="invalid_video")
    long_name = _character(openai_api, clip, name="x" * 81)
    _assert_error(long_name, 400, param="name", code="string_above_max_length")
    as_json = openai_api.post("/videos/characters", {"name": "Mira"})
    _assert_error(as_json, 400, param=None)


def test_moderation_marker_fails_for_good(openai_api: Api) -> None:
    video = _create(openai_api, prompt="a real person's face [[emulate:moderation]]")
    assert video["prompt"] == "a real person's face"
    failed = openai_api.wait(f"/videos/{video['id']}", until=_done)
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "moderation_blocked",
        "message": "Your request was blocked by our moderation system.",
    }
    assert failed["expires_at"] is None

    openai_api.control("clock", {"advance_seconds": 600})
    later = openai_api.get(f"/videos/{video['id']}").json()
    assert later["status"] == "failed"
    content = openai_api.get(f"/videos/{video['id']}/content")
    _assert_error(content, 404, param=None, code="video_not_ready")


def test_fail_marker_is_a_generic_failure(openai_api: Api) -> None:
    video = _completed(openai_api, prompt="anything [[emulate:fail]]")
    assert video["status"] == "failed"
    assert video["error"]["code"] == "video_generation_failed"


def test_content_is_404_before_completion_and_after_expiry(openai_api: Api) -> None:
    running = _create(openai_api, prompt="slow [[emulate:latency=60]]")
    reply = openai_api.get(f"/videos/{running['id']}/content")
    _assert_error(reply, 404, param=None, code="video_not_ready")

    video = _completed(openai_api)
    _assert_error(
        openai_api.get(f"/videos/{video['id']}/content?variant=poster"), 400, param="variant"
    )
    openai_api.control("clock", {"advance_seconds": 3601})
    expired = openai_api.get(f"/videos/{video['id']}/content")
    _assert_error(expired, 404, param=None, code="video_expired")


def test_padded_download_has_exactly_the_padded_length(openai_api: Api) -> None:
    video = _completed(openai_api)
    plain = openai_api.get(f"/videos/{video['id']}/content").body
    openai_api.control("config", {"pad_video_bytes": 3 * 1024 * 1024 + 5})
    padded = openai_api.get(f"/videos/{video['id']}/content")
    assert int(padded.headers["Content-Length"]) == padded_length(plain, 3 * 1024 * 1024 + 5)
    assert len(padded.body) == padded_length(plain, 3 * 1024 * 1024 + 5)
    assert padded.body.startswith(plain)
    assert probe(padded.body)[0] == pytest.approx(4, abs=0.3)  # still the same playable MP4


def test_input_reference_as_an_object(openai_api: Api) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(image_bytes(size=(720, 1280))).decode()
    by_url = openai_api.post("/videos", {"prompt": "x", "input_reference": {"image_url": data_url}})
    assert by_url.status == 200, by_url.body
    by_file = openai_api.post("/videos", {"prompt": "x", "input_reference": {"file_id": "file-1"}})
    assert by_file.status == 200, by_file.body
    small = "data:image/png;base64," + base64.b64encode(image_bytes(size=(72, 128))).decode()
    wrong = openai_api.post("/videos", {"prompt": "x", "input_reference": {"image_url": small}})
    _assert_error(wrong, 400, param="input_reference")


def test_moderation_fault_refuses_a_character(openai_api: Api, clip) -> None:
    openai_api.control("faults", {"faults": [{"op": "character", "kind": "moderation"}]})
    _assert_error(_character(openai_api, clip), 400, param=None, code="moderation_blocked")
    assert _character(openai_api, clip).status == 200
