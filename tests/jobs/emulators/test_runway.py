"""The Runway emulator over HTTP (version header, each model's fields, tasks, throttling,
links, cancels), and the Runway adapter against it: no mocks, loopback only."""

from __future__ import annotations

import base64
import io
from decimal import Decimal

import av
import httpx
import pytest

from jobs.providers.base import (
    CharacterSource,
    GenerationRequest,
    ProviderError,
    ProviderJob,
    Reference,
    RegisteredCharacter,
)
from jobs.providers.runway import RunwayProvider
from tests.jobs.emulators.fixtures_runway import runway_emulator  # noqa: F401 - used by name
from tests.samples import image_bytes
from tests.support.emulators import emulator_control, emulator_log, emulator_state

VERSION = "2024-11-06"


def _data_uri(size=(320, 180), color=(200, 40, 40)) -> str:
    return "data:image/png;base64," + base64.b64encode(image_bytes(size=size, color=color)).decode()


class Runway:
    """Calls to the emulator as any Runway client makes them, with headers a test can vary."""

    def __init__(self, emulator) -> None:
        self.emulator = emulator

    def send(self, method: str, path: str, body=None, *, key="sk-test", version=VERSION):
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if version is not None:
            headers["X-Runway-Version"] = version
        return httpx.request(
            method, self.emulator.url + path, json=body, headers=headers, timeout=10
        )

    def create(self, **fields) -> str:
        body = {"model": "seedance2", "promptText": "A lighthouse at dusk.", **fields}
        reply = self.send("POST", "/v1/text_to_video", body)
        assert reply.status_code == 200, reply.text
        assert set(reply.json()) == {"id"}
        return reply.json()["id"]

    def task(self, task_id: str) -> dict:
        reply = self.send("GET", f"/v1/tasks/{task_id}")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def advance(self, seconds: float) -> None:
        emulator_control(self.emulator, "clock", {"advance_seconds": seconds})


@pytest.fixture
def api(runway_emulator) -> Runway:  # noqa: F811 - the fixture imported above
    return Runway(runway_emulator)


@pytest.fixture
def runway(runway_emulator):  # noqa: F811
    with RunwayProvider(base_url=runway_emulator.api_url, api_key="sk-test", timeout=5) as adapter:
        yield adapter, runway_emulator


def _refused(reply: httpx.Response, status: int = 400) -> dict:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    return body


def _issues(reply: httpx.Response) -> list[dict]:
    body = _refused(reply)
    assert body["docUrl"].startswith("https://docs.dev.runwayml.com/")
    assert all(set(issue) == {"code", "path", "message"} for issue in body["issues"])
    return body["issues"]


# --- The emulator -----------------------------------------------------------------------------


def test_a_task_is_pending_then_running_with_progress_then_succeeds_with_a_playable_video(api):
    task_id = api.create(promptText="Gulls [[emulate:latency=100]]", ratio="720:1280", duration=4)
    pending = api.task(task_id)
    assert pending["status"] == "PENDING"
    assert pending["createdAt"].endswith("Z")
    assert pending["estimatedCost"] == {"credits": 144.0}  # 36 credits a second, 4 s
    api.advance(20)
    running = api.task(task_id)
    assert running["status"] == "RUNNING"
    assert 0 < running["progress"] < 1
    api.advance(30)
    assert api.task(task_id)["progress"] > running["progress"]
    api.advance(60)
    done = api.task(task_id)
    assert done["status"] == "SUCCEEDED"
    assert done["cost"] == {"credits": 144}
    (link,) = done["output"]
    video = httpx.get(link).content
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (720, 1280)
        assert container.duration / av.time_base == pytest.approx(4, abs=0.2)


@pytest.mark.parametrize(
    ("version", "words"), [(None, "is missing"), ("2023-01-01", "is '2023-01-01'")]
)
def test_every_call_must_name_the_api_version(api, version, words):
    body = _refused(api.send("GET", "/v1/tasks/x", version=version))
    assert words in body["error"]
    assert "X-Runway-Version" in body["error"]


