"""The Sora relay ("reverse" API) of PROVIDERS.md section 2, under /v1.

Characters are made from a video URL or an earlier task and used in prompts as
`@<character_id>`; tasks are polled (no webhooks); finished videos sit at a
plain file URL on the relay, as resellers hand out CDN links.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from jobs.emulators.base import Emulator, retry_after_headers
from jobs.emulators.inputs import fetch, probe_video
from jobs.emulators.render import (
    CastMember,
    RenderedVideo,
    dominant_color,
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
from jobs.emulators.wsgi import (
    ApiError,
    Request,
    Response,
    Router,
    bytes_response,
    json_response,
    stream_response,
)

DURATIONS = (5, 10, 15)  # its own published client asks for 5 s by default
WIDTH, HEIGHT = 720, 1280  # the relay renders portrait only
MAX_NAME = 80
FETCH_TIMEOUT_SECONDS = 10.0
FETCH_MAX_BYTES = 50 * 1024 * 1024
MENTION = re.compile(r"@(char_[a-z0-9]+)")
_ID_ALPHABET = string.ascii_lowercase + string.digits
_STATUS = {QUEUED: "queued", RUNNING: "processing", SUCCEEDED: "completed", FAILED: "failed"}
MODERATION_MESSAGE = "Your prompt was flagged by content moderation and cannot be generated."
FAILURE_MESSAGE = "Video generation failed. Please try again."


def _bad(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, message, code=code)


@dataclass(frozen=True)
class Character:
    character_id: str
    name: str
    description: str
    color: str
    created_at: int
    # The first frame of its clip: what the character looks like in the takes it is in.
    picture: Image.Image | None = field(default=None, compare=False, repr=False)

    def resource(self) -> dict[str, Any]:
        return {
            "character_id": self.character_id,
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at,
        }


@dataclass
class Task:
    task_id: str
    prompt: str  # as rendered: mentions replaced by the characters' names
    duration: int
    timeline: Timeline
    error: str | None  # the message it fails with, if the timeline fails
    cast: tuple[CastMember, ...]
    fps: int
    ttl: int
    drift: frozenset[str] = frozenset()  # what the take drifts on (markers, drift settings)
    media: Once[RenderedVideo] = field(init=False)

    def __post_init__(self) -> None:
        self.media = Once(self._render)

    def _render(self) -> RenderedVideo:
        return render_video(
            prompt=self.prompt,
            seconds=float(self.duration),
            width=WIDTH,
            height=HEIGHT,
            cast=self.cast,
            fps=self.fps,
            label=f"sora relay · {self.task_id}",
            drift=self.drift,
        )

    def status(self, now: float) -> tuple[str, int]:
        phase, progress = self.timeline.phase(now)
        return _STATUS[phase], progress

    def expired(self, now: float) -> bool:
        return now >= self.timeline.finishes_at + self.ttl


class SoraRelayEmulator(Emulator):
    name = "sora_relay"
    api_prefix = "/v1"

    def __init__(self, **config: Any) -> None:
        self.characters: Store[Character] = Store()
        self.tasks: Store[Task] = Store()
        super().__init__(**config)

    # --- Emulator hooks -------------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        p = self.api_prefix
        router.add("POST", f"{p}/sora/characters", self.create_character, op="character")
        router.add("POST", f"{p}/sora/characters/extract", self.extract_character, op="character")
        router.add("GET", f"{p}/sora/characters", self.list_characters, op="character")
        router.add("POST", f"{p}/sora/generate", self.generate, op="create")
        router.add("GET", f"{p}/sora/tasks/{{task_id}}", self.get_task, op="retrieve")
        # The finished file: outside /v1 and without auth, like a CDN link.
        router.add("GET", "/files/{filename}", self.download, op="content", public=True)

    def render_error(self, error: ApiError) -> Response:
        code = error.code or _CODES.get(error.status, "error")
        body = {"error": {"message": error.message, "code": code}}
        return json_response(body, error.status, headers=error.headers)

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        if kind in ("unauthorized", "invalid_api_key"):
            return ApiError(401, "Invalid or missing API key.", code="unauthorized")
        if kind == "rate_limit":
            wait = retry_after if retry_after is not None else 1.0
            return ApiError(
                429,
                "Too many requests, slow down.",
                code="rate_limited",
                headers=retry_after_headers(wait),
            )
        if kind == "quota":
            return ApiError(429, "Your balance is exhausted.", code="quota_exceeded")
        if kind == "unavailable":
            return ApiError(503, "The upstream service is unavailable.", code="service_unavailable")
        if kind == "moderation":
            return _bad("The video was rejected by content moderation.", "content_policy_violation")
        if kind == "not_found_route":
            return ApiError(404, "Not found.", code="not_found")
        return ApiError(500, "Internal server error.", code="internal_error")

    def clear_data(self) -> None:
        self.characters.clear()
        self.tasks.clear()

    def extra_state(self) -> dict[str, Any]:
        return {"tasks": len(self.tasks), "characters": len(self.characters)}

    # --- Characters -----------------------------------------------------------------------------

    def create_character(self, request: Request) -> Response:
        body = request.json()
        name = self._name(body)
        description = self._description(body)
        video_url = body.get("video_url")
        if not isinstance(video_url, str) or not video_url:
            raise _bad("'video_url' is required.")
        if request.forced_moderation:
            raise self.standard_error("moderation")
        try:
            data = fetch(
                video_url, timeout_seconds=FETCH_TIMEOUT_SECONDS, max_bytes=FETCH_MAX_BYTES
            )
        except ValueError as exc:
            raise _bad(f"Could not fetch video_url: {exc}", "invalid_video_url") from exc
        try:
            probe_video(data)
            frame = first_frame(data)
        except ValueError as exc:
            raise _bad("video_url does not point to a readable video.", "invalid_video") from exc
        return json_response(self._add_character(name, description, frame).resource())

    def extract_character(self, request: Request) -> Response:
        body = request.json()
        name = self._name(body)
        description = self._description(body)
        task_id = body.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise _bad("'task_id' is required.")
        task = self._task(task_id)
        status, _ = task.status(self.clock.now())
        if status != "completed":
            raise _bad(f"Task {task_id} is {status}; only completed tasks.", "task_not_completed")
        if request.forced_moderation:
            raise self.standard_error("moderation")
        frame = first_frame(task.media.get().video)
        return json_response(self._add_character(name, description, frame).resource())

    def list_characters(self, request: Request) -> Response:
        return json_response({"characters": [c.resource() for c in self.characters.values()]})

    # --- Tasks ----------------------------------------------------------------------------------

    def generate(self, request: Request) -> Response:
        body = request.json()
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _bad("'prompt' is required.")
        duration = body.get("duration")
        if isinstance(duration, bool) or duration not in DURATIONS:
            raise _bad(
                f"'duration' must be one of {', '.join(map(str, DURATIONS))} (seconds).",
                "invalid_duration",
            )
        clean, markers = strip_markers(prompt)
        cast: dict[str, CastMember] = {}
        for character_id in MENTION.findall(clean):
            character = self.characters.get(character_id)
            if character is None:
                raise _bad(f"Unknown character @{character_id}.", "character_not_found")
            cast[character_id] = CastMember(character.name, character.color, character.picture)
        # The video shows names, not ids: that is what the viewer of a real clip sees.
        shown = MENTION.sub(lambda m: cast[m.group(1)].name, clean)
        moderated = markers.moderation or request.forced_moderation
        config = self.config
        task_id = "task_" + secrets.token_hex(12)
        task = Task(
            task_id=task_id,
            prompt=shown,
            duration=duration,
            timeline=Timeline(
                started=self.clock.now(),
                latency=markers.latency if markers.latency is not None else config.latency_seconds,
                steps=config.progress_steps,
                fails=moderated or markers.fail,
                fails_early=moderated,
            ),
            error=MODERATION_MESSAGE if moderated else FAILURE_MESSAGE if markers.fail else None,
            cast=tuple(cast.values()),
            fps=config.fps,
            ttl=config.asset_ttl_seconds,
            drift=take_drift(markers, config, task_id),
        )
        self.tasks.add(task.task_id, task)
        return json_response({"task_id": task.task_id, "status": "queued"}, job_id=task.task_id)

    def get_task(self, request: Request) -> Response:
        task = self._task(request.params["task_id"])
        status, progress = task.status(self.clock.now())
        return json_response(
            {
                "task_id": task.task_id,
                "status": status,
                "progress": progress,
                "video_url": (
                    f"http://{request.host}/files/{task.task_id}.mp4"
                    if status == "completed"
                    else None
                ),
                "error": task.error if status == "failed" else None,
            }
        )

    def download(self, request: Request) -> Response:
        filename = request.params["filename"]
        task = self.tasks.get(filename.removesuffix(".mp4")) if filename.endswith(".mp4") else None
        now = self.clock.now()
        if task is None or task.status(now)[0] != "completed" or task.expired(now):
            raise ApiError(404, "File not found.", code="not_found")
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
            raise ApiError(404, f"Task {task_id} not found.", code="task_not_found")
        return task

    def _name(self, body: dict[str, Any]) -> str:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise _bad(f"'name' is required (1 to {MAX_NAME} characters).")
        return name

    def _description(self, body: dict[str, Any]) -> str:
        description = body.get("description", "")
        if description is None:
            return ""
        if not isinstance(description, str):
            raise _bad("'description' must be a string.")
        return description

    def _add_character(self, name: str, description: str, frame: Image.Image) -> Character:
        """A character seen as the first frame of its clip: its colour and its picture."""
        character = Character(
            character_id="char_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(9)),
            name=name,
            description=description,
            color=dominant_color(frame),
            created_at=int(self.clock.now()),
            picture=reference_picture(frame),
        )
        return self.characters.add(character.character_id, character)


_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
