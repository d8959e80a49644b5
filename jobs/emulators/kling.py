"""Kling's official API (PROVIDERS.md section 3): Omni video (kling-v3-omni) and elements.

What it holds to, as Kling does:
- Auth is a JWT per request (HS256; `iss` = access key, `exp`, `nbf`) signed with the
  secret key. The emulator knows a key pair from `accepted_api_keys` entries written
  "access:secret" (or a bare key, its own secret), from the `api_keys` it was built with,
  or else takes the access key as its own secret; a bad token answers 401 with Kling's
  service code (1001 empty, 1002 invalid, 1003 not yet valid, 1004 expired, 1000 unknown).
  Token times are wall-clock: advancing the emulator's clock does not expire tokens.
- Every answer is the envelope {code, message, request_id, data}; errors carry Kling's
  service codes with their HTTP statuses (1200s invalid, 1301 content, 1302 rate, 5000s).
- Tasks are `submitted`, `processing`, `succeed` or `failed`; times are milliseconds.
  A failed task says why in `task_status_msg` (moderation: Kling's risk-control words).
- `external_task_id` is unique per account: a repeat is refused.
- Elements (characters) are made by an asynchronous task of their own; a create may only
  name ready elements of its account, and <<<element_n>>> / <<<image_n>>> in the prompt
  must point into `element_list` / `image_list`.
- Results are real MP4s at signed links that expire (asset_ttl_seconds, 30 days by
  default); a terminal task is POSTed, unsigned, to its `callback_url`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from jobs.emulators.base import Emulator, retry_after_headers
from jobs.emulators.inputs import fetch, open_image, probe_video, sniff_image
from jobs.emulators.render import (
    CastMember,
    RenderedVideo,
    dominant_color,
    figures,
    first_frame,
    mp4_with_padding,
    padded_length,
    reference_picture,
    render_video,
)
from jobs.emulators.state import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Once,
    Store,
    Timeline,
    strip_markers,
    take_drift,
)
from jobs.emulators.webhooks import NotifiesWhenDone, WebhookSender, _Delivery
from jobs.emulators.wsgi import (
    ApiError,
    Request,
    Response,
    Router,
    bytes_response,
    json_response,
    stream_response,
)

MODELS = ("kling-v3-omni", "kling-video-o1")
DEFAULT_MODEL = "kling-video-o1"  # Omni's documented default when model_name is left out
CREATE_FIELDS = frozenset(
    {
        "model_name",
        "prompt",
        "negative_prompt",
        "image_list",
        "element_list",
        "mode",
        "aspect_ratio",
        "duration",
        "sound",
        "watermark_info",
        "callback_url",
        "external_task_id",
    }
)
ELEMENT_FIELDS = frozenset(
    {
        "element_name",
        "element_description",
        "reference_type",
        "element_image_list",
        "element_video_list",
        "element_voice_id",
        "tag_list",
        "callback_url",
        "external_task_id",
    }
)
FRAME_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("std", "16:9"): (1280, 720),
    ("std", "9:16"): (720, 1280),
    ("std", "1:1"): (960, 960),
    ("pro", "16:9"): (1920, 1080),
    ("pro", "9:16"): (1080, 1920),
    ("pro", "1:1"): (1440, 1440),
}
MODES, RATIOS = ("std", "pro"), ("16:9", "9:16", "1:1")
DURATIONS = range(3, 16)
MAX_PROMPT = 2500
MAX_INPUTS = 7  # images + elements, without a reference video
IMAGE_MAX_BYTES, IMAGE_MIN_SIDE, IMAGE_RATIO = 10 * 1024 * 1024, 300, 2.5
ELEMENT_REFER_IMAGES = (1, 3)
ELEMENT_CLIP_SECONDS, CLIP_TOLERANCE = (3.0, 8.0), 0.25
ELEMENT_NAME_MAX, ELEMENT_DESCRIPTION_MAX = 20, 100
ELEMENT_LATENCY_SHARE = 0.5  # an element is ready in half the time a video takes
PAGE_NUMBERS, PAGE_SIZES = (1, 1000), (1, 500)
RESULT_TTL_SECONDS = 30 * 24 * 3600  # Kling clears generated videos after 30 days
FETCH_TIMEOUT_SECONDS, FETCH_MAX_BYTES = 10.0, 200 * 1024 * 1024
_MENTION = re.compile(r"<<<(element|image|video)_(\d+)>>>")
_STATUS = {QUEUED: "submitted", RUNNING: "processing", SUCCEEDED: "succeed", FAILED: "failed"}

MODERATION_MESSAGE = "Failure to pass the risk control system"
FAILURE_MESSAGE = "Internal error, the task failed; please try again later."
# HTTP status -> Kling's service code, for errors raised without one.
_CODES = {400: 1200, 401: 1000, 403: 1103, 404: 1203, 413: 1201, 429: 1302, 500: 5000, 503: 5001}


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, code="1201")


def _now_ms(seconds: float) -> int:
    return int(seconds * 1000)


# --- Tokens -----------------------------------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _pair(entry: str) -> tuple[str, str]:
    access, sep, secret = entry.partition(":")
    return (access, secret) if sep else (entry, entry)


def _auth_error(code: int, message: str) -> ApiError:
    return ApiError(401, message, code=str(code))


# --- Tasks and elements -----------------------------------------------------------------------


@dataclass
class Element:
    task_id: str
    element_id: int
    account: str
    name: str
    description: str
    reference_type: str
    sources: dict[str, Any]  # element_image_list or element_video_list, as sent (addresses)
    color: str
    external_task_id: str
    timeline: Timeline
    moderated: bool
    # Its frontal image (or its clip's first frame): how it looks in the takes it is in.
    picture: Image.Image | None = field(default=None, repr=False)

    def status(self, now: float) -> str:
        return _STATUS[self.timeline.phase(now)[0]]

    def resource(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        body: dict[str, Any] = {
            "task_id": self.task_id,
            "task_status": status,
            "task_status_msg": MODERATION_MESSAGE if status == "failed" else "",
            "task_info": {"external_task_id": self.external_task_id},
            "task_result": {},
            "created_at": _now_ms(self.timeline.started),
            "updated_at": _now_ms(min(now, self.timeline.finishes_at)),
        }
        if status == "succeed":
            list_key = (
                "element_image_list"
                if self.reference_type == "image_refer"
                else "element_video_list"
            )
            body["task_result"] = {
                "elements": [
                    {
                        "element_id": self.element_id,
                        "element_name": self.name,
                        "element_description": self.description,
                        "reference_type": self.reference_type,
                        list_key: self.sources,
                        "owned_by": self.account,
                        "status": "succeed",
                    }
                ]
            }
            body["final_unit_deduction"] = "0"
        return body


@dataclass
class Task:
    task_id: str
    seq: int
    account: str
    model: str
    prompt: str  # markers removed
    mode: str
    ratio: str
    duration: int
    sound: bool
    external_task_id: str
    callback_url: str
    host: str  # where the result links point (the address the create came to)
    timeline: Timeline
    failure: str  # task_status_msg if the timeline fails
    cast: tuple[CastMember, ...]
    fps: int
    ttl: int
    drift: frozenset[str] = frozenset()  # what the take drifts on (markers, drift settings)
    video_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    notified: bool = False  # its callback has been queued (only the watcher writes it)
    media: Once[RenderedVideo] = field(init=False)

    def __post_init__(self) -> None:
        self.media = Once(self._render)

    def _render(self) -> RenderedVideo:
        width, height = FRAME_SIZES[(self.mode, self.ratio)]
        return render_video(
            prompt=self.prompt,
            seconds=float(self.duration),
            width=width,
            height=height,
            cast=self.cast,
            fps=self.fps,
            label=f"{self.model} · {self.mode} · {self.task_id}"
            + (" · sound" if self.sound else ""),
            drift=self.drift,
        )

    def status(self, now: float) -> str:
        return _STATUS[self.timeline.phase(now)[0]]

    def expires_at(self) -> float:
        return self.timeline.finishes_at + self.ttl

    def signature(self, expires: int) -> str:
        return hashlib.sha256(f"{self.task_id}:{self.video_id}:{expires}".encode()).hexdigest()[:32]

    def resource(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        phase_started = (
            self.timeline.queued_until if status == "processing" else self.timeline.started
        )
        updated = self.timeline.finishes_at if status in ("succeed", "failed") else phase_started
        body: dict[str, Any] = {
            "task_id": self.task_id,
            "task_status": status,
            "task_status_msg": self.failure if status == "failed" else "",
            "task_info": {"external_task_id": self.external_task_id},
            "task_result": {},
            "watermark_info": {"enabled": False},
            "created_at": _now_ms(self.timeline.started),
            "updated_at": _now_ms(updated),
        }
        if status == "succeed":
            expires = int(self.expires_at())
            url = (
                f"http://{self.host}/files/{self.task_id}/{self.video_id}.mp4"
                f"?x-expires={expires}&x-signature={self.signature(expires)}"
            )
            body["task_result"] = {
                "videos": [{"id": self.video_id, "url": url, "duration": str(self.duration)}]
            }
            body["final_unit_deduction"] = str(self.duration)
        return body


class _CallbackSender(WebhookSender):
    """Kling's callbacks: the bare task object, POSTed with no signature and no event headers."""

    def send_task(self, *, url: str, task: dict[str, Any]) -> None:
        body = json.dumps(task, separators=(",", ":")).encode()
        self._queue.put(
            _Delivery(
                url=url,
                secret=None,
                event_id=f"{task['task_id']}:{task['task_status']}",
                event_type="kling.callback",
                object_id=task["task_id"],
                body=body,
                copy=1,
            )
        )

    def _post(self, delivery: _Delivery) -> tuple[int | None, str | None]:
        request = urllib.request.Request(  # noqa: S310 - callback_url is checked to be http(s)
            delivery.url,
            data=delivery.body,
            headers={"Content-Type": "application/json", "User-Agent": "castboard-emulator/1"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, None
        except (urllib.error.URLError, OSError) as exc:
            return None, str(exc)


class KlingEmulator(NotifiesWhenDone, Emulator):
    name = "kling"
    watcher_name = "kling-callbacks"
    api_prefix = ""  # Kling's base is the bare domain; every path starts with /v1

    def __init__(self, *, api_keys: tuple[str, ...] = (), **config: Any) -> None:
        self.tasks: Store[Task] = Store()
        self.elements: Store[Element] = Store()
        self.callbacks = _CallbackSender()
        self._api_keys = tuple(api_keys)  # "access:secret" pairs known without configuration
        self._seq = 0
        self._lock = threading.Lock()
        super().__init__(**{"asset_ttl_seconds": RESULT_TTL_SECONDS, **config})

    # --- Emulator hooks -------------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        videos, elements = "/v1/videos/omni-video", "/v1/general/advanced-custom-elements"
        router.add("POST", videos, self.create_task, op="create")
        router.add("GET", videos, self.list_tasks, op="list")
        router.add("GET", f"{videos}/{{task_id}}", self.get_task, op="retrieve")
        router.add("POST", elements, self.create_element, op="character")
        router.add("GET", elements, self.list_elements, op="character_list")
        router.add("GET", f"{elements}/{{task_id}}", self.get_element, op="character_retrieve")
        # Results: signed CDN links, outside the API and without a token.
        router.add("GET", "/files/{task_id}/{filename}", self.download, op="content", public=True)

    def render_error(self, error: ApiError) -> Response:
        code = error.code
        service = int(code) if code and code.isdigit() else _CODES.get(error.status, 5000)
        body = {"code": service, "message": error.message, "request_id": str(uuid.uuid4())}
        return json_response(body, error.status, headers=error.headers)

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        if kind == "unauthorized":
            return _auth_error(1001, "Authorization is empty")
        if kind == "invalid_api_key":
            return _auth_error(1000, "Authentication failed")
        if kind == "rate_limit":
            wait = retry_after if retry_after is not None else 1.0
            return ApiError(
                429,
                "API request is too fast, exceeding the platform's rate limit",
                code="1302",
                headers=retry_after_headers(wait),
            )
        if kind == "quota":
            return ApiError(429, "Resource pack depleted or expired", code="1102")
        if kind == "unavailable":
            return ApiError(
                503, "Server is temporarily unavailable, usually due to maintenance", code="5001"
            )
        if kind == "moderation":
            return ApiError(400, "Trigger the content security policy of the platform", code="1301")
        if kind == "not_found_route":
            return ApiError(404, "Invalid request method", code="1202")
        return ApiError(500, "Server internal error", code="5000")

    def credential(self, request: Request) -> str | None:
        """The verified key entry a request's JWT was signed with (or its issuer)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if not token:
            return None
        if scheme.lower() != "bearer":
            raise _auth_error(1002, "Authorization is invalid")
        claims, signing_input, signature = self._decode(token)
        issuer = claims["iss"]
        configured = self.config.accepted_api_keys
        entries = configured or self._api_keys
        entry = next((e for e in entries if _pair(e)[0] == issuer), None)
        if entry is None and configured:
            raise _auth_error(1000, "Authentication failed")
        secret = _pair(entry)[1] if entry is not None else issuer
        expected = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise _auth_error(1002, "Authorization is invalid")
        now = time.time()  # tokens live in wall time, whatever the emulator's clock says
        if claims["nbf"] > now:
            raise _auth_error(1003, "Authorization is not yet valid")
        if claims["exp"] <= now:
            raise _auth_error(1004, "Authorization has expired")
        return entry if configured else issuer

    @staticmethod
    def _decode(token: str) -> tuple[dict[str, Any], bytes, bytes]:
        parts = token.split(".")
        try:
            if len(parts) != 3:
                raise ValueError
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _auth_error(1002, "Authorization is invalid") from None
        if (
            not isinstance(header, dict)
            or header.get("alg") != "HS256"
            or not isinstance(claims, dict)
            or not isinstance(claims.get("iss"), str)
            or not claims["iss"]
            or any(
                isinstance(claims.get(k), bool) or not isinstance(claims.get(k), int | float)
                for k in ("exp", "nbf")
            )
        ):
            raise _auth_error(1002, "Authorization is invalid")
        return claims, f"{parts[0]}.{parts[1]}".encode(), signature

    def _account(self, request: Request) -> str:
        """The access key of a verified request: tasks and elements are kept per account."""
        payload = request.headers["authorization"].split()[-1].split(".")[1]
        return json.loads(_b64url_decode(payload))["iss"]

    def clear_data(self) -> None:
        self.tasks.clear()
        self.elements.clear()
        self.callbacks.clear()

    def extra_state(self) -> dict[str, Any]:
        return {
            "tasks": len(self.tasks),
            "elements": len(self.elements),
            "callbacks": {"deliveries": self.callbacks.records()},
        }

    # --- Videos ---------------------------------------------------------------------------------

    def create_task(self, request: Request) -> Response:
        account = self._account(request)
        body = self._body(request, CREATE_FIELDS)
        model = body.get("model_name", DEFAULT_MODEL)
        if model not in MODELS:
            raise ApiError(404, f"model_name {model} does not exist", code="1203")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _invalid("prompt is required")
        if len(prompt) > MAX_PROMPT:
            raise _invalid(f"prompt cannot exceed {MAX_PROMPT} characters, got {len(prompt)}")
        mode = self._choice(body, "mode", MODES, "pro")
        ratio = self._choice(body, "aspect_ratio", RATIOS, None)
        duration = body.get("duration", "5")
        if (
            not isinstance(duration, str)
            or not duration.isdigit()
            or int(duration) not in DURATIONS
        ):
            raise _invalid(
                f'duration must be a string from "{DURATIONS[0]}" to "{DURATIONS[-1]}", '
                f"got {json.dumps(duration)}"
            )
        sound = self._choice(body, "sound", ("on", "off"), "off")
        callback = self._callback(body)
        external = self._external_id(body, account, self.tasks.values())
        elements = self._element_list(body.get("element_list"), account)
        images = self._image_list(body.get("image_list"))
        if len(elements) + len(images) > MAX_INPUTS:
            raise _invalid(
                f"the number of reference images and elements cannot exceed {MAX_INPUTS}, "
                f"got {len(images)} and {len(elements)}"
            )
        self._check_mentions(prompt, elements=len(elements), images=len(images))
        clean, markers = strip_markers(prompt)
        moderated = markers.moderation or request.forced_moderation
        config = self.config
        with self._lock:
            self._seq += 1
            seq = self._seq
        # Elements are the characters; loose images only show someone when there are none.
        cast = list(
            figures(
                [(e.name, CastMember(e.name, e.color, e.picture)) for e in elements]
                + [
                    (None, CastMember(f"image {n}", c, pic))
                    for n, (c, pic) in enumerate(images, start=1)
                ]
            )
        )
        task_id = str(10**17 + secrets.randbelow(9 * 10**17))
        task = Task(
            task_id=task_id,
            seq=seq,
            account=account,
            model=model,
            prompt=clean,
            mode=mode,
            ratio=ratio,
            duration=int(duration),
            sound=sound == "on",
            external_task_id=external,
            callback_url=callback,
            host=request.host,
            timeline=Timeline(
                started=self.clock.now(),
                latency=markers.latency if markers.latency is not None else config.latency_seconds,
                steps=config.progress_steps,
                fails=moderated or markers.fail,
                fails_early=moderated,
            ),
            failure=MODERATION_MESSAGE if moderated else FAILURE_MESSAGE,
            cast=tuple(cast),
            fps=config.fps,
            ttl=config.asset_ttl_seconds,
            drift=take_drift(markers, config, task_id),
        )
        self.tasks.add(task.task_id, task)
        now = self.clock.now()
        resource = task.resource(now)
        data = {
            k: resource[k]
            for k in ("task_id", "task_info", "task_status", "created_at", "updated_at")
        }
        return self._ok(data, job_id=task.task_id)

    def get_task(self, request: Request) -> Response:
        account, key = self._account(request), request.params["task_id"]
        task = next(
            (
                t
                for t in self.tasks.values()
                if t.account == account and key in (t.task_id, t.external_task_id)
            ),
            None,
        )
        if task is None:
            raise ApiError(404, f"task {key} does not exist", code="1203")
        return self._ok(task.resource(self.clock.now()))

    def list_tasks(self, request: Request) -> Response:
        account = self._account(request)
        tasks = sorted(
            (t for t in self.tasks.values() if t.account == account),
            key=lambda t: t.seq,
            reverse=True,
        )
        now = self.clock.now()
        return self._ok([t.resource(now) for t in self._page(request, tasks)])

    def download(self, request: Request) -> Response:
        task = self.tasks.get(request.params["task_id"])
        now = self.clock.now()
        expires = request.query.get("x-expires", "")
        if (
            task is None
            or task.status(now) != "succeed"
            or request.params["filename"] != f"{task.video_id}.mp4"
            or not expires.isdigit()
            or not hmac.compare_digest(
                request.query.get("x-signature", ""), task.signature(int(expires))
            )
        ):
            return _cdn_error(404, "NoSuchKey", "The specified key does not exist.")
        if now >= int(expires):
            return _cdn_error(403, "AccessDenied", "Request has expired.")
        video = task.media.get().video
        pad = self.config.pad_video_bytes
        if pad:
            return stream_response(
                mp4_with_padding(video, pad),
                length=padded_length(video, pad),
                content_type="video/mp4",
            )
        return bytes_response(video, "video/mp4")

    # --- Elements -------------------------------------------------------------------------------

    def create_element(self, request: Request) -> Response:
        account = self._account(request)
        body = self._body(request, ELEMENT_FIELDS)
        name, description = body.get("element_name"), body.get("element_description")
        for key, value, limit in (
            ("element_name", name, ELEMENT_NAME_MAX),
            ("element_description", description, ELEMENT_DESCRIPTION_MAX),
        ):
            if not isinstance(value, str) or not value.strip():
                raise _invalid(f"{key} is required")
            if len(value) > limit:
                raise _invalid(f"{key} cannot exceed {limit} characters")
        reference_type = body.get("reference_type")
        if reference_type == "image_refer":
            sources, color, picture = self._element_images(body.get("element_image_list"))
        elif reference_type == "video_refer":
            sources, color, picture = self._element_video(body.get("element_video_list"))
        else:
            raise _invalid("reference_type must be image_refer or video_refer")
        self._callback(body)
        external = self._external_id(body, account, self.elements.values())
        clean, markers = strip_markers(description)
        moderated = markers.moderation or request.forced_moderation
        element = Element(
            task_id=str(10**17 + secrets.randbelow(9 * 10**17)),
            element_id=10**17 + secrets.randbelow(9 * 10**17),
            account=account,
            name=name,
            description=clean,
            reference_type=reference_type,
            sources=sources,
            color=color,
            picture=picture,
            external_task_id=external,
            timeline=Timeline(
                started=self.clock.now(),
                latency=self.config.latency_seconds * ELEMENT_LATENCY_SHARE,
                steps=1,
                fails=moderated,
                fails_early=moderated,
            ),
            moderated=moderated,
        )
        self.elements.add(element.task_id, element)
        resource = element.resource(self.clock.now())
        data = {
            k: resource[k]
            for k in ("task_id", "task_info", "task_status", "created_at", "updated_at")
        }
        return self._ok(data, job_id=element.task_id)

    def get_element(self, request: Request) -> Response:
        account, key = self._account(request), request.params["task_id"]
        element = next(
            (
                e
                for e in self.elements.values()
                if e.account == account and key in (e.task_id, e.external_task_id)
            ),
            None,
        )
        if element is None:
            raise ApiError(404, f"task {key} does not exist", code="1203")
        return self._ok(element.resource(self.clock.now()))

    def list_elements(self, request: Request) -> Response:
        account = self._account(request)
        mine = [e for e in self.elements.values() if e.account == account]
        mine.sort(key=lambda e: e.timeline.started, reverse=True)
        now = self.clock.now()
        return self._ok([e.resource(now) for e in self._page(request, mine)])

    def _element_images(self, value: Any) -> tuple[dict[str, Any], str, Image.Image]:
        if not isinstance(value, dict) or set(value) - {"frontal_image", "refer_images"}:
            raise _invalid(
                "element_image_list is required for image_refer: "
                '{"frontal_image": ..., "refer_images": [{"image_url": ...}]}'
            )
        frontal = value.get("frontal_image")
        refer = value.get("refer_images")
        low, high = ELEMENT_REFER_IMAGES
        if not isinstance(refer, list) or not low <= len(refer) <= high:
            raise _invalid(f"refer_images must hold {low} to {high} images")
        if any(not isinstance(item, dict) or set(item) != {"image_url"} for item in refer):
            raise _invalid('each of refer_images is {"image_url": ...}')
        color, picture = _image_look(frontal, "element_image_list.frontal_image")
        for n, item in enumerate(refer):
            _image_look(item["image_url"], f"element_image_list.refer_images[{n}].image_url")
        sources = {
            "frontal_image": _short(frontal),
            "refer_images": [{"image_url": _short(i["image_url"])} for i in refer],
        }
        return sources, color, picture

    def _element_video(self, value: Any) -> tuple[dict[str, Any], str, Image.Image]:
        videos = value.get("refer_videos") if isinstance(value, dict) else None
        if not isinstance(videos, list) or len(videos) != 1 or set(value) != {"refer_videos"}:
            raise _invalid(
                "element_video_list is required for video_refer and holds exactly one video: "
                '{"refer_videos": [{"video_url": ...}]}'
            )
        url = videos[0].get("video_url") if isinstance(videos[0], dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _invalid("video_url must be the address of an .mp4 or .mov file")
        try:
            data = fetch(url, timeout_seconds=FETCH_TIMEOUT_SECONDS, max_bytes=FETCH_MAX_BYTES)
            probe = probe_video(data)
            frame = first_frame(data)
        except ValueError as exc:
            raise _invalid(f"video_url could not be read as a video ({exc})") from exc
        low, high = ELEMENT_CLIP_SECONDS
        if not low - CLIP_TOLERANCE <= probe.seconds <= high + CLIP_TOLERANCE:
            raise _invalid(
                f"the reference video must last {low:g}s to {high:g}s, got {probe.seconds:.2f}s"
            )
        width, height = probe.width, probe.height
        if (
            min(width, height) != 1080
            or abs(max(width, height) / min(width, height) - 16 / 9) > 0.02
        ):
            raise _invalid(
                f"the reference video must be 1080P at 16:9 or 9:16, got {width}x{height}"
            )
        sources = {"refer_videos": [{"video_url": url}]}
        return sources, dominant_color(frame), reference_picture(frame)

    # --- Checks shared by both creates ----------------------------------------------------------

    @staticmethod
    def _body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
        if request.mime_type not in ("", "application/json"):
            raise ApiError(400, "Content-Type must be application/json", code="1200")
        body = request.json()
        for name in body:
            if name not in allowed:
                raise _invalid(f"unknown parameter {name}")
        return body

    @staticmethod
    def _choice(
        body: dict[str, Any], name: str, options: tuple[str, ...], default: str | None
    ) -> str:
        value = body.get(name, default)
        if value is None:
            raise _invalid(f"{name} is required")
        if not isinstance(value, str) or value not in options:
            raise _invalid(f"{name} must be one of {', '.join(options)}, got {json.dumps(value)}")
        return value

    @staticmethod
    def _callback(body: dict[str, Any]) -> str:
        callback = body.get("callback_url", "")
        if not isinstance(callback, str) or (
            callback and not callback.startswith(("http://", "https://"))
        ):
            raise _invalid("callback_url must be an http(s) address")
        return callback

    @staticmethod
    def _external_id(body: dict[str, Any], account: str, existing: list[Any]) -> str:
        external = body.get("external_task_id", "")
        if not isinstance(external, str) or len(external) > 64:
            raise _invalid("external_task_id must be a string of at most 64 characters")
        if external and any(
            item.account == account and item.external_task_id == external for item in existing
        ):
            raise _invalid(f"external_task_id {external} already exists, it must be unique")
        return external

    def _element_list(self, value: Any, account: str) -> list[Element]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _invalid('element_list must be a list of {"element_id": ...}')
        now = self.clock.now()
        ready = {
            e.element_id: e
            for e in self.elements.values()
            if e.account == account and e.status(now) == "succeed"
        }
        found = []
        for item in value:
            raw = (
                item.get("element_id")
                if isinstance(item, dict) and set(item) == {"element_id"}
                else None
            )
            if isinstance(raw, str) and raw.isdigit():
                raw = int(raw)
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise _invalid('each of element_list is {"element_id": <long>}')
            if raw not in ready:
                raise _invalid(f"element_id {raw} does not exist")
            found.append(ready[raw])
        return found

    @staticmethod
    def _image_list(value: Any) -> list[tuple[str, Image.Image | None]]:
        """(colour, picture) per image: a reference image is composited as itself; a
        first or end frame (an explicit `type`) is no character, so it keeps its colour only."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise _invalid('image_list must be a list of {"image_url": ...}')
        looks: list[tuple[str, Image.Image | None]] = []
        for n, item in enumerate(value):
            if (
                not isinstance(item, dict)
                or "image_url" not in item
                or set(item) - {"image_url", "type"}
                or item.get("type", "first_frame") not in ("first_frame", "end_frame")
            ):
                raise _invalid(
                    'each of image_list is {"image_url": ..., "type"?: first_frame|end_frame}'
                )
            color, picture = _image_look(item["image_url"], f"image_list[{n}].image_url")
            looks.append((color, None if "type" in item else picture))
        return looks

    @staticmethod
    def _check_mentions(prompt: str, *, elements: int, images: int) -> None:
        counts = {"element": elements, "image": images, "video": 0}
        lists = {"element": "element_list", "image": "image_list", "video": "video_list"}
        for kind, number in _MENTION.findall(prompt):
            if not 1 <= int(number) <= counts[kind]:
                raise _invalid(
                    f"<<<{kind}_{number}>>> in prompt does not match {lists[kind]}, "
                    f"which has {counts[kind]} item(s)"
                )

    @staticmethod
    def _page(request: Request, items: list[Any]) -> list[Any]:
        numbers = {}
        for name, default, (low, high) in (
            ("pageNum", 1, PAGE_NUMBERS),
            ("pageSize", 30, PAGE_SIZES),
        ):
            text = request.query.get(name, str(default))
            if not text.isdigit() or not low <= int(text) <= high:
                raise _invalid(f"{name} must be an integer in [{low}, {high}]")
            numbers[name] = int(text)
        start = (numbers["pageNum"] - 1) * numbers["pageSize"]
        return items[start : start + numbers["pageSize"]]

    @staticmethod
    def _ok(data: Any, *, job_id: str | None = None) -> Response:
        body = {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}
        return json_response(body, job_id=job_id)

    # --- Callbacks ------------------------------------------------------------------------------

    def event_sender(self) -> WebhookSender:
        return self.callbacks

    def notify_finished(self, now: float) -> None:
        """POST each task that has reached a terminal state to its callback_url, once."""
        for task in self.tasks.values():
            if task.notified or now < task.timeline.finishes_at:
                continue
            task.notified = True
            if task.callback_url:
                self.callbacks.send_task(url=task.callback_url, task=task.resource(now))


def _short(value: str) -> str:
    """An input as Kling echoes it: addresses as they are, inline base64 cut down."""
    return value if value.startswith(("http://", "https://")) else value[:16] + "…"


def _image_look(value: Any, param: str) -> tuple[str, Image.Image]:
    """The colour and picture of an image given as an http(s) address or bare base64,
    checked as Kling does."""
    if not isinstance(value, str) or not value:
        raise _invalid(f"{param} is required")
    if value.startswith("data:"):
        raise _invalid(f"{param}: base64 must not carry a prefix such as data:image/png;base64,")
    try:
        if value.startswith(("http://", "https://")):
            data = fetch(value, timeout_seconds=FETCH_TIMEOUT_SECONDS, max_bytes=IMAGE_MAX_BYTES)
        else:
            data = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise _invalid(f"{param} could not be read ({exc})") from exc
    if len(data) > IMAGE_MAX_BYTES:
        raise _invalid(f"{param}: the image cannot exceed 10MB")
    if sniff_image(data) not in ("image/jpeg", "image/png"):
        raise _invalid(f"{param}: only .jpg / .jpeg / .png images are supported")
    try:
        image = open_image(data)
    except ValueError as exc:
        raise _invalid(f"{param}: {exc}") from exc
    width, height = image.size
    if min(width, height) < IMAGE_MIN_SIDE:
        raise _invalid(
            f"{param}: width and height must be at least {IMAGE_MIN_SIDE}px, got {width}x{height}"
        )
    if max(width, height) / min(width, height) > IMAGE_RATIO:
        raise _invalid(
            f"{param}: the aspect ratio must be between 1:2.5 and 2.5:1, got {width}x{height}"
        )
    return dominant_color(image), reference_picture(image)


def _cdn_error(status: int, code: str, message: str) -> Response:
    """The file host's own XML error, not the API's envelope: it is a different service."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Response(status=status, body=body, content_type="application/xml")
