"""ByteDance Seedance 2.0 on BytePlus ModelArk (PROVIDERS.md section 3), under /api/v3.

Characters are not saved objects here: they travel with each request as reference
images (up to 9) and clips (up to 3), and the prompt names them "image 1",
"video 1". Tasks are polled; the finished video sits at a public, expiring URL
(a CDN link signed for 24 h); billing is in tokens, reported in `usage`.

Beyond the shared prompt markers, `[[emulate:refuse]]` makes the create itself
fail the input text check (400 InputTextSensitiveContentDetected), as Ark does for
a prompt it will not accept; `[[emulate:moderation]]` fails the task later with
OutputVideoSensitiveContentDetected, as Ark does for an output it withholds.
"""

from __future__ import annotations

import io
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import av
from PIL import Image

from jobs.emulators.base import Emulator, retry_after_headers
from jobs.emulators.inputs import decode_data_url, fetch, open_image, probe_video, sniff_image
from jobs.emulators.render import (
    CastMember,
    RenderedVideo,
    dominant_color,
    figures,
    first_frame,
    mp4_with_padding,
    name_before_label,
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
from jobs.emulators.wsgi import (
    ApiError,
    Request,
    Response,
    Router,
    bytes_response,
    json_response,
    stream_response,
)

MODELS = ("dreamina-seedance-2-0-260128", "dreamina-seedance-2-0-fast-260128")
CREATE_FIELDS = frozenset(
    {
        "model",
        "content",
        "callback_url",
        "resolution",
        "ratio",
        "duration",
        "seed",
        "watermark",
        "generate_audio",
        "return_last_frame",
    }
)
# (resolution, ratio) -> frame size. 16:9 and 9:16 are Seedance 2.0's published sizes; the
# others follow Ark's table for the earlier Seedance models (1:1 at 720p is 960x960) [3P].
FRAME_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("480p", "16:9"): (854, 480),
    ("480p", "9:16"): (480, 854),
    ("480p", "1:1"): (480, 480),
    ("480p", "4:3"): (640, 480),
    ("480p", "3:4"): (480, 640),
    ("480p", "21:9"): (1120, 480),
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("720p", "1:1"): (960, 960),
    ("720p", "4:3"): (960, 720),
    ("720p", "3:4"): (720, 960),
    ("720p", "21:9"): (1680, 720),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "9:16"): (1080, 1920),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "4:3"): (1440, 1080),
    ("1080p", "3:4"): (1080, 1440),
    ("1080p", "21:9"): (2520, 1080),
}
RESOLUTIONS = ("480p", "720p", "1080p")
RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
DURATIONS = range(4, 16)
DEFAULT_RESOLUTION, DEFAULT_RATIO, DEFAULT_DURATION = "720p", "16:9", 5
SEED_RANGE = (-1, 2**32 - 1)  # -1: the service picks one
TOKEN_FPS = 24  # tokens are counted at 24 frames a second, whatever the file's rate
# Reference limits per request [3P]: images, clips (2-15 s each, 15 s in all), audio.
MAX_IMAGES, MAX_CLIPS, MAX_AUDIO = 9, 3, 3
CLIP_SECONDS, CLIPS_TOTAL_SECONDS = (2.0, 15.0), 15.0
CLIP_TOLERANCE = 0.25  # encoders round a clip's length; allow a quarter second either way
FETCH_TIMEOUT_SECONDS = 10.0  # the same caps as the relay's fetch
FETCH_MAX_BYTES = 50 * 1024 * 1024
RESULT_TTL_SECONDS = 24 * 3600  # result URLs stay valid 24 h [3P]
LIST_WINDOW_SECONDS = 7 * 24 * 3600  # the task list covers the last 7 days
PAGE_RANGE = (1, 500)
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
_STATUS = {QUEUED: "queued", RUNNING: "running", SUCCEEDED: "succeeded", FAILED: "failed"}
_REFUSE = re.compile(r"\s*\[\[emulate:refuse\]\]")
# "Mina (image 1)": the words before a reference label name the character it shows.
_LABELLED = re.compile(r"(\S+(?: \S+){0,2}) \((image|video) (\d+)\)")

