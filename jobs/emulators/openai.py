"""The OpenAI Videos API (Sora 2) under /v1, as in OpenAI's spec and PROVIDERS.md section 1.

Strict where OpenAI's own spec is explicit (field names, enums, error shape, the
poll hint, Standard Webhooks signing), so an adapter that drifts from the real
protocol fails here first. The `characters` field of a create is the gateway
extension PROVIDERS.md describes.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from jobs.emulators.base import Emulator, retry_after_headers
from jobs.emulators.inputs import (
    decode_data_url,
    fetch,
    open_image,
    probe_video,
    sniff_image,
)
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
    InFlight,
    Once,
    Store,
    Timeline,
    strip_markers,
    take_drift,
)
from jobs.emulators.webhooks import NotifiesWhenDone, WebhookSender
from jobs.emulators.wsgi import (
    ApiError,
    Request,
    Response,
    Router,
    UploadedFile,
    bytes_response,
    json_response,
    stream_response,
)

MODELS = (
    "sora-2",
    "sora-2-pro",
    "sora-2-2025-10-06",
    "sora-2-pro-2025-10-06",
    "sora-2-2025-12-08",
)
SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
PRO_ONLY_SIZES = frozenset({"1024x1792", "1792x1024"})
SECONDS = ("4", "8", "12")
EXTENSION_SECONDS = ("4", "8", "12", "16", "20")
VARIANTS = ("video", "thumbnail", "spritesheet")
MAX_PROMPT = 32_000
MAX_CHARACTER_NAME = 80
MAX_CHARACTERS_PER_VIDEO = 2
# A character comes from a 2-4 s clip; encoders round, so allow a quarter second either way.
CHARACTER_CLIP_SECONDS = (2.0, 4.0)
CHARACTER_CLIP_TOLERANCE = 0.25
POLL_HEADER = "openai-poll-after-ms"

MODERATION_ERROR = {
    "code": "moderation_blocked",
    "message": "Your request was blocked by our moderation system.",
}
GENERATION_ERROR = {
    "code": "video_generation_failed",
    "message": "Video generation failed. Please try again.",
}
_STATUS = {QUEUED: "queued", RUNNING: "in_progress", SUCCEEDED: "completed", FAILED: "failed"}


@dataclass
class Video:
    id: str
    seq: int
    model: str
    prompt: str
    size: str
    seconds: int
    timeline: Timeline
    error: dict[str, str] | None  # what it fails with, if the timeline fails
    remixed_from: str | None
    cast: tuple[CastMember, ...]
    fps: int
    ttl: int
    drift: frozenset[str] = frozenset()  # what the take drifts on (markers, drift settings)
    media: Once[RenderedVideo] = field(init=False)
    notified: bool = False  # its webhook event has been queued

    def __post_init__(self) -> None:
        self.media = Once(self._render)

    def _render(self) -> RenderedVideo:
        width, height = (int(side) for side in self.size.split("x"))
        return render_video(
            prompt=self.prompt,
            seconds=float(self.seconds),
            width=width,
            height=height,
            cast=self.cast,
            fps=self.fps,
            label=f"{self.model} · {self.id}",
            drift=self.drift,
        )

    def status(self, now: float) -> tuple[str, int]:
        phase, progress = self.timeline.phase(now)
        return _STATUS[phase], progress

    def completed_at(self, now: float) -> int | None:
        return int(self.timeline.finishes_at) if now >= self.timeline.finishes_at else None

    def expires_at(self, now: float) -> int | None:
        status, _ = self.status(now)
        return int(self.timeline.finishes_at) + self.ttl if status == "completed" else None

    def resource(self, now: float) -> dict[str, Any]:
        """Exactly the spec's VideoResource fields."""
        status, progress = self.status(now)
        return {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": status,
            "progress": progress,
            "created_at": int(self.timeline.started),
            "completed_at": self.completed_at(now),
            "expires_at": self.expires_at(now),
            "prompt": self.prompt,
            "size": self.size,
            "seconds": str(self.seconds),
            "remixed_from_video_id": self.remixed_from,
            "error": dict(self.error) if status == "failed" and self.error else None,
        }


