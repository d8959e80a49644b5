"""The Seedance (ModelArk) emulator over real HTTP: tasks, references, lists, cancels, files."""

from __future__ import annotations

import base64
import io
import re
import time
import urllib.error

import httpx
import pytest
from PIL import Image

from tests.jobs.emulators.conftest import Api, call
from tests.samples import image_bytes
from tests.support.probes import probe

TASKS = "/contents/generations/tasks"
MODEL = "dreamina-seedance-2-0-260128"
# What a finished task carries; queued, running and failed ones have no content or usage.
TASK_FIELDS = {
    "id",
    "model",
    "status",
    "error",
    "content",
    "usage",
    "duration",
    "ratio",
    "resolution",
    "seed",
    "created_at",
    "updated_at",
}


def _body(prompt: str = "A lighthouse at dusk.", *references: dict, **options) -> dict:
    return {"model": MODEL, "content": [{"type": "text", "text": prompt}, *references], **options}


def _image(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}, "role": "reference_image"}


def _video(url: str) -> dict:
    return {"type": "video_url", "video_url": {"url": url}, "role": "reference_video"}


def _data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def _create(api: Api, body: dict | None = None) -> str:
    reply = api.post(TASKS, body or _body())
    assert reply.status == 200, reply.body
    return reply.json()["id"]


def _finished(api: Api, task_id: str) -> dict:
    return api.wait(
        f"{TASKS}/{task_id}", until=lambda t: t["status"] in ("succeeded", "failed", "cancelled")
    )


def _assert_error(reply, status: int, code: str, param: str | None = None) -> dict:
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "param", "type"}
    assert error["code"] == code
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def test_a_create_answers_the_id_alone_and_the_task_ends_in_a_playable_mp4(
    seedance_api: Api,
) -> None:
    # A long task, moved along by the emulator's clock: each state is seen for certain.
    body = _body(
        "A lighthouse [[emulate:latency=600]]", resolution="720p", ratio="16:9", duration=4
    )
    reply = seedance_api.post(TASKS, body)
    assert reply.status == 200, reply.body
    assert set(reply.json()) == {"id"}
    task_id = reply.json()["id"]
    assert re.fullmatch(r"cgt-[0-9a-f]{20}", task_id)

    for advance, status in ((0, "queued"), (100, "running")):
        seedance_api.control("clock", {"advance_seconds": advance})
        waiting = seedance_api.get(f"{TASKS}/{task_id}").json()
        assert set(waiting) == TASK_FIELDS - {"content", "usage"}
        assert (waiting["status"], waiting["error"]) == (status, None)
    seedance_api.control("clock", {"advance_seconds": 500})
    task = seedance_api.get(f"{TASKS}/{task_id}").json()
    assert set(task) == TASK_FIELDS
    assert (task["status"], task["error"], task["model"]) == ("succeeded", None, MODEL)
    assert (task["resolution"], task["ratio"], task["duration"]) == ("720p", "16:9", 4)
    assert isinstance(task["seed"], int)
    assert task["seed"] >= 0  # -1 (the default) asks the service to pick one
    assert task["updated_at"] == task["created_at"] + 600
    assert task["usage"] == {"completion_tokens": 86_400, "total_tokens": 86_400}

    url = task["content"]["video_url"]
    assert "last_frame_url" not in task["content"]
    assert url.startswith(f"{seedance_api.emulator.url}/files/{task_id}.mp4?")
    assert "X-Tos-Expires=86400" in url
    video = call("GET", url, token=None)  # a public object-storage link: no key
    assert video.status == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert int(video.headers["Content-Length"]) == len(video.body)
    seconds, width, height, codec = probe(video.body)
    assert seconds == pytest.approx(4, abs=0.3)
    assert (width, height, codec) == (1280, 720, "h264")