def test_a_missing_or_wrong_key_is_refused_with_401(api, runway_emulator):  # noqa: F811
    assert "Bearer" in _refused(api.send("GET", "/v1/tasks/x", key=None), 401)["error"]
    emulator_control(runway_emulator, "config", {"accepted_api_keys": ["key_right"]})
    assert "not valid" in _refused(api.send("GET", "/v1/tasks/x", key="key_wrong"), 401)["error"]
    assert api.send("GET", "/v1/tasks/x", key="key_right").status_code == 404


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"model": "gen5"}, ["model"], "Invalid discriminator value"),
        ({"model": "gen4_turbo"}, ["model"], "Invalid discriminator value"),  # image only
        ({"ratio": "1280x720"}, ["ratio"], "Invalid enum value"),
        ({"duration": 16}, ["duration"], "must be one of 4, 5"),
        ({"duration": "5"}, ["duration"], "not '5'"),
        ({"promptText": None}, ["promptText"], "Required"),  # left out
        ({"promptText": " "}, ["promptText"], "non-empty string"),
        ({"promptText": "x" * 3501}, ["promptText"], "at most 3500"),
        ({"prompt": "x"}, [], "Unrecognized key(s) in object: 'prompt'"),
        ({"references": [{"uri": _data_uri()}] * 10}, ["references"], "at most 9"),
        ({"references": [{"uri": _data_uri(), "tag": "Mina"}]}, ["references", 0], '{"uri"'),
        (
            {"promptText": "@Image2 waves.", "references": [{"uri": _data_uri()}]},
            ["promptText"],
            "@Image2 does not name",
        ),
        (
            {"references": [{"uri": "http://example.com/mina.png"}]},
            ["references", 0, "uri"],
            "Only HTTPS URLs are allowed.",
        ),
        (
            {"references": [{"uri": "https://203.0.113.9/mina.png"}]},
            ["references", 0, "uri"],
            "URLs must be hosted on a domain.",
        ),
        (
            {"references": [{"uri": "data:;base64,QUJD"}]},
            ["references", 0, "uri"],
            "must include the content type",
        ),
        (
            {"references": [{"uri": "data:image/png;base64,QUJD"}]},
            ["references", 0, "uri"],
            "not a JPEG, PNG or WebP",
        ),
    ],
)
def test_requests_runway_would_refuse_are_refused_with_its_issue_list(api, fields, path, words):
    body = {"model": "seedance2", "promptText": "A lighthouse.", **fields}
    body = {key: value for key, value in body.items() if value is not None}
    issues = _issues(api.send("POST", "/v1/text_to_video", body))
    assert any(issue["path"] == path and words in issue["message"] for issue in issues), issues