@dataclass(frozen=True)
class Character:
    id: str
    name: str
    color: str
    created_at: int
    # The first frame of its clip: what the character looks like in the takes it is in.
    picture: Image.Image | None = field(default=None, compare=False, repr=False)

    def resource(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at}


# --- Validation in OpenAI's words ------------------------------------------------------------


def _invalid(message: str, param: str | None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code, type="invalid_request_error")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, UploadedFile):
        return "a file"
    return "null" if value is None else "a string"


def _reject_unknown(payload: Mapping[str, Any], allowed: set[str]) -> None:
    for name in payload:
        if name not in allowed:
            raise _invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")


def _text(
    payload: Mapping[str, Any],
    name: str,
    *,
    max_length: int,
    required: bool = True,
) -> str | None:
    if name not in payload:
        if required:
            raise _invalid(
                f"Missing required parameter: '{name}'.", name, "missing_required_parameter"
            )
        return None
    value = payload[name]
    if not isinstance(value, str):
        raise _invalid(
            f"Invalid type for '{name}': expected a string, but got {_json_type(value)} instead.",
            name,
            "invalid_type",
        )
    if not value:
        raise _invalid(
            f"Invalid '{name}': empty string. Expected a string with minimum length 1, "
            "but got an empty string instead.",
            name,
            "empty_string",
        )
    if len(value) > max_length:
        raise _invalid(
            f"Invalid '{name}': string too long. Expected a string with maximum length "
            f"{max_length}, but got a string with length {len(value)} instead.",
            name,
            "string_above_max_length",
        )
    return value


def _choice(payload: Mapping[str, Any], name: str, options: tuple[str, ...], default: str) -> str:
    value = payload.get(name, default)
    if not isinstance(value, str):
        raise _invalid(
            f"Invalid type for '{name}': expected one of {', '.join(options)} as a string, "
            f"but got {_json_type(value)} instead.",
            name,
            "invalid_type",
        )
    if value not in options:
        listed = ", ".join(f"'{option}'" for option in options[:-1])
        raise _invalid(
            f"Invalid value: '{value}'. Supported values are: {listed} and '{options[-1]}'.",
            name,
        )
    return value


def _object(payload: Mapping[str, Any], name: str) -> Any:
    """A nested value; multipart may carry it as a JSON string."""
    value = payload.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _invalid(
                f"Invalid '{name}': expected JSON, a file or bracketed form fields.",
                name,
                "invalid_type",
            ) from exc
    return value


