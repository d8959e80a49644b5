"""Runway's API (PROVIDERS.md section 3) as runwayml 5.24.0 types it: videos and tasks.

What it holds to, as Runway does:
- Every API call carries a Bearer key (401 without one, or with one not in
  `accepted_api_keys`) and `X-Runway-Version: 2024-11-06` (400 without it, or with another).
- An error is `{"error": "<words>"}`; a body that fails validation adds `issues` (each
  `{code, path, message}`) and `docUrl`, the shape Runway's published schema gives
  [3P: quoted in runwayml/sdk-node issues #215, #216]. The words are the emulator's own.
- `POST /v1/text_to_video` and `POST /v1/image_to_video` take each model's own fields
  (MODELS, from the SDK's TypedDicts): an unknown field or model, a ratio or duration the
  model does not make, a missing or over-long `promptText`, more than 9 `references` or an
  ill-formed one are refused. Pictures come as data URIs (under 5 MB, JPEG, PNG or WebP,
  really decodable) or https URLs on a domain name; http:// and bare IP addresses are
  refused [C: docs.dev.runwayml.com/assets/inputs]. `@Image<n>` in the prompt must name one
  of the request's reference images (the emulator's own check [?]).
- A task is THROTTLED while the account has `concurrency` tasks under way (a constructor
  argument, or `{"concurrency": n}` posted to /_emulator/config; None: no limit), then
  PENDING, RUNNING with `progress` from 0 to 1, and SUCCEEDED (`output`: a link signed
  when the task is read, which stops working `asset_ttl_seconds` later, 24 h by default:
  "fetch the task again to get fresh URLs"), FAILED (`failure`, `failureCode`) or
  CANCELLED. While under way a task shows `estimatedCost.credits`; once ended,
  `cost.credits` (what was charged: nothing for a failure or a refunded cancel).
- `DELETE /v1/tasks/{id}` cancels a task under way (refunded unless it was RUNNING) and
  deletes a finished one (CANCELLED from then on, its charge kept, its output gone).
- `[[emulate:moderation]]` (or a queued moderation fault) fails the task with
  SAFETY.INPUT.TEXT before it runs; `[[emulate:fail]]` with INTERNAL.BAD_OUTPUT.CODE01.
- Durations Runway's SDK leaves open are held to the figures the adapter assumes:
  seedance2 4-15 s (or "auto", made as 5 s and billed at 15 up front), gen4_turbo 2-10 s [?].
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from jobs.emulators.base import Emulator, retry_after_headers
from jobs.emulators.inputs import decode_data_url, fetch, open_image, sniff_image
from jobs.emulators.render import (
    CastMember,
    RenderedVideo,
    dominant_color,
    figures,
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

API_VERSION = "2024-11-06"
TEXT_TO_VIDEO, IMAGE_TO_VIDEO = "text_to_video", "image_to_video"
RESULT_TTL_SECONDS = 24 * 3600  # "These URLs will expire within 24-48 hours" [C]
DATA_URI_MAX_CHARS = 5 * 1024 * 1024  # "under 5MB (1024 x 1024 x 5 bytes)" [C]
URL_MAX_BYTES = 16 * 1024 * 1024  # an image fetched by URL [3P: runwayml/skills]
URL_MAX_CHARS = 2048
FETCH_TIMEOUT_SECONDS = 10.0
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
SEED_RANGE = (0, 4294967295)
DOC_URL = "https://docs.dev.runwayml.com/errors/errors/"
_MENTION = re.compile(r"@Image(\d+)\b")
# "Mina (@Image1)": the words before a tag name the character its picture shows.
_LABELLED = re.compile(r"(\S+(?: \S+){0,2}) \(@Image(\d+)\)")
_STATUS = {QUEUED: "PENDING", RUNNING: "RUNNING", SUCCEEDED: "SUCCEEDED", FAILED: "FAILED"}
UNDER_WAY = ("PENDING", "THROTTLED", "RUNNING")

MODERATION_FAILURE = (
    "SAFETY.INPUT.TEXT",
    "The prompt was flagged by content moderation. Generations like this are not retried.",
)
GENERATION_FAILURE = (
    "INTERNAL.BAD_OUTPUT.CODE01",
    "The output did not pass our quality checks; try again.",
)

SEEDANCE2_RATIOS = (
    "992:432",
    "864:496",
    "752:560",
    "640:640",
    "560:752",
    "496:864",
    "1470:630",
    "1280:720",
    "1112:834",
    "960:960",
    "834:1112",
    "720:1280",
    "2206:946",
    "1920:1080",
    "1664:1248",
    "1440:1440",
    "1248:1664",
    "1080:1920",
    "3840:1646",
    "3840:2160",
    "3840:2880",
    "3840:3840",
    "2880:3840",
    "2160:3840",
)
GEN4_FRAME_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")


@dataclass(frozen=True)
class Endpoint:
    """What one model takes at one endpoint: its fields (the required ones too) and ratios."""

    fields: frozenset[str]
    required: frozenset[str]
    ratios: tuple[str, ...]


@dataclass(frozen=True)
class Model:
    endpoints: dict[str, Endpoint]
    durations: tuple[int, ...]
    default_duration: int  # when `duration` is left out [?]
    default_ratio: str  # when `ratio` may be left out [?]
    prompt_chars: int  # UTF-16 code units
    positions: tuple[str, ...]  # promptImage positions; () where a position is required
    position_optional: bool  # seedance2: an image without a position is a reference
    max_references: int
    auto_duration: bool
    credits_per_second: int  # the adapter's figures, for estimatedCost and cost


def _endpoint(ratios: tuple[str, ...], required: str, optional: str) -> Endpoint:
    names = frozenset(required.split()) | frozenset(optional.split())
    return Endpoint(fields=names, required=frozenset(required.split()), ratios=ratios)


MODELS: dict[str, Model] = {
    "seedance2": Model(
        endpoints={
            TEXT_TO_VIDEO: _endpoint(
                SEEDANCE2_RATIOS,
                "model promptText",
                "audio duration ratio referenceAudio references referenceVideos seed",
            ),
            IMAGE_TO_VIDEO: _endpoint(
                SEEDANCE2_RATIOS,
                "model promptImage",
                "audio duration promptText ratio referenceAudio seed",
            ),
        },
        durations=tuple(range(4, 16)),
        default_duration=5,
        default_ratio="1280:720",
        prompt_chars=3500,
        positions=("first", "last"),
        position_optional=True,
        max_references=9,
        auto_duration=True,
        credits_per_second=36,
    ),
    "gen4.5": Model(
        endpoints={
            TEXT_TO_VIDEO: _endpoint(
                ("1280:720", "720:1280"),
                "duration model promptText ratio",
                "contentModeration outputFormat proresProfile seed",
            ),
            IMAGE_TO_VIDEO: _endpoint(
                GEN4_FRAME_RATIOS,
                "duration model promptImage promptText ratio",
                "contentModeration outputFormat proresProfile seed",
            ),
        },
        durations=tuple(range(2, 11)),
        default_duration=5,
        default_ratio="1280:720",
        prompt_chars=1000,
        positions=("first",),
        position_optional=False,
        max_references=0,
        auto_duration=False,
        credits_per_second=12,
    ),
    "gen4_turbo": Model(
        endpoints={
            IMAGE_TO_VIDEO: _endpoint(
                GEN4_FRAME_RATIOS,
                "model promptImage ratio",
                "contentModeration duration promptText seed",
            ),
        },
        durations=tuple(range(2, 11)),
        default_duration=5,
        default_ratio="1280:720",
        prompt_chars=1000,
        positions=("first",),
        position_optional=False,
        max_references=0,
        auto_duration=False,
        credits_per_second=5,
    ),
    **{
        model_id: Model(
            endpoints={
                TEXT_TO_VIDEO: _endpoint(
                    VEO_RATIOS, "model promptText ratio", "audio duration negativePrompt seed"
                ),
                IMAGE_TO_VIDEO: _endpoint(
                    VEO_RATIOS,
                    "model promptImage ratio",
                    "audio duration negativePrompt promptText seed",
                ),
            },
            durations=(4, 6, 8),
            default_duration=8,
            default_ratio="1280:720",
            prompt_chars=1000,
            positions=("first", "last"),
            position_optional=False,
            max_references=0,
            auto_duration=False,
            credits_per_second=credits,
        )
        for model_id, credits in (("veo3.1", 40), ("veo3.1_fast", 15))
    },
}


# --- Errors in Runway's words -----------------------------------------------------------------


class Invalid(ApiError):
    """A 400 whose body lists what failed validation, as Runway's does."""

    def __init__(
        self, issues: list[dict[str, Any]], message: str = "Validation of body failed"
    ) -> None:
        super().__init__(400, message, code="validation")
        self.issues = issues