def test_each_model_takes_its_own_fields(api):
    gen45 = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720"}
    issues = _issues(api.send("POST", "/v1/text_to_video", gen45))
    assert {"code": "invalid_type", "path": ["duration"], "message": "Required"} in issues
    with_audio = {**gen45, "duration": 5, "audio": True}
    assert "'audio'" in _issues(api.send("POST", "/v1/text_to_video", with_audio))[0]["message"]
    frame = {"model": "gen4_turbo", "ratio": "1584:672", "duration": 2}
    bare = {**frame, "promptImage": [{"uri": _data_uri()}]}  # gen4_turbo needs the position
    assert _issues(api.send("POST", "/v1/image_to_video", bare))[0]["path"] == ["promptImage", 0]
    started = {**frame, "promptImage": [{"uri": _data_uri(), "position": "first"}]}
    reply = api.send("POST", "/v1/image_to_video", started)
    assert reply.status_code == 200, reply.text
    api.advance(5)
    done = api.task(reply.json()["id"])
    assert done["cost"] == {"credits": 10}  # 5 credits a second, 2 s
    with av.open(io.BytesIO(httpx.get(done["output"][0]).content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1584, 672)


def test_tasks_over_the_concurrency_limit_are_throttled_until_a_slot_frees(api, runway_emulator):  # noqa: F811
    emulator_control(runway_emulator, "config", {"concurrency": 1})
    first = api.create(promptText="First [[emulate:latency=100]]")
    second = api.create(promptText="Second [[emulate:latency=100]]")
    assert api.task(first)["status"] == "PENDING"
    throttled = api.task(second)
    assert throttled["status"] == "THROTTLED"
    assert throttled["estimatedCost"] == {"credits": 180.0}
    api.advance(60)
    assert (api.task(first)["status"], api.task(second)["status"]) == ("RUNNING", "THROTTLED")
    api.advance(45)  # the first has ended: the second has its slot
    assert api.task(first)["status"] == "SUCCEEDED"
    assert api.task(second)["status"] == "PENDING"
    assert emulator_state(runway_emulator)["concurrency"] == 1
    emulator_control(runway_emulator, "reset", {})
    assert emulator_state(runway_emulator)["concurrency"] is None
    reply = httpx.post(f"{runway_emulator.url}/_emulator/config", json={"concurrency": 0})
    assert reply.status_code == 400


def test_the_rate_limit_answers_429_with_retry_after(api, runway_emulator):  # noqa: F811
    emulator_control(runway_emulator, "config", {"rate_limit_per_minute": 1})
    api.create()
    reply = api.send("POST", "/v1/text_to_video", {"model": "seedance2", "promptText": "x"})
    _refused(reply, 429)
    assert 1 <= int(reply.headers["Retry-After"]) <= 60


def test_an_outage_answers_503(api, runway_emulator):  # noqa: F811
    emulator_control(runway_emulator, "config", {"outage": True})
    assert "shedding load" in _refused(api.send("GET", "/v1/tasks/x"), 503)["error"]


def test_moderation_fails_the_task_before_it_runs_and_charges_nothing(api):
    task = api.task(api.create(promptText="Storm [[emulate:moderation]] [[emulate:latency=100]]"))
    assert task["status"] == "PENDING"
    api.advance(20)  # a tenth of the latency: where the queue ends and the work would begin
    task = api.task(task["id"])
    assert task["status"] == "FAILED"
    assert task["failureCode"] == "SAFETY.INPUT.TEXT"
    assert task["failure"]
    assert task["cost"] == {"credits": 0}
    assert "output" not in task


def test_links_expire_and_reading_the_task_again_gives_a_fresh_one(api):
    task_id = api.create()
    api.advance(5)
    old = api.task(task_id)["output"][0]
    assert httpx.get(old).status_code == 200
    assert httpx.get(old.replace("sig=", "sig=0")).status_code == 404
    api.advance(24 * 3600 + 1)
    expired = httpx.get(old)
    assert expired.status_code == 403
    assert b"AccessDenied" in expired.content
    fresh = api.task(task_id)["output"][0]
    assert fresh != old
    assert httpx.get(fresh).status_code == 200


def test_delete_cancels_a_task_under_way_and_deletes_a_finished_one(api):
    waiting = api.create(promptText="Later [[emulate:latency=100]]")
    assert api.send("DELETE", f"/v1/tasks/{waiting}").status_code == 204
    assert api.task(waiting) == {
        "id": waiting,
        "status": "CANCELLED",
        "createdAt": api.task(waiting)["createdAt"],
        "cost": {"credits": 0},  # refunded: it had not started
    }
    running = api.create(promptText="Long [[emulate:latency=100]]")
    api.advance(50)
    assert api.send("DELETE", f"/v1/tasks/{running}").status_code == 204
    assert api.task(running)["cost"] == {"credits": 180}  # cancelled while RUNNING: charged
    done = api.create()
    api.advance(5)
    link = api.task(done)["output"][0]
    assert api.send("DELETE", f"/v1/tasks/{done}").status_code == 204
    assert api.task(done)["status"] == "CANCELLED"
    assert api.task(done)["cost"] == {"credits": 180}  # a deleted video is still paid for
    assert httpx.get(link).status_code == 404
    assert "not found" in _refused(api.send("DELETE", "/v1/tasks/nope"), 404)["error"]


# --- The adapter ------------------------------------------------------------------------------


def _picture(color=(200, 40, 40), role: str = "") -> Reference:
    data = image_bytes(size=(320, 180), color=color)
    return Reference(kind="image", data=data, content_type="image/png", role=role)


def _request(prompt: str = "Harbour at dawn.", **fields) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, **{"seconds": 5, "size": "1280x720", **fields})


def _finished(adapter: RunwayProvider, emulator, job: ProviderJob) -> ProviderJob:
    emulator_control(emulator, "clock", {"advance_seconds": 120})
    return adapter.fetch(job.provider_job_id)


def test_the_adapter_makes_a_video_and_reports_the_credits_charged(runway):
    adapter, emulator = runway
    assert adapter._headers() == {"Authorization": "Bearer sk-test", "X-Runway-Version": VERSION}
    job, sent = adapter.submit(_request(seconds=6, size="960x960"))
    assert sent == {
        "model": "seedance2",
        "promptText": "Harbour at dawn.",
        "ratio": "960:960",
        "duration": 6,
        "audio": True,
    }
    assert job.status == "queued"
    assert job.poll_after == 5.0  # Runway: no updates more often than every five seconds
    done = _finished(adapter, emulator, job)
    assert (done.status, done.progress) == ("succeeded", 100)
    assert done.usage == Decimal(216)  # 36 credits a second, 6 s
    assert done.created_at is not None
    data = b"".join(adapter.stream_result(done))
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (960, 960)
        assert container.duration / av.time_base == pytest.approx(6, abs=0.2)
    assert [entry["path"] for entry in emulator_log(emulator, "create")] == ["/v1/text_to_video"]


