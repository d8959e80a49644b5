"""The Sora relay emulator over real HTTP: characters from URLs and tasks, @mentions, files."""

from __future__ import annotations

import re

import pytest

from jobs.emulators.render import padded_length
from tests.jobs.emulators.conftest import Api, call
from tests.support.probes import probe


def _done(task: dict) -> bool:
    return task["status"] in ("completed", "failed")


def _character(api: Api, local_server, clip, name: str = "Mira"):
    local_server.files["/mira.mp4"] = clip(3.0)
    return api.post("/sora/characters", {"video_url": f"{local_server.url}/mira.mp4", "name": name})


def _generate(api: Api, prompt: str, duration: int = 10) -> dict:
    reply = api.post("/sora/generate", {"prompt": prompt, "duration": duration})
    assert reply.status == 200, reply.body
    return reply.json()


def _assert_error(reply, status: int, code: str | None = None) -> None:
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"message", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code


def test_character_from_a_video_url(relay_api: Api, local_server, clip) -> None:
    reply = _character(relay_api, local_server, clip)
    assert reply.status == 200, reply.body
    character = reply.json()
    assert re.fullmatch(r"char_[a-z0-9]{9}", character["character_id"])
    assert (character["name"], character["description"]) == ("Mira", "")
    assert isinstance(character["created_at"], int)
    assert relay_api.get("/sora/characters").json() == {"characters": [character]}


@pytest.mark.parametrize("path", ["/missing.mp4", "/not-a-video.mp4"])
def test_character_needs_a_fetchable_video(relay_api: Api, local_server, path: str) -> None:
    local_server.files["/not-a-video.mp4"] = b"<html>nope</html>"
    reply = relay_api.post("/sora/characters", {"video_url": local_server.url + path, "name": "X"})
    _assert_error(reply, 400)


def test_character_url_must_be_http(relay_api: Api) -> None:
    reply = relay_api.post("/sora/characters", {"video_url": "file:///etc/passwd", "name": "X"})
    _assert_error(reply, 400, "invalid_video_url")
    _assert_error(relay_api.post("/sora/characters", {"name": "X"}), 400)


def test_generate_with_a_mention_and_download(relay_api: Api, local_server, clip) -> None:
    character = _character(relay_api, local_server, clip).json()
    task = _generate(relay_api, f"@{character['character_id']} walks into the bakery.")
    assert task["status"] == "queued"
    assert task["task_id"].startswith("task_")

    seen = set()
    done = relay_api.wait(
        f"/sora/tasks/{task['task_id']}", until=lambda t: seen.add(t["status"]) or _done(t)
    )
    assert seen <= {"queued", "processing", "completed"}
    assert done["status"] == "completed"
    assert done["progress"] == 100
    assert done["error"] is None
    assert done["video_url"].endswith(f"/files/{task['task_id']}.mp4")

    reply = call("GET", done["video_url"], token=None)  # a CDN-style link: no auth needed
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "video/mp4"
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    seconds, width, height, _ = probe(reply.body)
    assert seconds == pytest.approx(10, abs=0.3)
    assert (width, height) == (720, 1280)


def test_unknown_mention_is_refused(relay_api: Api) -> None:
    reply = relay_api.post("/sora/generate", {"prompt": "@char_abc123xyz waves", "duration": 10})
    _assert_error(reply, 400, "character_not_found")


@pytest.mark.parametrize("duration", [5, 10, 15])
def test_the_durations_the_relays_own_client_asks_for(relay_api: Api, duration) -> None:
    # The relay's published client generates 5 s by default and in its examples.
    assert _generate(relay_api, "a beach", duration=duration)["status"] in ("queued", "processing")


@pytest.mark.parametrize("duration", [8, 20, "10", None, True])
def test_only_the_app_durations(relay_api: Api, duration) -> None:
    reply = relay_api.post("/sora/generate", {"prompt": "a beach", "duration": duration})
    _assert_error(reply, 400)


def test_extract_a_character_from_a_completed_task(relay_api: Api) -> None:
    task = _generate(relay_api, "a red fox [[emulate:latency=60]]")
    early = relay_api.post("/sora/characters/extract", {"task_id": task["task_id"], "name": "Fox"})
    _assert_error(early, 400, "task_not_completed")
    missing = relay_api.post("/sora/characters/extract", {"task_id": "task_nope", "name": "Fox"})
    _assert_error(missing, 404)

    relay_api.control("clock", {"advance_seconds": 60})
    reply = relay_api.post("/sora/characters/extract", {"task_id": task["task_id"], "name": "Fox"})
    assert reply.status == 200, reply.body
    fox = reply.json()
    assert re.fullmatch(r"char_[a-z0-9]{9}", fox["character_id"])
    assert _generate(relay_api, f"@{fox['character_id']} and a hen", duration=15)


def test_failed_tasks_carry_a_message(relay_api: Api) -> None:
    task = _generate(relay_api, "someone famous [[emulate:moderation]]")
    failed = relay_api.wait(f"/sora/tasks/{task['task_id']}", until=_done)
    assert failed["status"] == "failed"
    assert isinstance(failed["error"], str)
    assert failed["error"]
    assert failed["video_url"] is None
    assert call("GET", f"{relay_api.emulator.url}/files/{task['task_id']}.mp4").status == 404


def test_padded_file_has_exactly_the_padded_length(relay_api: Api) -> None:
    task = _generate(relay_api, "waves")
    done = relay_api.wait(f"/sora/tasks/{task['task_id']}", until=_done)
    plain = call("GET", done["video_url"]).body
    relay_api.control("config", {"pad_video_bytes": 2 * 1024 * 1024 + 3})
    padded = call("GET", done["video_url"])
    assert len(padded.body) == int(padded.headers["Content-Length"])
    assert len(padded.body) == padded_length(plain, 2 * 1024 * 1024 + 3)
    assert probe(padded.body)[0] == pytest.approx(10, abs=0.3)


def test_relay_errors_auth_faults_and_outage(relay_api: Api) -> None:
    _assert_error(relay_api.get("/sora/characters", token=None), 401, "unauthorized")
    _assert_error(relay_api.get("/sora/tasks/task_nope"), 404, "task_not_found")

    relay_api.control("faults", {"faults": [{"op": "create", "kind": "429", "retry_after": 2}]})
    limited = relay_api.post("/sora/generate", {"prompt": "x", "duration": 10})
    _assert_error(limited, 429)
    assert limited.headers["Retry-After"] == "2"
    assert "retry-after-ms" not in limited.headers

    relay_api.control("config", {"outage": True})
    _assert_error(relay_api.post("/sora/generate", {"prompt": "x", "duration": 10}), 503)


def test_files_expire(relay_api: Api) -> None:
    task = _generate(relay_api, "waves")
    done = relay_api.wait(f"/sora/tasks/{task['task_id']}", until=_done)
    assert call("GET", done["video_url"]).status == 200
    relay_api.control("clock", {"advance_seconds": 3601})
    assert call("GET", done["video_url"]).status == 404
