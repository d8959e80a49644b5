"""The Kling emulator over HTTP: signed tokens, the envelope, tasks, elements, links, callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time

import av
import pytest

from jobs.emulators.render import render_video
from tests.jobs.emulators.conftest import Reply, call
from tests.jobs.emulators.fixtures_kling import kling_emulator  # noqa: F401 - used by name
from tests.samples import image_bytes

VIDEOS = "/v1/videos/omni-video"
ELEMENTS = "/v1/general/advanced-custom-elements"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(access: str = "ak-test", secret: str | None = None, *, exp=None, nbf=None) -> str:
    """A Kling API token written here from RFC 7519, not with the adapter's code."""
    now = int(time.time())
    claims = {
        "iss": access,
        "exp": now + 1800 if exp is None else exp,
        "nbf": now - 5 if nbf is None else nbf,
    }
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    key = (access if secret is None else secret).encode()
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(signature)}"


class Kling:
    def __init__(self, emulator, access: str = "ak-test", secret: str | None = None) -> None:
        self.emulator, self.access, self.secret = emulator, access, secret

    def get(self, path: str, **kwargs) -> Reply:
        kwargs.setdefault("token", token(self.access, self.secret))
        return call("GET", self.emulator.url + path, **kwargs)

    def post(self, path: str, body: dict, **kwargs) -> Reply:
        kwargs.setdefault("token", token(self.access, self.secret))
        return call("POST", self.emulator.url + path, json_body=body, **kwargs)

    def control(self, name: str, body: dict) -> None:
        reply = call("POST", f"{self.emulator.url}/_emulator/{name}", json_body=body, token=None)
        assert reply.status == 200, reply.body

    def data(self, reply: Reply):
        assert reply.status == 200, reply.body
        envelope = reply.json()
        assert set(envelope) == {"code", "message", "request_id", "data"}
        assert envelope["code"] == 0
        return envelope["data"]

    def create(self, **fields) -> dict:
        body = {"model_name": "kling-v3-omni", "prompt": "A lighthouse at dusk.", "mode": "std"}
        body |= {"aspect_ratio": "16:9", "duration": "3", **fields}
        return self.data(self.post(VIDEOS, body))

    def wait(self, path: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            task = self.data(self.get(path))
            if task["task_status"] in ("succeed", "failed"):
                return task
            assert time.monotonic() < deadline, task
            time.sleep(0.05)

    def element(self, name: str = "Mina", color=(200, 30, 30)) -> dict:
        images = [
            base64.b64encode(image_bytes(size=(400, 400), color=color)).decode() for _ in range(2)
        ]
        body = {
            "element_name": name,
            "element_description": "A red-haired pilot",
            "reference_type": "image_refer",
            "element_image_list": {
                "frontal_image": images[0],
                "refer_images": [{"image_url": images[1]}],
            },
        }
        task = self.data(self.post(ELEMENTS, body))
        done = self.wait(f"{ELEMENTS}/{task['task_id']}")
        assert done["task_status"] == "succeed", done
        return done["task_result"]["elements"][0]


@pytest.fixture
def kling(kling_emulator) -> Kling:  # noqa: F811 - the fixture imported above
    return Kling(kling_emulator)


def _error(reply: Reply, status: int, code: int) -> str:
    assert reply.status == status, reply.body
    body = reply.json()
    assert set(body) == {"code", "message", "request_id"}
    assert body["code"] == code
    return body["message"]


def test_a_task_goes_submitted_processing_succeed_and_its_video_plays(kling):
    created = kling.create(prompt="Gulls [[emulate:latency=100]]", external_task_id="mine-1")
    assert created["task_status"] == "submitted"
    assert created["task_info"] == {"external_task_id": "mine-1"}
    assert created["created_at"] > 10**12  # milliseconds
    path = f"{VIDEOS}/{created['task_id']}"
    kling.control("clock", {"advance_seconds": 20})
    assert kling.data(kling.get(path))["task_status"] == "processing"
    kling.control("clock", {"advance_seconds": 100})
    task = kling.data(kling.get(f"{VIDEOS}/mine-1"))  # by our own id too
    assert task["task_status"] == "succeed"
    (video,) = task["task_result"]["videos"]
    assert video["duration"] == "3"
    reply = call("GET", video["url"], token=None)
    with av.open(io.BytesIO(reply.body)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: None, 1001),  # no Authorization at all
        (lambda: "not-a-jwt", 1002),
        (lambda: token(secret="the-wrong-secret"), 1002),
        (lambda: token(nbf=int(time.time()) + 600), 1003),
        (lambda: token(exp=int(time.time()) - 1), 1004),
    ],
)
def test_a_bad_token_is_refused_with_klings_auth_code(kling, make, code):
    _error(kling.get(VIDEOS, token=make()), 401, code)