def test_characters_travel_as_references_named_by_their_tags(runway):
    adapter, emulator = runway
    with pytest.raises(ProviderError) as caught:
        adapter.register_character(CharacterSource(name="Mina"))
    assert caught.value.kind == "invalid"
    labels = [adapter.reference_label("image", n) for n in (1, 2)]
    assert labels == ["@Image1", "@Image2"]
    mentions = {
        "character:1": RegisteredCharacter(external_id=labels[0], name="Mina"),
        "character:2": RegisteredCharacter(external_id=labels[1], name="Captain Rae"),
    }
    prompt = adapter.render_mentions("{{character:1}} waves at {{character:2}}.", mentions)
    assert prompt == "Mina (@Image1) waves at Captain Rae (@Image2)."
    pictures = (_picture(), _picture((40, 40, 200)))
    job, sent = adapter.submit(_request(prompt, references=pictures))
    assert sent["promptText"] == prompt
    size = len(pictures[0].data)
    assert sent["references"] == [{"uri": f"<image/png, {size} bytes>"}] * 2
    described = adapter.describe_sent(sent)
    assert described.prompt == prompt
    assert described.inputs[:2] == (
        f"@Image1: <image/png, {size} bytes>",
        f"@Image2: <image/png, {size} bytes>",
    )
    assert _finished(adapter, emulator, job).status == "succeeded"
    with pytest.raises(ValueError, match="image references only"):
        adapter.reference_label("video", 1)


def test_a_first_frame_goes_to_image_to_video(runway_emulator):  # noqa: F811
    with RunwayProvider(
        base_url=runway_emulator.api_url, api_key="k", model="gen4.5", timeout=5
    ) as adapter:
        frame = _picture(role="first_frame")
        job, sent = adapter.submit(_request("The boat sails.", references=(frame,)))
        assert sent["promptImage"] == [
            {"uri": f"<image/png, {len(frame.data)} bytes>", "position": "first"}
        ]
        assert "audio" not in sent
        done = _finished(adapter, runway_emulator, job)
        assert done.usage == Decimal(60)  # gen4.5: 12 credits a second
    assert emulator_log(runway_emulator, "create")[0]["path"] == "/v1/image_to_video"


def test_prices_are_credits_per_second_of_the_accounts_model(runway):
    adapter, emulator = runway
    caps = adapter.capabilities
    assert (caps.pricing_unit, caps.price) == ("credit", Decimal("0.01"))
    assert adapter.usage_estimate(seconds=5, size="1280x720") == Decimal(180)
    assert adapter.estimate(seconds=5) == Decimal("1.80")
    rates = {"gen4.5": 12, "gen4_turbo": 5, "veo3.1": 40, "veo3.1_fast": 15}
    for model, rate in rates.items():
        other = RunwayProvider(base_url=emulator.api_url, api_key="k", model=model)
        with other:
            assert other.usage_estimate(seconds=8, size="1280x720") == Decimal(rate * 8)
    veo = RunwayProvider.capabilities_for("veo3.1")
    assert (veo.durations, veo.sizes) == (
        (4, 6, 8),
        ("1280x720", "720x1280", "1080x1920", "1920x1080"),
    )
    assert RunwayProvider.capabilities_for("gen4.5").max_characters == 0
    assert (caps.max_references, caps.max_characters) == (9, 9)
    assert (caps.webhooks, caps.can_list_jobs, caps.can_cancel) == (False, False, True)
    assert adapter.list_recent(since=0) == []


def test_validate_gives_plain_reasons(runway, runway_emulator):  # noqa: F811
    adapter, _ = runway
    ten = tuple(_picture() for _ in range(10))
    problems = adapter.validate(
        GenerationRequest(prompt="x", seconds=16, size="640x480", references=ten)
    )
    assert problems[:3] == [
        "Runway makes videos of 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 seconds; "
        "this scene asks for 16.",
        "Runway cannot make 640x480; it makes " + ", ".join(adapter.capabilities.sizes) + ".",
        "Runway takes at most 9 reference image(s) per video; this request has 10.",
    ]
    assert adapter.validate(_request("Mina (@Image2).", references=(_picture(),))) == [
        "The prompt names @Image2, but this request has 1 reference image(s)."
    ]
    assert adapter.validate(_request(kind="remix")) == ["Runway cannot remix a video."]
    # A quote knows pictures by address alone; one Runway cannot fetch is refused when sent.
    plain_http = _request(
        "Mina (@Image1).",
        references=(Reference(kind="image", url="http://files.example/mina.png"),),
    )
    assert adapter.validate(plain_http) == []
    with pytest.raises(ProviderError) as caught:
        adapter.submit(plain_http)
    assert (caught.value.kind, caught.value.code) == ("invalid", "reference_unreachable")
    assert "https address" in caught.value.message
    with RunwayProvider(base_url=runway_emulator.api_url, api_key="k", model="gen4_turbo") as turbo:
        assert turbo.validate(_request()) == [
            "Runway gen4_turbo makes a video only from a first frame; this request has none."
        ]
        assert turbo.validate(_request(references=(_picture(),)))[-1].startswith(
            "Runway gen4_turbo takes no reference images, only a first frame"
        )
    with RunwayProvider(base_url=runway_emulator.api_url, api_key="k", model="gen9") as unknown:
        (problem,) = unknown.validate(_request())
        assert "no video model 'gen9'" in problem
        with pytest.raises(ProviderError) as caught:
            unknown.submit(_request())
        assert caught.value.kind == "invalid"
    assert emulator_state(runway_emulator)["counters"]["creates"] == 0