def _issue(code: str, path: list[Any], message: str) -> dict[str, Any]:
    return {"code": code, "path": path, "message": message}


def _iso(seconds: float) -> str:
    stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --- Tasks ------------------------------------------------------------------------------------


@dataclass
class Task:
    id: str
    endpoint: str
    model: str
    prompt: str  # markers removed
    width: int
    height: int
    seconds: int  # what is made
    billed_seconds: int  # what the estimate charges ("auto" is billed at the maximum)
    rate: int  # credits a second
    created: float
    timeline: Timeline  # starts when the task gets a slot (later than `created` if throttled)
    failure: tuple[str, str] | None  # (failureCode, failure) if the timeline fails
    cast: tuple[CastMember, ...]
    fps: int
    ttl: int
    drift: frozenset[str] = frozenset()  # what the take drifts on (markers, drift settings)
    cancelled_at: float | None = None
    charged_when_cancelled: int = 0
    video_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    media: Once[RenderedVideo] = field(init=False)

    def __post_init__(self) -> None:
        self.media = Once(self._render)

    def _render(self) -> RenderedVideo:
        return render_video(
            prompt=self.prompt,
            seconds=float(self.seconds),
            width=self.width,
            height=self.height,
            cast=self.cast,
            fps=self.fps,
            label=f"{self.model} · {self.id}",
            drift=self.drift,
        )

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "CANCELLED"
        if now < self.timeline.started:
            return "THROTTLED"
        return _STATUS[self.timeline.phase(now)[0]]

    def charged(self, status: str) -> int:
        if status == "SUCCEEDED":
            return self.rate * self.seconds
        if status == "CANCELLED":
            return self.charged_when_cancelled
        return 0  # a failed generation is refunded

    def signature(self, expires: int) -> str:
        text = f"{self.id}:{self.video_id}:{expires}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def resource(self, now: float, host: str, ttl: int) -> dict[str, Any]:
        status = self.status(now)
        body: dict[str, Any] = {"id": self.id, "status": status, "createdAt": _iso(self.created)}
        if status in UNDER_WAY:
            body["estimatedCost"] = {"credits": float(self.rate * self.billed_seconds)}
        else:
            body["cost"] = {"credits": self.charged(status)}
        if status == "RUNNING":
            body["progress"] = self.timeline.phase(now)[1] / 100
        elif status == "SUCCEEDED":
            # Signed as it is handed out: reading the task again gives a fresh link.
            expires = int(now + ttl)
            body["output"] = [
                f"http://{host}/files/{self.id}/{self.video_id}.mp4"
                f"?exp={expires}&sig={self.signature(expires)}"
            ]
        elif status == "FAILED" and self.failure:
            body["failureCode"], body["failure"] = self.failure
        return body