MODERATION_ERROR = {
    "code": "OutputVideoSensitiveContentDetected",
    "message": "The request failed because the output video may contain sensitive information.",
}
GENERATION_ERROR = {
    "code": "InternalServiceError",
    "message": "The service encountered an unexpected internal error.",
}
INPUT_MODERATION = (
    "InputTextSensitiveContentDetected",
    "The request failed because the input text may contain sensitive information.",
)


def tokens_for(width: int, height: int, seconds: int) -> int:
    """ByteDance's published count for video: width x height x 24 fps x seconds / 1024."""
    exact = Decimal(width * height * TOKEN_FPS * seconds) / 1024
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- Errors in Ark's words --------------------------------------------------------------------

_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "BadRequest",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
_CODES = {
    400: "InvalidParameter",
    401: "AuthenticationError",
    404: "ResourceNotFound",
    409: "OperationDenied.InvalidState",
    413: "InvalidParameter",
    429: "RateLimitExceeded",
    500: "InternalServiceError",
    503: "ServiceUnavailable",
}


def _invalid(param: str, detail: str) -> ApiError:
    return ApiError(
        400,
        f"The parameter `{param}` specified in the request is not valid: {detail}",
        code="InvalidParameter",
        param=param,
    )


def _missing(param: str) -> ApiError:
    return ApiError(
        400,
        f"The request failed because it is missing one or multiple required parameters: `{param}`.",
        code="MissingParameter",
        param=param,
    )


# --- Tasks ----------------------------------------------------------------------------------