def test_runways_refusals_and_failures_are_classified(runway):
    adapter, emulator = runway
    broken = Reference(kind="image", data=b"not a picture", content_type="image/png")
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(references=(broken,)))
    assert (caught.value.kind, caught.value.status_code) == ("invalid", 400)
    assert "references.0.uri: The asset is not a JPEG, PNG or WebP image." in caught.value.message
    flagged = _finished(adapter, emulator, adapter.submit(_request("x [[emulate:moderation]]"))[0])
    assert (flagged.status, flagged.error_code) == ("failed", "moderation:SAFETY.INPUT.TEXT")
    assert flagged.usage is None
    failed = _finished(adapter, emulator, adapter.submit(_request("x [[emulate:fail]]"))[0])
    assert (failed.status, failed.error_code) == ("failed", "INTERNAL.BAD_OUTPUT.CODE01")
    emulator_control(emulator, "faults", {"faults": [{"op": "create", "kind": "quota"}]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request())
    assert caught.value.kind == "quota"
    emulator_control(emulator, "faults", {"faults": [{"op": "create", "kind": "500"}]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request())
    assert (caught.value.kind, caught.value.maybe_accepted) == ("unavailable", True)


def test_a_throttled_task_is_queued_and_running_progress_is_a_percentage(runway):
    adapter, emulator = runway
    emulator_control(emulator, "config", {"concurrency": 1})
    first, _ = adapter.submit(_request("First [[emulate:latency=100]]"))
    second, _ = adapter.submit(_request("Second [[emulate:latency=100]]"))
    throttled = adapter.fetch(second.provider_job_id)
    assert (throttled.status, throttled.raw["status"]) == ("queued", "THROTTLED")
    emulator_control(emulator, "clock", {"advance_seconds": 60})
    running = adapter.fetch(first.provider_job_id)
    assert running.status == "running"
    assert 0 < running.progress < 100


def test_cancel_stops_tasks_under_way_and_leaves_finished_ones(runway):
    adapter, emulator = runway
    waiting, _ = adapter.submit(_request("Later [[emulate:latency=100]]"))
    assert adapter.cancel(waiting.provider_job_id) is True
    assert adapter.fetch(waiting.provider_job_id).status == "cancelled"
    assert adapter.cancel(waiting.provider_job_id) is False
    done = _finished(adapter, emulator, adapter.submit(_request())[0])
    assert adapter.cancel(done.provider_job_id) is False  # Runway would delete it
    assert b"".join(adapter.stream_result(done))  # and it is still there
    assert adapter.cancel("00000000-0000-4000-8000-000000000000") is False
    deletes = emulator_log(emulator, "delete")
    assert [entry["status"] for entry in deletes] == [204]


def test_an_expired_link_is_renewed_and_a_deleted_video_is_gone(runway):
    adapter, emulator = runway
    done = _finished(adapter, emulator, adapter.submit(_request())[0])
    emulator_control(emulator, "clock", {"advance_seconds": 24 * 3600 + 1})
    assert httpx.get(done.video_url).status_code == 403
    with av.open(io.BytesIO(b"".join(adapter.stream_result(done)))) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    bare = ProviderJob(provider_job_id=done.provider_job_id, status="succeeded")
    assert b"".join(adapter.stream_result(bare))  # the download step may hold only the id
    with pytest.raises(ProviderError) as caught:
        b"".join(adapter.stream_result(done, "thumbnail"))
    assert caught.value.kind == "not_found"
    Runway(emulator).send("DELETE", f"/v1/tasks/{done.provider_job_id}")
    with pytest.raises(ProviderError) as caught:
        b"".join(adapter.stream_result(done))
    assert caught.value.kind == "not_found"
    assert "cancelled" in caught.value.message