@pytest.mark.parametrize(
    ("resolution", "ratio", "size"),
    [("480p", "21:9", (1120, 480)), ("1080p", "1:1", (1440, 1440)), ("720p", "9:16", (720, 1280))],
)
def test_the_video_has_the_requested_size_and_length_and_tokens_follow_bytedances_formula(
    seedance_api: Api, resolution: str, ratio: str, size: tuple[int, int]
) -> None:
    task_id = _create(seedance_api, _body(resolution=resolution, ratio=ratio, duration=6))
    task = _finished(seedance_api, task_id)
    width, height = size
    tokens = round(width * height * 24 * 6 / 1024)
    assert task["usage"] == {"completion_tokens": tokens, "total_tokens": tokens}
    seconds, *frame, _ = probe(call("GET", task["content"]["video_url"], token=None).body)
    assert seconds == pytest.approx(6, abs=0.3)
    assert tuple(frame) == size


def test_defaults_are_720p_16_9_and_five_seconds(seedance_api: Api) -> None:
    task = seedance_api.get(f"{TASKS}/{_create(seedance_api)}").json()
    assert (task["resolution"], task["ratio"], task["duration"]) == ("720p", "16:9", 5)


def test_the_last_frame_is_served_when_asked_for(seedance_api: Api) -> None:
    task = _finished(seedance_api, _create(seedance_api, _body(return_last_frame=True)))
    frame = call("GET", task["content"]["last_frame_url"], token=None)
    assert (frame.status, frame.headers["Content-Type"]) == (200, "image/png")
    assert Image.open(io.BytesIO(frame.body)).size == (1280, 720)


def test_a_missing_or_wrong_key_is_an_authentication_error(seedance_api: Api) -> None:
    error = _assert_error(seedance_api.get(TASKS, token=None), 401, "AuthenticationError")
    assert error["type"] == "Unauthorized"
    seedance_api.control("config", {"accepted_api_keys": ["sk-right"]})
    _assert_error(seedance_api.post(TASKS, _body()), 401, "AuthenticationError")
    assert seedance_api.post(TASKS, _body(), token="sk-right").status == 200


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"content": [{"type": "text", "text": "x"}]}, "MissingParameter", "model"),
        ({"model": MODEL}, "MissingParameter", "content"),
        ({"model": MODEL, "content": []}, "InvalidParameter", "content"),
        (
            {"model": MODEL, "content": [_image(_data_url(image_bytes(), "image/png"))]},
            "InvalidParameter",
            "content",
        ),
        (
            {
                "model": MODEL,
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            "InvalidParameter",
            "content",
        ),
        (
            {"model": MODEL, "content": [{"type": "text", "text": " "}]},
            "InvalidParameter",
            "content[0]",
        ),
        ({"model": MODEL, "content": [{"type": "prompt"}]}, "InvalidParameter", "content[0].type"),
        (_body(duration=3), "InvalidParameter", "duration"),
        (_body(duration=16), "InvalidParameter", "duration"),
        (_body(duration="5"), "InvalidParameter", "duration"),
        (_body(duration=5.0), "InvalidParameter", "duration"),
        (_body(duration=True), "InvalidParameter", "duration"),
        (_body(resolution="4k"), "InvalidParameter", "resolution"),
        (_body(ratio="2:1"), "InvalidParameter", "ratio"),
        (_body(seed=2**32), "InvalidParameter", "seed"),
        (_body(watermark="no"), "InvalidParameter", "watermark"),
        (_body(callback_url="ftp://x"), "InvalidParameter", "callback_url"),
        (_body(prompt_extend=True), "InvalidParameter", "prompt_extend"),
        (
            _body("x", {"type": "image_url", "image_url": {"url": "https://x/y.png"}}),
            "InvalidParameter",
            "content[1]",
        ),
        (
            _body("x", {**_image("https://x/y.png"), "role": "first_frame"}),
            "InvalidParameter",
            "content[1].role",
        ),
        (
            _body(
                "x",
                {"type": "image_url", "image_url": "https://x/y.png", "role": "reference_image"},
            ),
            "InvalidParameter",
            "content[1].image_url",
        ),
    ],
)
def test_a_bad_create_is_a_400_with_a_plain_message(
    seedance_api: Api, body: dict, code: str, param: str
) -> None:
    error = _assert_error(seedance_api.post(TASKS, body), 400, code, param)
    assert error["type"] == "BadRequest"
    assert f"`{param}`" in error["message"]
    assert seedance_api.control("state")["tasks"] == 0