@dataclass(frozen=True)
class _Picture:
    color: str
    position: str  # "" for a reference image
    # What a take composites for a reference image; None for a first or last frame, which
    # is where the video starts or ends, not a character in it.
    picture: Image.Image | None = field(default=None, compare=False, repr=False)


class RunwayEmulator(Emulator):
    name = "runway"
    api_prefix = ""  # Runway's base is the bare domain; every path starts with /v1

    def __init__(self, *, concurrency: int | None = None, **config: Any) -> None:
        self.tasks: Store[Task] = Store()
        self._default_concurrency = _concurrency(concurrency)
        self.concurrency = self._default_concurrency
        self._lock = threading.Lock()
        super().__init__(**{"asset_ttl_seconds": RESULT_TTL_SECONDS, **config})

    # --- Emulator hooks -------------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        router.add("POST", "/v1/text_to_video", self.text_to_video, op="create")
        router.add("POST", "/v1/image_to_video", self.image_to_video, op="create")
        router.add("GET", "/v1/tasks/{task_id}", self.get_task, op="retrieve")
        router.add("DELETE", "/v1/tasks/{task_id}", self.delete_task, op="delete")
        # Results: signed CDN links, outside the API and without a key.
        router.add("GET", "/files/{task_id}/{filename}", self.download, op="content", public=True)

    def render_error(self, error: ApiError) -> Response:
        body: dict[str, Any] = {"error": error.message}
        if isinstance(error, Invalid):
            body["issues"] = error.issues
            body["docUrl"] = DOC_URL
        return json_response(body, error.status, headers=error.headers)

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        if kind == "unauthorized":
            return ApiError(401, "No API key was given: send Authorization: Bearer <key>.")
        if kind == "invalid_api_key":
            return ApiError(401, "The provided API key is not valid.")
        if kind == "rate_limit":
            wait = retry_after if retry_after is not None else 1.0
            return ApiError(
                429,
                "Too many requests: your organization's limits have been reached.",
                headers=retry_after_headers(wait),
            )
        if kind == "quota":
            return ApiError(400, "You do not have enough credits to run this task.")
        if kind == "unavailable":
            return ApiError(503, "Runway is shedding load; please try again later.")
        if kind == "moderation":
            return ApiError(400, "The input did not pass content moderation.")
        if kind == "not_found_route":
            return ApiError(404, "Not found.")
        return ApiError(500, "An internal error occurred.")

    def _check_access(self, request: Request) -> None:
        super()._check_access(request)
        version = request.headers.get("x-runway-version", "")
        if version != API_VERSION:
            words = f"is {version!r}, which" if version else "is missing; it"
            raise ApiError(
                400,
                f"The X-Runway-Version header {words} must name an API version "
                f"such as {API_VERSION}.",
            )

    def configure(self, **changes: Any) -> Any:
        """As the shared config, plus `concurrency` (tasks under way before THROTTLED)."""
        missing = object()
        concurrency = changes.pop("concurrency", missing)
        checked = _concurrency(concurrency) if concurrency is not missing else None
        config = super().configure(**changes)
        if concurrency is not missing:
            self.concurrency = checked
        return config

    def reset(self) -> None:
        super().reset()
        self.concurrency = self._default_concurrency

    def clear_data(self) -> None:
        self.tasks.clear()

    def extra_state(self) -> dict[str, Any]:
        return {"tasks": len(self.tasks), "concurrency": self.concurrency}

    # --- Creates --------------------------------------------------------------------------------

    def text_to_video(self, request: Request) -> Response:
        return self._create(request, TEXT_TO_VIDEO)

    def image_to_video(self, request: Request) -> Response:
        return self._create(request, IMAGE_TO_VIDEO)

    def _create(self, request: Request, endpoint: str) -> Response:
        if request.mime_type not in ("", "application/json"):
            raise ApiError(400, "The body must be JSON (Content-Type: application/json).")
        body = request.json()
        model_id = body.get("model")
        model = MODELS.get(model_id) if isinstance(model_id, str) else None
        shape = model.endpoints.get(endpoint) if model else None
        if model is None or shape is None:
            offered = " | ".join(repr(m) for m, row in MODELS.items() if endpoint in row.endpoints)
            raise Invalid(
                [
                    _issue(
                        "invalid_union_discriminator",
                        ["model"],
                        f"Invalid discriminator value. Expected {offered}",
                    )
                ]
            )
        issues = self._check_fields(body, model, shape)
        if issues:
            raise Invalid(issues)
        prompt = body.get("promptText", "")
        duration = body.get("duration", model.default_duration)
        seconds, billed = (
            (model.default_duration, model.durations[-1]) if duration == "auto" else (duration,) * 2
        )
        width, height = (int(side) for side in body.get("ratio", model.default_ratio).split(":"))
        pictures = self._pictures(body, endpoint, model)
        references = sum(1 for p in pictures if not p.position)
        for number in _MENTION.findall(prompt):
            if not 1 <= int(number) <= references:
                raise Invalid(
                    [
                        _issue(
                            "custom",
                            ["promptText"],
                            f"@Image{number} does not name one of the request's "
                            f"{references} reference image(s).",
                        )
                    ]
                )
        clean, markers = strip_markers(prompt)
        moderated = markers.moderation or request.forced_moderation
        config = self.config
        latency = markers.latency if markers.latency is not None else config.latency_seconds
        now = self.clock.now()
        task_id = str(uuid.uuid4())
        with self._lock:  # the slot and the task are taken together
            task = Task(
                id=task_id,
                endpoint=endpoint,
                model=model_id,
                prompt=clean,
                width=width,
                height=height,
                seconds=seconds,
                billed_seconds=billed,
                rate=model.credits_per_second,
                created=now,
                timeline=Timeline(
                    started=self._slot(now),
                    latency=latency,
                    steps=config.progress_steps,
                    fails=moderated or markers.fail,
                    fails_early=moderated,
                ),
                failure=MODERATION_FAILURE
                if moderated
                else GENERATION_FAILURE
                if markers.fail
                else None,
                cast=_cast(clean, pictures),
                fps=config.fps,
                ttl=config.asset_ttl_seconds,
                drift=take_drift(markers, config, task_id),
            )
            self.tasks.add(task.id, task)
        return json_response({"id": task.id}, job_id=task.id)

    def _slot(self, now: float) -> float:
        """When a new task may start: now, or when enough of those under way have ended.

        Tasks start in the order they came, so with n still unfinished and a limit of L the
        new one starts when the (n - L + 1)-th of them ends. A cancel frees its slot for
        tasks created after it, not for those already waiting (kept simple on purpose).
        """
        limit = self.concurrency
        if limit is None:
            return now
        busy = sorted(
            task.timeline.finishes_at
            for task in self.tasks.values()
            if task.cancelled_at is None and task.timeline.finishes_at > now
        )
        return now if len(busy) < limit else busy[len(busy) - limit]

    @staticmethod
    def _check_fields(body: dict[str, Any], model: Model, shape: Endpoint) -> list[dict[str, Any]]:
        issues = []
        unknown = sorted(set(body) - shape.fields)
        if unknown:
            names = ", ".join(f"'{name}'" for name in unknown)
            issues.append(
                _issue("unrecognized_keys", [], f"Unrecognized key(s) in object: {names}")
            )
        for name in sorted(shape.required - set(body)):
            issues.append(_issue("invalid_type", [name], "Required"))
        prompt = body.get("promptText")
        if "promptText" in body:
            if not isinstance(prompt, str) or not prompt.strip():
                issues.append(
                    _issue("too_small", ["promptText"], "promptText must be a non-empty string")
                )
            elif _utf16_length(prompt) > model.prompt_chars:
                issues.append(
                    _issue(
                        "too_big",
                        ["promptText"],
                        f"promptText must be at most {model.prompt_chars} characters "
                        f"(UTF-16 code units), not {_utf16_length(prompt)}",
                    )
                )
        ratio = body.get("ratio")
        if "ratio" in body and ratio not in shape.ratios:
            issues.append(
                _issue(
                    "invalid_enum_value",
                    ["ratio"],
                    f"Invalid enum value. Expected {' | '.join(repr(r) for r in shape.ratios)}, "
                    f"received {ratio!r}",
                )
            )
        duration = body.get("duration")
        if "duration" in body and not (
            (duration == "auto" and model.auto_duration)
            or (
                isinstance(duration, int)
                and not isinstance(duration, bool)
                and duration in model.durations
            )
        ):
            allowed = ", ".join(str(d) for d in model.durations)
            issues.append(
                _issue(
                    "invalid_duration",
                    ["duration"],
                    f"duration must be one of {allowed}"
                    + (' or "auto"' if model.auto_duration else "")
                    + f" (seconds), not {duration!r}",
                )
            )
        if "audio" in body and not isinstance(body["audio"], bool):
            issues.append(_issue("invalid_type", ["audio"], "audio must be true or false"))
        seed = body.get("seed")
        low, high = SEED_RANGE
        if "seed" in body and (
            isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high
        ):
            issues.append(_issue("invalid_type", ["seed"], f"seed must be an integer {low}-{high}"))
        if "negativePrompt" in body and not isinstance(body["negativePrompt"], str):
            issues.append(_issue("invalid_type", ["negativePrompt"], "Expected string"))
        moderation = body.get("contentModeration")
        if "contentModeration" in body and (
            not isinstance(moderation, dict)
            or set(moderation) - {"publicFigureThreshold"}
            or moderation.get("publicFigureThreshold", "auto") not in ("auto", "low")
        ):
            issues.append(
                _issue(
                    "invalid_type",
                    ["contentModeration"],
                    'contentModeration is {"publicFigureThreshold": "auto" | "low"}',
                )
            )
        if "outputFormat" in body and body["outputFormat"] != "mp4":
            issues.append(
                _issue("custom", ["outputFormat"], "this emulator renders outputFormat 'mp4' only")
            )
        if "proresProfile" in body:
            issues.append(
                _issue("custom", ["proresProfile"], "proresProfile needs a ProRes outputFormat")
            )
        references = body.get("references")
        if "references" in body:
            if not isinstance(references, list) or len(references) > model.max_references:
                issues.append(
                    _issue(
                        "too_big",
                        ["references"],
                        f"references must be an array of at most {model.max_references} images",
                    )
                )
            else:
                for n, item in enumerate(references):
                    if (
                        not isinstance(item, dict)
                        or set(item) != {"uri"}
                        or not isinstance(item["uri"], str)
                    ):
                        issues.append(
                            _issue("invalid_type", ["references", n], 'a reference is {"uri": ...}')
                        )
        for name, kind in (("referenceVideos", "video"), ("referenceAudio", "audio")):
            items = body.get(name)
            if name in body and (
                not isinstance(items, list)
                or any(
                    not isinstance(item, dict)
                    or set(item) != {"type", "uri"}
                    or item["type"] != kind
                    or not isinstance(item["uri"], str)
                    for item in items
                )
            ):
                issues.append(
                    _issue("invalid_type", [name], f'each of {name} is {{"type": "{kind}", "uri"}}')
                )
        if "promptImage" in body:
            issues += _prompt_image_issues(body["promptImage"], model)
        return issues

    def _pictures(self, body: dict[str, Any], endpoint: str, model: Model) -> list[_Picture]:
        """Every picture of the request, read and checked: its colour, its position, and
        for a reference image its picture."""
        found = []
        if endpoint == TEXT_TO_VIDEO:
            for n, item in enumerate(body.get("references") or []):
                color, picture = _image_look(item["uri"], ["references", n, "uri"])
                found.append(_Picture(color, "", picture))
            return found
        value = body["promptImage"]
        items = [{"uri": value}] if isinstance(value, str) else value
        for n, item in enumerate(items):
            path = ["promptImage"] if isinstance(value, str) else ["promptImage", n, "uri"]
            color, picture = _image_look(item["uri"], path)
            position = item.get("position", "")
            # A bare promptImage is a first frame, except to a model that takes references
            # there (seedance2); an image with a position is a keyframe either way.
            reference = not position and model.position_optional
            found.append(_Picture(color, position, picture if reference else None))
        return found

    # --- Tasks ----------------------------------------------------------------------------------

    def _task(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise ApiError(404, "Task not found.")
        return task

    def get_task(self, request: Request) -> Response:
        task = self._task(request.params["task_id"])
        resource = task.resource(self.clock.now(), request.host, self.config.asset_ttl_seconds)
        return json_response(resource)

    def delete_task(self, request: Request) -> Response:
        """Cancel a task under way (refunded unless running); delete a finished one."""
        task = self._task(request.params["task_id"])
        now = self.clock.now()
        with self._lock:
            status = task.status(now)
            if status != "CANCELLED":
                if status == "RUNNING":
                    task.charged_when_cancelled = task.rate * task.billed_seconds
                elif status != "FAILED":
                    task.charged_when_cancelled = task.charged(status)
                task.cancelled_at = now
        return Response(status=204, body=b"")

    def download(self, request: Request) -> Response:
        task = self.tasks.get(request.params["task_id"])
        now = self.clock.now()
        expires = request.query.get("exp", "")
        if (
            task is None
            or task.status(now) != "SUCCEEDED"
            or request.params["filename"] != f"{task.video_id}.mp4"
            or not expires.isdigit()
            or not hmac.compare_digest(request.query.get("sig", ""), task.signature(int(expires)))
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


# --- Helpers ----------------------------------------------------------------------------------


def _concurrency(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("'concurrency' must be an integer >= 1, or null for no limit.")
    return value


def _prompt_image_issues(value: Any, model: Model) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return []
    if not isinstance(value, list) or not value:
        return [_issue("invalid_type", ["promptImage"], "Expected a string or an array of images")]
    issues = []
    positions = []
    for n, item in enumerate(value):
        position = item.get("position") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("uri"), str)
            or set(item) - {"uri", "position"}
            or (position is None and not model.position_optional)
            or (position is not None and position not in model.positions)
        ):
            allowed = " | ".join(repr(p) for p in model.positions)
            issues.append(
                _issue(
                    "invalid_type",
                    ["promptImage", n],
                    f'an image is {{"uri": ..., "position": {allowed}}}'
                    + (" (or no position: a reference image)" if model.position_optional else ""),
                )
            )
        positions.append(position)
    keyframes = [p for p in positions if p is not None]
    if keyframes and len(keyframes) != len(positions):
        issues.append(
            _issue(
                "custom",
                ["promptImage"],
                "keyframes (first/last) and reference images cannot be mixed",
            )
        )
    if len(set(keyframes)) != len(keyframes):
        issues.append(_issue("custom", ["promptImage"], "each position may be given once"))
    if not keyframes and len(positions) > max(model.max_references, 1):
        issues.append(
            _issue(
                "too_big",
                ["promptImage"],
                f"at most {max(model.max_references, 1)} reference images",
            )
        )
    return issues


def _invalid_asset(path: list[Any], reason: str) -> Invalid:
    return Invalid([_issue("invalid_asset", path, reason)], message=f"Invalid asset: {reason}")


def _image_look(uri: str, path: list[Any]) -> tuple[str, Image.Image]:
    """The colour and picture of an image given as a data URI or an https URL, checked as
    Runway does."""
    if uri.startswith("data:"):
        if len(uri) >= DATA_URI_MAX_CHARS:
            raise _invalid_asset(path, "The data URI must be under 5MB, encoding included.")
        content_type = uri[5:].split(",")[0].split(";")[0].lower()
        if not content_type:
            raise _invalid_asset(
                path,
                "Unsupported asset type. Data URIs must include the content type "
                "of the value they encode.",
            )
        if content_type not in IMAGE_TYPES:
            raise _invalid_asset(path, f"Unsupported asset type {content_type!r}.")
        try:
            data = decode_data_url(uri)
        except ValueError:
            raise _invalid_asset(path, "Invalid data URI.") from None
    else:
        parts = urlsplit(uri)
        if not parts.scheme or not parts.netloc:
            raise _invalid_asset(path, "Invalid URL.")
        if parts.scheme != "https":
            raise _invalid_asset(path, "Only HTTPS URLs are allowed.")
        if len(uri) > URL_MAX_CHARS:
            raise _invalid_asset(path, f"URLs must be at most {URL_MAX_CHARS} characters.")
        try:
            ipaddress.ip_address(parts.hostname or "")
        except ValueError:
            pass
        else:
            raise _invalid_asset(path, "URLs must be hosted on a domain.")
        try:
            data = fetch(uri, timeout_seconds=FETCH_TIMEOUT_SECONDS, max_bytes=URL_MAX_BYTES)
        except ValueError:
            raise _invalid_asset(path, "Failed to fetch asset.") from None
    if sniff_image(data) not in IMAGE_TYPES:
        raise _invalid_asset(path, "The asset is not a JPEG, PNG or WebP image.")
    try:
        image = open_image(data)
    except ValueError:
        raise _invalid_asset(path, "The image could not be decoded.") from None
    return dominant_color(image), reference_picture(image)


def _cast(prompt: str, pictures: list[_Picture]) -> tuple[CastMember, ...]:
    """A figure per character the prompt names ("Mina (@Image1)"), from its first reference;
    a first or last frame is drawn as a frame, not a character."""
    names: dict[int, str] = {}
    for match in _LABELLED.finditer(prompt):
        names.setdefault(int(match.group(2)), name_before_label(match.group(1)))
    frames = []
    references = []
    number = 0
    for picture in pictures:
        if picture.position:
            frames.append(CastMember(name=f"{picture.position} frame", color=picture.color))
            continue
        number += 1
        name = names.get(number, f"@Image{number}")
        references.append((names.get(number), CastMember(name, picture.color, picture.picture)))
    return (*frames, *figures(references))


def _cdn_error(status: int, code: str, message: str) -> Response:
    """The file host's own XML error, not the API's JSON: it is a different service."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Response(status=status, body=body, content_type="application/xml")