def test_a_configured_pair_is_checked_by_access_key_and_secret(kling):
    kling.control("config", {"accepted_api_keys": ["ak-live:sk-live"]})
    assert kling.get(VIDEOS, token=token("ak-live", "sk-live")).status == 200
    _error(kling.get(VIDEOS, token=token("ak-live", "ak-live")), 401, 1002)
    _error(kling.get(VIDEOS, token=token("ak-other", "sk-live")), 401, 1000)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"prompt": "x" * 2501}, "cannot exceed 2500"),
        ({"duration": 5}, "duration must be a string"),
        ({"duration": "16"}, "duration must be a string"),
        ({"mode": "hd"}, "mode must be one of std, pro"),
        ({"aspect_ratio": "4:3"}, "aspect_ratio must be one of"),
        ({"resolution": "720p"}, "unknown parameter resolution"),
        ({"prompt": "<<<element_1>>> waves."}, "does not match element_list"),
        ({"prompt": "Hi", "element_list": [{"element_id": 123}]}, "element_id 123 does not exist"),
    ],
)
def test_requests_kling_would_refuse_are_refused_in_its_words(kling, fields, words):
    body = {"model_name": "kling-v3-omni", "prompt": "x", "aspect_ratio": "16:9", **fields}
    assert words in _error(kling.post(VIDEOS, body), 400, 1201)


def test_an_unknown_model_is_a_missing_resource(kling):
    body = {"model_name": "kling-v9", "prompt": "x", "aspect_ratio": "16:9"}
    _error(kling.post(VIDEOS, body), 404, 1203)


def test_external_task_ids_are_unique_per_account(kling, kling_emulator):  # noqa: F811
    kling.create(external_task_id="take-1")
    message = _error(
        kling.post(VIDEOS, {"prompt": "x", "aspect_ratio": "1:1", "external_task_id": "take-1"}),
        400,
        1201,
    )
    assert "already exists" in message
    other = Kling(kling_emulator, access="ak-other")
    assert other.create(external_task_id="take-1")["task_info"]["external_task_id"] == "take-1"
    _error(other.get(f"{VIDEOS}/take-0"), 404, 1203)
    assert [t["task_info"]["external_task_id"] for t in other.data(other.get(VIDEOS))] == ["take-1"]


def test_rate_limits_quota_and_outages_answer_as_kling_does(kling):
    kling.control("faults", {"faults": [{"op": "create", "kind": "429", "retry_after": 4}]})
    reply = kling.post(VIDEOS, {"prompt": "x", "aspect_ratio": "16:9"})
    _error(reply, 429, 1302)
    assert reply.headers["Retry-After"] == "4"
    kling.control("faults", {"faults": [{"op": "create", "kind": "quota"}]})
    _error(kling.post(VIDEOS, {"prompt": "x", "aspect_ratio": "16:9"}), 429, 1102)
    kling.control("config", {"outage": True})
    _error(kling.get(VIDEOS), 503, 5001)


def test_moderation_fails_the_task_with_klings_risk_control_words(kling):
    task = kling.wait(f"{VIDEOS}/{kling.create(prompt='Storm [[emulate:moderation]]')['task_id']}")
    assert task["task_status"] == "failed"
    assert task["task_status_msg"] == "Failure to pass the risk control system"
    assert task["task_result"] == {}