def test_an_unknown_model_is_not_found(seedance_api: Api) -> None:
    reply = seedance_api.post(TASKS, {**_body(), "model": "seedance-3"})
    _assert_error(reply, 404, "InvalidEndpointOrModel.NotFound", "model")


def test_a_body_that_is_not_json_is_refused(seedance_api: Api) -> None:
    reply = httpx.post(
        seedance_api.base + TASKS,
        content=b"{not json",
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "InvalidParameter"


def test_references_come_by_url_or_as_data_urls(seedance_api: Api, local_server, clip) -> None:
    local_server.files["/mina.png"] = image_bytes(color=(32, 192, 64))
    local_server.files["/pip.mp4"] = clip(3.0)
    body = _body(
        "Mina (image 1) waves at Otto (image 2) and Pip (video 1).",
        _image(f"{local_server.url}/mina.png"),
        _image(_data_url(image_bytes(color=(48, 64, 208)), "image/png")),
        _video(f"{local_server.url}/pip.mp4"),
    )
    task = _finished(seedance_api, _create(seedance_api, body))
    assert task["status"] == "succeeded"
    assert call("GET", task["content"]["video_url"], token=None).status == 200


@pytest.mark.parametrize(
    ("item", "param"),
    [
        (_image("http://127.0.0.1:9/missing.png"), "content[1].image_url.url"),
        (_image("file:///etc/passwd"), "content[1].image_url.url"),
        (_image("data:image/png;base64,@@@"), "content[1].image_url.url"),
        (_image(_data_url(b"GIF89a not allowed", "image/gif")), "content[1].image_url"),
        (_video(_data_url(b"not a video", "video/mp4")), "content[1].video_url"),
    ],
)
def test_unreadable_references_are_refused(seedance_api: Api, item: dict, param: str) -> None:
    _assert_error(seedance_api.post(TASKS, _body("x", item)), 400, "InvalidParameter", param)


def test_reference_limits(seedance_api: Api, clip) -> None:
    image = _image(_data_url(image_bytes(), "image/png"))
    assert seedance_api.post(TASKS, _body("x", *[image] * 9)).status == 200
    _assert_error(seedance_api.post(TASKS, _body("x", *[image] * 10)), 400, "InvalidParameter")
    short = _video(_data_url(clip(1.0), "video/mp4"))
    _assert_error(
        seedance_api.post(TASKS, _body("x", short)), 400, "InvalidParameter", "content[1].video_url"
    )
    eight = _video(_data_url(clip(8.0), "video/mp4"))
    error = _assert_error(
        seedance_api.post(TASKS, _body("x", eight, eight)), 400, "InvalidParameter"
    )
    assert "15 s in all" in error["message"]
    three = _video(_data_url(clip(3.0), "video/mp4"))
    assert seedance_api.post(TASKS, _body("x", three, three, three)).status == 200
    _assert_error(
        seedance_api.post(TASKS, _body("x", three, three, three, three)), 400, "InvalidParameter"
    )


def test_the_list_is_newest_first_filtered_and_paged(seedance_api: Api) -> None:
    done = _create(seedance_api)
    _finished(seedance_api, done)
    slow = _create(seedance_api, _body("Slow [[emulate:latency=600]]"))
    other = _create(
        seedance_api,
        {
            **_body("Also slow [[emulate:latency=600]]"),
            "model": "dreamina-seedance-2-0-fast-260128",
        },
    )

    listed = seedance_api.get(TASKS).json()
    assert set(listed) == {"items", "total"}
    assert [t["id"] for t in listed["items"]] == [other, slow, done]
    assert listed["total"] == 3

    def ids(query: str) -> list[str]:
        reply = seedance_api.get(f"{TASKS}?{query}")
        assert reply.status == 200, reply.body
        return [t["id"] for t in reply.json()["items"]]

    assert ids("filter.status=succeeded") == [done]
    assert ids("status=queued") == [other, slow]
    assert ids(f"filter.task_ids={done},{slow}") == [slow, done]
    assert ids(f"filter.model={MODEL}") == [slow, done]
    assert ids("page_size=2") == [other, slow]
    assert ids("page_size=2&page_num=2") == [done]
    page = seedance_api.get(f"{TASKS}?page_size=1&page_num=3").json()
    assert ([t["id"] for t in page["items"]], page["total"]) == ([done], 3)

    _assert_error(seedance_api.get(f"{TASKS}?page_size=0"), 400, "InvalidParameter", "page_size")
    _assert_error(seedance_api.get(f"{TASKS}?filter.status=done"), 400, "InvalidParameter")


def test_the_list_covers_seven_days(seedance_api: Api) -> None:
    _create(seedance_api)
    seedance_api.control("clock", {"advance_seconds": 7 * 24 * 3600 + 1})
    assert seedance_api.get(TASKS).json() == {"items": [], "total": 0}


def test_delete_cancels_a_queued_task_and_deletes_a_finished_one(seedance_api: Api) -> None:
    queued = _create(seedance_api, _body("Later [[emulate:latency=600]]"))
    reply = seedance_api.delete(f"{TASKS}/{queued}")
    assert (reply.status, reply.json()) == (200, {})
    cancelled = seedance_api.get(f"{TASKS}/{queued}").json()
    assert cancelled["status"] == "cancelled"
    assert "content" not in cancelled
    _assert_error(seedance_api.delete(f"{TASKS}/{queued}"), 409, "OperationDenied.InvalidState")

    finished = _finished(seedance_api, _create(seedance_api))
    assert seedance_api.delete(f"{TASKS}/{finished['id']}").status == 200
    _assert_error(seedance_api.get(f"{TASKS}/{finished['id']}"), 404, "ResourceNotFound")
    assert call("GET", finished["content"]["video_url"], token=None).status == 404
    _assert_error(seedance_api.delete(f"{TASKS}/{finished['id']}"), 404, "ResourceNotFound")


def test_a_running_task_cannot_be_cancelled(seedance_api: Api) -> None:
    task_id = _create(seedance_api, _body("Long [[emulate:latency=600]]"))
    seedance_api.control("clock", {"advance_seconds": 100})  # past the queue, into the work
    assert seedance_api.get(f"{TASKS}/{task_id}").json()["status"] == "running"
    error = _assert_error(
        seedance_api.delete(f"{TASKS}/{task_id}"), 409, "OperationDenied.InvalidState"
    )
    assert "running" in error["message"]
    assert seedance_api.get(f"{TASKS}/{task_id}").json()["status"] == "running"


def test_an_unknown_task_is_not_found(seedance_api: Api) -> None:
    _assert_error(seedance_api.get(f"{TASKS}/cgt-missing"), 404, "ResourceNotFound")
    _assert_error(seedance_api.get("/contents/nowhere"), 404, "ResourceNotFound")


def test_a_rate_limit_answers_429_with_retry_after(seedance_api: Api) -> None:
    seedance_api.control("faults", {"faults": [{"op": "create", "kind": "429", "retry_after": 2}]})
    limited = seedance_api.post(TASKS, _body())
    error = _assert_error(limited, 429, "RateLimitExceeded")
    assert error["type"] == "TooManyRequests"
    assert limited.headers["Retry-After"] == "2"
    assert seedance_api.post(TASKS, _body()).status == 200

    seedance_api.control("config", {"rate_limit_per_minute": 1})
    assert seedance_api.get(TASKS).status == 200
    limited = seedance_api.get(TASKS)
    _assert_error(limited, 429, "RateLimitExceeded")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_an_exhausted_quota_is_a_429_without_retry_after(seedance_api: Api) -> None:
    seedance_api.control("faults", {"faults": [{"op": "create", "kind": "quota"}]})
    reply = seedance_api.post(TASKS, _body())
    error = _assert_error(reply, 429, "QuotaExceeded")
    assert "quota" in error["message"]
    assert "Retry-After" not in reply.headers


def test_server_errors_are_injected_per_operation(seedance_api: Api) -> None:
    task_id = _create(seedance_api)
    seedance_api.control("faults", {"faults": [{"op": "retrieve", "kind": "500"}]})
    error = _assert_error(seedance_api.get(f"{TASKS}/{task_id}"), 500, "InternalServiceError")
    assert error["type"] == "InternalServerError"
    assert seedance_api.get(f"{TASKS}/{task_id}").status == 200


def test_an_outage_answers_503_on_every_api_route(seedance_api: Api) -> None:
    finished = _finished(seedance_api, _create(seedance_api))
    seedance_api.control("config", {"outage": True})
    for reply in (
        seedance_api.post(TASKS, _body()),
        seedance_api.get(TASKS),
        seedance_api.get(f"{TASKS}/{finished['id']}"),
        seedance_api.delete(f"{TASKS}/{finished['id']}"),
        seedance_api.get(TASKS, token=None),  # before the key check, as a load balancer would
    ):
        _assert_error(reply, 503, "ServiceUnavailable")
    # The file host is not the API: links already handed out keep working.
    assert call("GET", finished["content"]["video_url"], token=None).status == 200
    seedance_api.control("config", {"outage": False})
    assert seedance_api.get(TASKS).status == 200


def test_moderation_fails_the_task_with_the_output_check_code(seedance_api: Api) -> None:
    task = _finished(seedance_api, _create(seedance_api, _body("Storm [[emulate:moderation]]")))
    assert task["status"] == "failed"
    assert task["error"]["code"] == "OutputVideoSensitiveContentDetected"
    assert task["error"]["message"]
    assert "content" not in task
    assert "usage" not in task

    seedance_api.control("faults", {"faults": [{"op": "create", "kind": "moderation"}]})
    faulted = _finished(seedance_api, _create(seedance_api))
    assert faulted["error"]["code"] == "OutputVideoSensitiveContentDetected"


def test_a_refused_prompt_fails_the_input_check_at_create(seedance_api: Api) -> None:
    reply = seedance_api.post(TASKS, _body("Something [[emulate:refuse]]"))
    _assert_error(reply, 400, "InputTextSensitiveContentDetected")
    assert seedance_api.control("state")["tasks"] == 0


def test_a_failed_generation_says_why(seedance_api: Api) -> None:
    task = _finished(seedance_api, _create(seedance_api, _body("x [[emulate:fail]]")))
    assert (task["status"], task["error"]["code"]) == ("failed", "InternalServiceError")


def test_result_links_expire_after_24_hours_with_object_storages_403(seedance_api: Api) -> None:
    task = _finished(seedance_api, _create(seedance_api))
    url = task["content"]["video_url"]
    seedance_api.control("clock", {"advance_seconds": 23 * 3600})
    assert call("GET", url, token=None).status == 200
    seedance_api.control("clock", {"advance_seconds": 3600})
    expired = call("GET", url, token=None)
    assert expired.status == 403
    assert b"<Code>AccessDenied</Code>" in expired.body
    assert call("GET", f"{seedance_api.emulator.url}/files/cgt-nope.mp4").status == 404


def test_a_dropped_create_is_logged_and_the_task_still_completes(seedance_api: Api) -> None:
    seedance_api.control(
        "faults", {"faults": [{"op": "create", "kind": "timeout", "timeout_seconds": 0.5}]}
    )
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        seedance_api.post(TASKS, _body(), timeout=0.2)
    deadline = time.monotonic() + 10
    while not (entries := seedance_api.control("log")["entries"]):
        assert time.monotonic() < deadline, "the create never reached the log"
        time.sleep(0.02)
    assert [(e["op"], e["status"], e.get("dropped")) for e in entries] == [("create", None, True)]
    task_id = entries[0]["job_id"]
    assert [t["id"] for t in seedance_api.get(TASKS).json()["items"]] == [task_id]
    assert _finished(seedance_api, task_id)["status"] == "succeeded"


def test_reset_keeps_the_24_hour_links(seedance_api: Api) -> None:
    _create(seedance_api)
    seedance_api.control("reset", {})
    state = seedance_api.control("state")
    assert (state["emulator"], state["tasks"]) == ("seedance", 0)
    assert state["config"]["asset_ttl_seconds"] == 24 * 3600
    assert state["config"]["latency_seconds"] == 0.3  # the fixture's