@dataclass
class Task:
    id: str
    seq: int
    model: str
    prompt: str  # the text item, markers removed
    resolution: str
    ratio: str
    duration: int
    seed: int
    watermark: bool
    return_last_frame: bool
    timeline: Timeline
    error: dict[str, str] | None  # what it fails with, if the timeline fails
    cast: tuple[CastMember, ...]
    fps: int
    ttl: int
    drift: frozenset[str] = frozenset()  # what the take drifts on (markers, drift settings)
    cancelled_at: float | None = None
    media: Once[RenderedVideo] = field(init=False)
    last_frame: Once[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.media = Once(self._render)
        self.last_frame = Once(self._last_frame)

    @property
    def size(self) -> tuple[int, int]:
        return FRAME_SIZES[(self.resolution, self.ratio)]

    def _render(self) -> RenderedVideo:
        width, height = self.size
        label = f"{self.model} · {self.id}" + (" · AI generated" if self.watermark else "")
        return render_video(
            prompt=self.prompt,
            seconds=float(self.duration),
            width=width,
            height=height,
            cast=self.cast,
            fps=self.fps,
            label=label,
            drift=self.drift,
        )

    def _last_frame(self) -> bytes:
        with av.open(io.BytesIO(self.media.get().video)) as container:
            last = deque(container.decode(video=0), maxlen=1)[0]  # the renderer writes >= 1
        out = io.BytesIO()
        last.to_image().save(out, "PNG")
        return out.getvalue()

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        phase, _ = self.timeline.phase(now)
        return _STATUS[phase]

    def updated_at(self, now: float) -> int:
        if self.cancelled_at is not None:
            return int(self.cancelled_at)
        timeline = self.timeline
        if now >= timeline.finishes_at:
            return int(timeline.finishes_at)
        if now >= timeline.queued_until:
            return int(timeline.queued_until)
        return int(timeline.started)

    def expires_at(self) -> float:
        return self.timeline.finishes_at + self.ttl

    def resource(self, now: float, host: str) -> dict[str, Any]:
        status = self.status(now)
        body: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "status": status,
            "error": dict(self.error) if status == "failed" and self.error else None,
        }
        if status == "succeeded":
            finished = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.timeline.finishes_at))
            # Shaped like Ark's signed object-storage links; the emulator's clock enforces expiry.
            signed = f"?X-Tos-Date={finished}&X-Tos-Expires={self.ttl}"
            content = {"video_url": f"http://{host}/files/{self.id}.mp4{signed}"}
            if self.return_last_frame:
                content["last_frame_url"] = f"http://{host}/files/{self.id}-last-frame.png{signed}"
            width, height = self.size
            tokens = tokens_for(width, height, self.duration)
            body["content"] = content
            body["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
        body |= {
            "duration": self.duration,
            "ratio": self.ratio,
            "resolution": self.resolution,
            "seed": self.seed,
            "created_at": int(self.timeline.started),
            "updated_at": self.updated_at(now),
        }
        return body


@dataclass(frozen=True)
class _Inputs:
    prompt: str
    images: list[tuple[str, Image.Image]]  # (colour, picture), in order
    clips: list[tuple[str, Image.Image]]  # (colour, picture of the first frame)


class SeedanceEmulator(Emulator):
    name = "seedance"
    api_prefix = "/api/v3"

    def __init__(self, **config: Any) -> None:
        self.tasks: Store[Task] = Store()
        self._seq = 0
        self._seq_lock = threading.Lock()
        super().__init__(**{"asset_ttl_seconds": RESULT_TTL_SECONDS, **config})

    # --- Emulator hooks -------------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        tasks = f"{self.api_prefix}/contents/generations/tasks"
        router.add("POST", tasks, self.create_task, op="create")
        router.add("GET", tasks, self.list_tasks, op="list")
        router.add("GET", f"{tasks}/{{task_id}}", self.get_task, op="retrieve")
        router.add("DELETE", f"{tasks}/{{task_id}}", self.delete_task, op="delete")
        # Results: outside /api/v3 and without auth, like the object-storage links Ark hands out.
        router.add("GET", "/files/{filename}", self.download, op="content", public=True)

    def render_error(self, error: ApiError) -> Response:
        code = error.code
        if code is None or code == "invalid_json":  # the shared JSON parser's code
            code = _CODES.get(error.status, "InternalServiceError")
        body = {
            "error": {
                "code": code,
                "message": error.message,
                "param": error.param or "",
                "type": error.type or _TYPES.get(error.status, "InternalServerError"),
            }
        }
        return json_response(body, error.status, headers=error.headers)

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        if kind in ("unauthorized", "invalid_api_key"):
            return ApiError(
                401,
                "The API key in the request is missing or invalid.",
                code="AuthenticationError",
            )
        if kind == "rate_limit":
            wait = retry_after if retry_after is not None else 1.0
            return ApiError(
                429,
                "The request has exceeded the rate limit (requests per minute) of the model. "
                "Please try again later.",
                code="RateLimitExceeded",
                headers=retry_after_headers(wait),
            )
        if kind == "quota":
            return ApiError(
                429,
                "The request has exceeded the quota of your account for this model. "
                "Top up or ask for a larger quota.",
                code="QuotaExceeded",
            )
        if kind == "unavailable":
            return ApiError(
                503,
                "The service is temporarily unavailable. Please try again later.",
                code="ServiceUnavailable",
            )
        if kind == "moderation":
            code, message = INPUT_MODERATION
            return ApiError(400, message, code=code)
        if kind == "not_found_route":
            return ApiError(404, "Not found.", code="ResourceNotFound")
        return ApiError(
            500,
            "The service encountered an unexpected internal error.",
            code="InternalServiceError",
        )

    def clear_data(self) -> None:
        self.tasks.clear()

    def extra_state(self) -> dict[str, Any]:
        return {"tasks": len(self.tasks)}

    # --- Tasks ----------------------------------------------------------------------------------

    def create_task(self, request: Request) -> Response:
        if request.mime_type not in ("", "application/json"):
            raise _invalid("Content-Type", "send application/json.")
        body = request.json()
        for name in body:
            if name not in CREATE_FIELDS:
                raise _invalid(name, "this parameter is not supported.")
        model = body.get("model")
        if model is None:
            raise _missing("model")
        if not isinstance(model, str) or model not in MODELS:
            raise ApiError(
                404,
                f"The model or endpoint {model} does not exist or you do not have access to it.",
                code="InvalidEndpointOrModel.NotFound",
                param="model",
            )
        resolution = self._choice(body, "resolution", RESOLUTIONS, DEFAULT_RESOLUTION)
        ratio = self._choice(body, "ratio", RATIOS, DEFAULT_RATIO)
        duration = body.get("duration", DEFAULT_DURATION)
        if isinstance(duration, bool) or not isinstance(duration, int) or duration not in DURATIONS:
            raise _invalid(
                "duration", f"must be an integer from {DURATIONS[0]} to {DURATIONS[-1]} (seconds)."
            )
        seed = body.get("seed", -1)
        low, high = SEED_RANGE
        if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high:
            raise _invalid("seed", f"must be an integer from {low} to {high}.")
        flags = {}
        for name in ("watermark", "generate_audio", "return_last_frame"):
            value = body.get(name, name == "generate_audio")
            if not isinstance(value, bool):
                raise _invalid(name, "must be true or false.")
            flags[name] = value
        callback = body.get("callback_url")
        # Accepted and never called: Ark publishes no signature for its callbacks.
        if callback is not None and (
            not isinstance(callback, str) or not callback.startswith(("http://", "https://"))
        ):
            raise _invalid("callback_url", "must be an http(s) URL.")

        inputs = self._content(body.get("content"))
        if _REFUSE.search(inputs.prompt):
            raise self.standard_error("moderation")
        clean, markers = strip_markers(inputs.prompt)
        moderated = markers.moderation or request.forced_moderation
        config = self.config
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        task_id = "cgt-" + secrets.token_hex(10)
        task = Task(
            id=task_id,
            seq=seq,
            model=model,
            prompt=clean,
            resolution=resolution,
            ratio=ratio,
            duration=duration,
            seed=seed if seed != -1 else secrets.randbelow(2**31),
            watermark=flags["watermark"],
            return_last_frame=flags["return_last_frame"],
            timeline=Timeline(
                started=self.clock.now(),
                latency=markers.latency if markers.latency is not None else config.latency_seconds,
                steps=config.progress_steps,
                fails=moderated or markers.fail,
                fails_early=moderated,
            ),
            error=MODERATION_ERROR if moderated else GENERATION_ERROR if markers.fail else None,
            cast=_cast(clean, inputs),
            fps=config.fps,
            ttl=config.asset_ttl_seconds,
            drift=take_drift(markers, config, task_id),
        )
        self.tasks.add(task.id, task)
        # Ark answers a create with the id alone.
        return json_response({"id": task.id}, job_id=task.id)

    def get_task(self, request: Request) -> Response:
        task = self._task(request.params["task_id"])
        return json_response(task.resource(self.clock.now(), request.host))

    def list_tasks(self, request: Request) -> Response:
        query = request.query
        page_num = self._page_number(query, "page_num", 1)
        page_size = self._page_number(query, "page_size", 10)
        status = _filter(query, "status")
        if status and status not in STATUSES:
            raise _invalid("filter.status", f"must be one of {', '.join(STATUSES)}.")
        # Repeating filter.task_ids is Ark's batch form; a comma-separated value works too.
        task_ids = {part for part in _filter(query, "task_ids").split(",") if part}
        model = _filter(query, "model")
        now = self.clock.now()
        tasks = [
            task
            for task in sorted(self.tasks.values(), key=lambda t: t.seq, reverse=True)
            if task.timeline.started > now - LIST_WINDOW_SECONDS
            and (not status or task.status(now) == status)
            and (not task_ids or task.id in task_ids)
            and (not model or task.model == model)
        ]
        start = (page_num - 1) * page_size
        page = tasks[start : start + page_size]
        return json_response(
            {"items": [task.resource(now, request.host) for task in page], "total": len(tasks)}
        )

    def delete_task(self, request: Request) -> Response:
        """Cancel a queued task, or delete the record of a finished one; nothing else."""
        task = self._task(request.params["task_id"])
        now = self.clock.now()
        status = task.status(now)
        if status == "queued":
            task.cancelled_at = now
        elif status in ("succeeded", "failed"):
            self.tasks.remove(task.id)
        else:
            detail = (
                "is running and can no longer be cancelled"
                if status == "running"
                else "was cancelled and cannot be deleted"
            )
            # Ark documents which states allow a DELETE, not the code it answers; this is ours.
            raise ApiError(
                409,
                f"The task {task.id} {detail}.",
                code="OperationDenied.InvalidState",
            )
        return json_response({})

    def download(self, request: Request) -> Response:
        filename = request.params["filename"]
        task_id, kind = filename, ""
        for suffix in (".mp4", "-last-frame.png"):
            if filename.endswith(suffix):
                task_id, kind = filename.removesuffix(suffix), suffix
        task = self.tasks.get(task_id) if kind else None
        now = self.clock.now()
        if (
            task is None
            or task.status(now) != "succeeded"
            or (kind == "-last-frame.png" and not task.return_last_frame)
        ):
            return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
        if now >= task.expires_at():
            # Object storage refuses an expired signature with 403, not 404.
            return _storage_error(403, "AccessDenied", "Request has expired.")
        if kind == "-last-frame.png":
            return bytes_response(task.last_frame.get(), "image/png")
        video = task.media.get().video
        pad = self.config.pad_video_bytes
        if pad:
            return stream_response(
                mp4_with_padding(video, pad),
                length=padded_length(video, pad),
                content_type="video/mp4",
            )
        return bytes_response(video, "video/mp4")

    # --- Helpers --------------------------------------------------------------------------------

    def _task(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise ApiError(
                404,
                f"The specified task {task_id} is not found.",
                code="ResourceNotFound",
                param="id",
            )
        return task

    @staticmethod
    def _choice(body: dict[str, Any], name: str, options: tuple[str, ...], default: str) -> str:
        value = body.get(name, default)
        if not isinstance(value, str) or value not in options:
            raise _invalid(name, f"must be one of {', '.join(options)}.")
        return value

    @staticmethod
    def _page_number(query: dict[str, str], name: str, default: int) -> int:
        text = query.get(name, str(default))
        low, high = PAGE_RANGE
        if not text.isdigit() or not low <= int(text) <= high:
            raise _invalid(name, f"must be an integer from {low} to {high}.")
        return int(text)

    def _content(self, content: Any) -> _Inputs:
        """The prompt and the reference colours, every item checked as Ark checks it."""
        if content is None:
            raise _missing("content")
        if not isinstance(content, list) or not content:
            raise _invalid("content", "must be a non-empty array of content items.")
        texts: list[str] = []
        images: list[tuple[str, Image.Image]] = []
        clips: list[tuple[str, Image.Image]] = []
        clip_seconds = 0.0
        audio = 0
        for index, item in enumerate(content):
            param = f"content[{index}]"
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text":
                text = item.get("text")
                if set(item) != {"type", "text"} or not isinstance(text, str) or not text.strip():
                    raise _invalid(param, 'a text item is {"type": "text", "text": "<prompt>"}.')
                texts.append(text)
            elif kind == "image_url":
                data = self._media(item, index, "image_url", "reference_image")
                images.append(_image_look(data, param))
            elif kind == "video_url":
                data = self._media(item, index, "video_url", "reference_video")
                color, picture, seconds = _clip(data, param)
                clips.append((color, picture))
                clip_seconds += seconds
            elif kind == "audio_url":
                self._url_of(item, index, "audio_url", "reference_audio")  # checked, not heard
                audio += 1
            else:
                raise _invalid(
                    f"{param}.type", "must be one of text, image_url, video_url, audio_url."
                )
        if len(texts) != 1:
            raise _invalid("content", f"must hold exactly one text item, not {len(texts)}.")
        for count, limit, what in (
            (len(images), MAX_IMAGES, "reference images"),
            (len(clips), MAX_CLIPS, "reference videos"),
            (audio, MAX_AUDIO, "reference audio items"),
        ):
            if count > limit:
                raise _invalid("content", f"at most {limit} {what} per request, not {count}.")
        if clip_seconds > CLIPS_TOTAL_SECONDS + CLIP_TOLERANCE * len(clips):
            raise _invalid(
                "content",
                f"reference videos may last {CLIPS_TOTAL_SECONDS:g} s in all, "
                f"not {clip_seconds:.2f} s.",
            )
        return _Inputs(prompt=texts[0], images=images, clips=clips)

    def _url_of(self, item: dict[str, Any], index: int, key: str, role: str) -> str:
        param = f"content[{index}]"
        if set(item) != {"type", key, "role"}:
            raise _invalid(param, f'a {key} item is {{"type", "{key}": {{"url"}}, "role"}}.')
        if item["role"] != role:
            raise _invalid(f"{param}.role", f"must be {role}.")
        holder = item[key]
        url = holder.get("url") if isinstance(holder, dict) else None
        if not isinstance(url, str) or not url or set(holder) != {"url"}:
            raise _invalid(f"{param}.{key}", 'must be {"url": "<http(s) or data: URL>"}.')
        return url

    def _media(self, item: dict[str, Any], index: int, key: str, role: str) -> bytes:
        url = self._url_of(item, index, key, role)
        try:
            if url.startswith("data:"):
                return decode_data_url(url)
            return fetch(url, timeout_seconds=FETCH_TIMEOUT_SECONDS, max_bytes=FETCH_MAX_BYTES)
        except ValueError as exc:
            raise _invalid(f"content[{index}].{key}.url", f"could not be read ({exc}).") from exc


def _filter(query: dict[str, str], name: str) -> str:
    """A list filter, as `filter.<name>` (Ark's spelling) or plain `<name>`."""
    return query.get(f"filter.{name}") or query.get(name) or ""


def _image_look(data: bytes, param: str) -> tuple[str, Image.Image]:
    """A reference image's colour and picture (what the take composites)."""
    if sniff_image(data) is None:
        raise _invalid(f"{param}.image_url", "the image must be JPEG, PNG or WebP.")
    try:
        image = open_image(data)
    except ValueError as exc:
        raise _invalid(f"{param}.image_url", str(exc)) from exc
    return dominant_color(image), reference_picture(image)


def _clip(data: bytes, param: str) -> tuple[str, Image.Image, float]:
    """A reference clip's colour, the picture of its first frame, and its length."""
    try:
        probe = probe_video(data)
        frame = first_frame(data)
    except ValueError as exc:
        raise _invalid(f"{param}.video_url", "the file is not a readable video.") from exc
    low, high = CLIP_SECONDS
    if not low - CLIP_TOLERANCE <= probe.seconds <= high + CLIP_TOLERANCE:
        raise _invalid(
            f"{param}.video_url",
            f"a reference video lasts {low:g} to {high:g} s, not {probe.seconds:.2f} s.",
        )
    return dominant_color(frame), reference_picture(frame), probe.seconds


def _cast(prompt: str, inputs: _Inputs) -> tuple[CastMember, ...]:
    """A figure per character the prompt names ("Mina (image 1)"), from its first reference."""
    names: dict[tuple[str, int], str] = {}
    for match in _LABELLED.finditer(prompt):
        names.setdefault((match.group(2), int(match.group(3))), name_before_label(match.group(1)))
    return figures(
        [
            (
                names.get((kind, number)),
                CastMember(names.get((kind, number), f"{kind} {number}"), color, picture),
            )
            for kind, looks in (("image", inputs.images), ("video", inputs.clips))
            for number, (color, picture) in enumerate(looks, start=1)
        ]
    )


def _storage_error(status: int, code: str, message: str) -> Response:
    """Object storage's own XML error, not Ark's JSON: the file host is a different service."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Response(status=status, body=body, content_type="application/xml")