class OpenAIVideosEmulator(NotifiesWhenDone, Emulator):
    name = "openai"
    watcher_name = "openai-events"
    api_prefix = "/v1"

    def __init__(self, **config: Any) -> None:
        self.videos: Store[Video] = Store()
        self.characters: Store[Character] = Store()
        self.in_flight = InFlight()
        self._seq = 0
        self._seq_lock = threading.Lock()
        self.webhooks = WebhookSender()
        super().__init__(**config)

    # --- Emulator hooks -------------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        p = self.api_prefix
        # Literal paths first: /videos/characters must not be read as a video id.
        router.add("POST", f"{p}/videos", self.create_video, op="create")
        router.add("GET", f"{p}/videos", self.list_videos, op="list")
        router.add("POST", f"{p}/videos/characters", self.create_character, op="character")
        router.add(
            "GET", f"{p}/videos/characters/{{character_id}}", self.get_character, op="character"
        )
        router.add("POST", f"{p}/videos/edits", self.edit_video, op="create")
        router.add("POST", f"{p}/videos/extensions", self.extend_video, op="create")
        router.add("GET", f"{p}/videos/{{video_id}}", self.retrieve_video, op="retrieve")
        router.add("DELETE", f"{p}/videos/{{video_id}}", self.delete_video, op="delete")
        router.add("POST", f"{p}/videos/{{video_id}}/remix", self.remix_video, op="create")
        router.add("GET", f"{p}/videos/{{video_id}}/content", self.download, op="content")

    def render_error(self, error: ApiError) -> Response:
        default_type = "server_error" if error.status >= 500 else "invalid_request_error"
        body = {
            "error": {
                "message": error.message,
                "type": error.type or default_type,
                "param": error.param,
                "code": error.code,
            }
        }
        return json_response(body, error.status, headers=error.headers)

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        if kind == "unauthorized":
            return ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="invalid_api_key",
                type="invalid_request_error",
            )
        if kind == "invalid_api_key":
            return ApiError(
                401,
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
                type="invalid_request_error",
            )
        if kind == "rate_limit":
            wait = retry_after if retry_after is not None else 1.0
            return ApiError(
                429,
                f"Rate limit reached for requests. Please try again in {wait:.3g}s.",
                code="rate_limit_exceeded",
                type="rate_limit_exceeded",
                headers=retry_after_headers(wait, with_ms=True),
            )
        if kind == "quota":
            return ApiError(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                code="insufficient_quota",
                type="insufficient_quota",
            )
        if kind == "unavailable":
            return ApiError(503, "The server is overloaded or not ready yet.", type="server_error")
        if kind == "moderation":
            return _invalid(MODERATION_ERROR["message"], None, MODERATION_ERROR["code"])
        if kind == "not_found_route":
            return ApiError(404, "Invalid URL", type="invalid_request_error")
        return ApiError(
            500,
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
        )

    def clear_data(self) -> None:
        self.videos.clear()
        self.characters.clear()
        self.webhooks.clear()
        self.in_flight.clear()

    def extra_state(self) -> dict[str, Any]:
        return {
            "videos": len(self.videos),
            "characters": len(self.characters),
            **self.in_flight.report(self.clock.now()),
            "webhooks": {"deliveries": self.webhooks.records()},
        }

    # --- Videos ---------------------------------------------------------------------------------

    def create_video(self, request: Request) -> Response:
        payload = request.payload()
        _reject_unknown(
            payload, {"prompt", "model", "seconds", "size", "input_reference", "characters"}
        )
        prompt = _text(payload, "prompt", max_length=MAX_PROMPT)
        model = _choice(payload, "model", MODELS, "sora-2")
        seconds = _choice(payload, "seconds", SECONDS, "4")
        size = _choice(payload, "size", SIZES, "720x1280")
        if size in PRO_ONLY_SIZES and "-pro" not in model:
            raise _invalid(
                f"Invalid value: '{size}'. This size is only available with sora-2-pro models.",
                "size",
            )
        cast = [*self._characters_cast(payload), *self._reference_cast(payload, size)]
        video = self._new_video(
            request,
            prompt=prompt or "",
            model=model,
            size=size,
            seconds=int(seconds),
            cast=tuple(cast),
        )
        return json_response(video.resource(self.clock.now()), job_id=video.id)

    def retrieve_video(self, request: Request) -> Response:
        video = self._video(request.params["video_id"])
        resource = video.resource(self.clock.now())
        headers = []
        if resource["status"] in ("queued", "in_progress"):
            headers.append((POLL_HEADER, str(self.config.poll_after_ms)))
        return json_response(resource, headers=headers)

    def list_videos(self, request: Request) -> Response:
        query = request.query
        order = _choice(query, "order", ("asc", "desc"), "desc")
        limit_text = query.get("limit", "20")
        if not limit_text.isdigit() or int(limit_text) > 100:
            raise _invalid(
                f"Invalid 'limit': expected an integer between 0 and 100, got '{limit_text}'.",
                "limit",
            )
        limit = int(limit_text)
        videos = sorted(self.videos.values(), key=lambda v: v.seq, reverse=order == "desc")
        after = query.get("after")
        if after:
            ids = [video.id for video in videos]
            # An unknown cursor (say, a deleted video) yields an empty page, not an error.
            videos = videos[ids.index(after) + 1 :] if after in ids else []
        page = videos[:limit]
        now = self.clock.now()
        return json_response(
            {
                "object": "list",
                "data": [video.resource(now) for video in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(videos) > len(page),
            }
        )

    def delete_video(self, request: Request) -> Response:
        video = self._video(request.params["video_id"])
        status, _ = video.status(self.clock.now())
        if status not in ("completed", "failed"):
            raise _invalid(
                f"Video '{video.id}' is {status}; only completed or failed videos can be deleted.",
                None,
                "video_not_finished",
            )
        self.videos.remove(video.id)
        return json_response({"id": video.id, "object": "video.deleted", "deleted": True})

    def remix_video(self, request: Request) -> Response:
        source = self._video(request.params["video_id"])
        payload = request.payload()
        _reject_unknown(payload, {"prompt"})
        prompt = _text(payload, "prompt", max_length=MAX_PROMPT)
        self._require_completed(source, "remixed", param=None)
        video = self._new_video(
            request,
            prompt=prompt or "",
            model=source.model,
            size=source.size,
            seconds=source.seconds,
            cast=source.cast,
            remixed_from=source.id,
        )
        return json_response(video.resource(self.clock.now()), job_id=video.id)

    def edit_video(self, request: Request) -> Response:
        payload = request.payload()
        _reject_unknown(payload, {"prompt", "video"})
        prompt = _text(payload, "prompt", max_length=MAX_PROMPT)
        model, size, seconds, cast = self._source(payload, "edited")
        video = self._new_video(
            request, prompt=prompt or "", model=model, size=size, seconds=seconds, cast=cast
        )
        return json_response(video.resource(self.clock.now()), job_id=video.id)

    def extend_video(self, request: Request) -> Response:
        payload = request.payload()
        _reject_unknown(payload, {"prompt", "seconds", "video"})
        prompt = _text(payload, "prompt", max_length=MAX_PROMPT)
        if "seconds" not in payload:
            raise _invalid(
                "Missing required parameter: 'seconds'.", "seconds", "missing_required_parameter"
            )
        extra = int(_choice(payload, "seconds", EXTENSION_SECONDS, "4"))
        model, size, seconds, cast = self._source(payload, "extended")
        # `seconds` in the request is the new segment; the result reports the stitched total.
        video = self._new_video(
            request,
            prompt=prompt or "",
            model=model,
            size=size,
            seconds=seconds + extra,
            cast=cast,
        )
        return json_response(video.resource(self.clock.now()), job_id=video.id)

    def download(self, request: Request) -> Response:
        variant = _choice(request.query, "variant", VARIANTS, "video")
        video = self._video(request.params["video_id"])
        now = self.clock.now()
        status, _ = video.status(now)
        if status != "completed":
            detail = "failed and has no content" if status == "failed" else "not ready yet"
            raise ApiError(
                404,
                f"Video '{video.id}' is {detail}; its content is available once the "
                "status is completed.",
                code="video_not_ready",
                type="invalid_request_error",
            )
        expires_at = video.expires_at(now)
        if expires_at is not None and now >= expires_at:
            raise ApiError(
                404,
                f"The content of video '{video.id}' has expired.",
                code="video_expired",
                type="invalid_request_error",
            )
        media = video.media.get()
        if variant == "thumbnail":
            return bytes_response(media.thumbnail, "image/webp")
        if variant == "spritesheet":
            return bytes_response(media.spritesheet, "image/webp")
        pad = self.config.pad_video_bytes
        if pad:
            return stream_response(
                mp4_with_padding(media.video, pad),
                length=padded_length(media.video, pad),
                content_type="video/mp4",
            )
        return bytes_response(media.video, "video/mp4")

    # --- Characters -----------------------------------------------------------------------------

    def create_character(self, request: Request) -> Response:
        if request.mime_type != "multipart/form-data":
            raise _invalid(
                "This endpoint takes multipart/form-data with 'name' and a 'video' file.",
                None,
                "invalid_content_type",
            )
        payload = request.payload()
        _reject_unknown(payload, {"name", "video"})
        name = _text(payload, "name", max_length=MAX_CHARACTER_NAME) or ""
        upload = payload.get("video")
        if upload is None:
            raise _invalid(
                "Missing required parameter: 'video'.", "video", "missing_required_parameter"
            )
        if not isinstance(upload, UploadedFile):
            raise _invalid(
                f"Invalid type for 'video': expected a file, but got {_json_type(upload)} instead.",
                "video",
                "invalid_type",
            )
        if request.forced_moderation:
            raise self.standard_error("moderation")
        try:
            probe = probe_video(upload.data)
            frame = first_frame(upload.data)
        except ValueError as exc:
            raise _invalid(
                "The uploaded file is not a readable video.", "video", "invalid_video"
            ) from exc
        low, high = CHARACTER_CLIP_SECONDS
        if not low - CHARACTER_CLIP_TOLERANCE <= probe.seconds <= high + CHARACTER_CLIP_TOLERANCE:
            raise _invalid(
                f"Character videos must be {low:g} to {high:g} seconds long; "
                f"this one is {probe.seconds:.2f} seconds.",
                "video",
                "invalid_video_duration",
            )
        character = Character(
            id="char_" + secrets.token_hex(16),
            name=name,
            color=dominant_color(frame),
            created_at=int(self.clock.now()),
            picture=reference_picture(frame),
        )
        self.characters.add(character.id, character)
        return json_response(character.resource())

    def get_character(self, request: Request) -> Response:
        character = self.characters.get(request.params["character_id"])
        if character is None:
            raise ApiError(
                404,
                f"Character '{request.params['character_id']}' not found.",
                code="character_not_found",
                type="invalid_request_error",
            )
        return json_response(character.resource())

    # --- Helpers --------------------------------------------------------------------------------

    def _new_video(
        self,
        request: Request,
        *,
        prompt: str,
        model: str,
        size: str,
        seconds: int,
        cast: tuple[CastMember, ...],
        remixed_from: str | None = None,
    ) -> Video:
        clean, markers = strip_markers(prompt)
        moderated = markers.moderation or request.forced_moderation
        config = self.config
        timeline = Timeline(
            started=self.clock.now(),
            latency=markers.latency if markers.latency is not None else config.latency_seconds,
            steps=config.progress_steps,
            fails=moderated or markers.fail,
            fails_early=moderated,
        )
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        video_id = "video_" + secrets.token_hex(16)
        video = Video(
            id=video_id,
            seq=seq,
            model=model,
            prompt=clean,
            size=size,
            seconds=seconds,
            timeline=timeline,
            error=MODERATION_ERROR if moderated else GENERATION_ERROR if markers.fail else None,
            remixed_from=remixed_from,
            cast=cast,
            fps=config.fps,
            ttl=config.asset_ttl_seconds,
            drift=take_drift(markers, config, video_id),
        )
        self.in_flight.add(timeline)
        return self.videos.add(video.id, video)

    def _video(self, video_id: str) -> Video:
        video = self.videos.get(video_id)
        if video is None:
            raise ApiError(
                404,
                f"Video with id '{video_id}' not found.",
                code="video_not_found",
                type="invalid_request_error",
            )
        return video

    def _require_completed(self, video: Video, verb: str, *, param: str | None) -> None:
        status, _ = video.status(self.clock.now())
        if status != "completed":
            raise _invalid(
                f"Video '{video.id}' is {status}; only completed videos can be {verb}.",
                param,
                "video_not_completed",
            )

    def _source(
        self, payload: Mapping[str, Any], verb: str
    ) -> tuple[str, str, int, tuple[CastMember, ...]]:
        """(model, size, seconds, cast) of the video an edit or extension starts from."""
        value = _object(payload, "video")
        if value is None:
            raise _invalid(
                "Missing required parameter: 'video'.", "video", "missing_required_parameter"
            )
        if isinstance(value, UploadedFile):
            try:
                probe = probe_video(value.data)
            except ValueError as exc:
                raise _invalid(
                    "The uploaded file is not a readable video.", "video", "invalid_video"
                ) from exc
            size = "1280x720" if probe.width > probe.height else "720x1280"
            return "sora-2", size, max(1, round(probe.seconds)), ()
        if not isinstance(value, dict) or set(value) != {"id"} or not isinstance(value["id"], str):
            raise _invalid(
                "Invalid 'video': expected a file or an object with exactly an 'id'.",
                "video",
                "invalid_type",
            )
        source = self._video(value["id"])
        self._require_completed(source, verb, param="video")
        return source.model, source.size, source.seconds, source.cast

    def _characters_cast(self, payload: Mapping[str, Any]) -> list[CastMember]:
        refs = _object(payload, "characters")
        if refs is None:
            return []
        if not isinstance(refs, list) or not all(
            isinstance(ref, dict) and set(ref) == {"id"} and isinstance(ref["id"], str)
            for ref in refs
        ):
            raise _invalid(
                'Invalid \'characters\': expected an array of objects like {"id": "char_…"}.',
                "characters",
                "invalid_type",
            )
        if len(refs) > MAX_CHARACTERS_PER_VIDEO:
            raise _invalid(
                f"Invalid 'characters': at most {MAX_CHARACTERS_PER_VIDEO} characters per "
                f"video, got {len(refs)}.",
                "characters",
                "array_above_max_length",
            )
        cast = []
        for ref in refs:
            character = self.characters.get(ref["id"])
            if character is None:
                raise _invalid(
                    f"Character '{ref['id']}' not found.", "characters", "character_not_found"
                )
            cast.append(CastMember(character.name, character.color, character.picture))
        return cast

    def _reference_cast(self, payload: Mapping[str, Any], size: str) -> list[CastMember]:
        """The input_reference image as a cast member in its dominant colour."""
        value = _object(payload, "input_reference")
        if value is None:
            return []
        if isinstance(value, UploadedFile):
            data = value.data
        elif isinstance(value, dict):
            keys = set(value)
            if keys not in ({"image_url"}, {"file_id"}) or not isinstance(
                next(iter(value.values())), str
            ):
                raise _invalid(
                    "Invalid 'input_reference': provide exactly one of 'image_url' or 'file_id'.",
                    "input_reference",
                )
            if "file_id" in keys:
                # No Files API here to resolve it from: accepted, but it adds no colour.
                return []
            url = value["image_url"]
            try:
                data = decode_data_url(url) if url.startswith("data:") else fetch(url)
            except ValueError as exc:
                raise _invalid(
                    f"Invalid 'input_reference.image_url': {exc}", "input_reference"
                ) from exc
        else:
            raise _invalid(
                "Invalid 'input_reference': expected an image file or an object with "
                "'image_url' or 'file_id'.",
                "input_reference",
                "invalid_type",
            )
        if sniff_image(data) is None:
            raise _invalid(
                "Invalid file format for 'input_reference'. Supported formats are: "
                "'image/jpeg', 'image/png' and 'image/webp'.",
                "input_reference",
                "invalid_image_format",
            )
        try:
            image = open_image(data)
        except ValueError as exc:
            raise _invalid(str(exc), "input_reference", "invalid_image") from exc
        if f"{image.width}x{image.height}" != size:
            raise _invalid(
                f"Inpaint image must match the requested width and height: the video is {size}, "
                f"the image is {image.width}x{image.height}.",
                "input_reference",
            )
        return [CastMember("reference", dominant_color(image), reference_picture(image))]

    # --- Webhooks -------------------------------------------------------------------------------

    def notify_finished(self, now: float) -> None:
        """Queue a webhook event for every video that has reached a terminal state."""
        for video in self.videos.values():
            if video.notified or now < video.timeline.finishes_at:
                continue
            video.notified = True  # only this thread writes it
            config = self.config
            if not config.webhook_url:
                continue
            status, _ = video.status(now)
            event = {
                "id": "evt_" + secrets.token_hex(16),
                "object": "event",
                # Wall time, like the signature's timestamp: receivers compare it with theirs.
                "created_at": int(time.time()),
                "type": "video.completed" if status == "completed" else "video.failed",
                "data": {"id": video.id},
            }
            self.webhooks.send(
                url=config.webhook_url,
                secret=config.webhook_secret,
                event=event,
                copies=config.webhook_duplicates,
            )