def test_an_element_is_made_by_a_task_and_then_cast_by_id(kling):
    mina = kling.element()
    assert isinstance(mina["element_id"], int)
    assert mina["element_name"] == "Mina"
    listed = kling.data(kling.get(ELEMENTS))
    assert listed[0]["task_result"]["elements"][0]["element_id"] == mina["element_id"]
    created = kling.create(
        prompt="<<<element_1>>> waves.", element_list=[{"element_id": mina["element_id"]}]
    )
    assert kling.wait(f"{VIDEOS}/{created['task_id']}")["task_status"] == "succeed"
    two = [{"element_id": mina["element_id"]}]
    message = _error(
        kling.post(
            VIDEOS,
            {"prompt": "<<<element_2>>>", "aspect_ratio": "16:9", "element_list": two},
        ),
        400,
        1201,
    )
    assert "<<<element_2>>>" in message


@pytest.mark.parametrize(
    ("images", "words"),
    [
        ({"frontal_image": "QUJD", "refer_images": []}, "refer_images must hold 1 to 3"),
        (
            {"frontal_image": "data:image/png;base64,QUJD", "refer_images": [{"image_url": "x"}]},
            "must not carry a prefix",
        ),
    ],
)
def test_an_image_element_needs_a_frontal_picture_and_other_views(kling, images, words):
    body = {
        "element_name": "Mina",
        "element_description": "x",
        "reference_type": "image_refer",
        "element_image_list": images,
    }
    assert words in _error(kling.post(ELEMENTS, body), 400, 1201)


def test_element_pictures_are_checked_for_size(kling):
    small = base64.b64encode(image_bytes(size=(200, 200))).decode()
    body = {
        "element_name": "Mina",
        "element_description": "x",
        "reference_type": "image_refer",
        "element_image_list": {"frontal_image": small, "refer_images": [{"image_url": small}]},
    }
    assert "at least 300px" in _error(kling.post(ELEMENTS, body), 400, 1201)


def test_a_video_element_is_fetched_and_must_be_a_3_to_8_s_1080p_clip(kling, local_server):
    local_server.files["/mina.mp4"] = render_video(
        prompt="mina", seconds=3.0, width=1920, height=1080, fps=4
    ).video
    local_server.files["/small.mp4"] = render_video(
        prompt="mina", seconds=3.0, width=320, height=180, fps=4
    ).video

    def body(path: str) -> dict:
        return {
            "element_name": "Mina",
            "element_description": "x",
            "reference_type": "video_refer",
            "element_video_list": {"refer_videos": [{"video_url": local_server.url + path}]},
        }

    task = kling.data(kling.post(ELEMENTS, body("/mina.mp4")))
    assert kling.wait(f"{ELEMENTS}/{task['task_id']}")["task_status"] == "succeed"
    assert "1080P" in _error(kling.post(ELEMENTS, body("/small.mp4")), 400, 1201)


def test_result_links_are_signed_and_expire_after_30_days(kling):
    task = kling.wait(f"{VIDEOS}/{kling.create()['task_id']}")
    url = task["task_result"]["videos"][0]["url"]
    assert call("GET", url.replace("x-signature=", "x-signature=0"), token=None).status == 404
    kling.control("clock", {"advance_seconds": 30 * 24 * 3600 + 1})
    expired = call("GET", url, token=None)
    assert expired.status == 403
    assert b"AccessDenied" in expired.body


def test_a_finished_task_is_posted_unsigned_to_its_callback_url(kling, local_server):
    created = kling.create(callback_url=local_server.url + "/hook/token-123")
    (received,) = local_server.wait_for(1)
    assert received.path == "/hook/token-123"
    assert not any(name.startswith("webhook-") for name in received.headers)
    task = json.loads(received.body)
    assert task["task_id"] == created["task_id"]
    assert task["task_status"] == "succeed"
    assert task["task_result"]["videos"][0]["url"]


def test_lists_are_paged_within_klings_bounds(kling):
    first, second = kling.create(), kling.create()
    newest = kling.data(kling.get(f"{VIDEOS}?pageNum=1&pageSize=1"))
    assert [t["task_id"] for t in newest] == [second["task_id"]]
    older = kling.data(kling.get(f"{VIDEOS}?pageNum=2&pageSize=1"))
    assert [t["task_id"] for t in older] == [first["task_id"]]
    _error(kling.get(f"{VIDEOS}?pageSize=501"), 400, 1201)
