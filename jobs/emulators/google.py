"""Google's video routes (PROVIDERS.md section 3): Veo 3.1 on Vertex AI, Gemini Omni Flash.

`VertexVeoEmulator` serves Vertex AI's long-running predict under
`/v1/projects/{project}/locations/{location}` (and the express-mode `/v1`):
`…/publishers/google/models/{model}:predictLongRunning` answers an operation's name,
`…:fetchPredictOperation` answers the operation, its video inline as base64 once it
is done. Its safety filters withhold a video as Veo does: the operation is done, with
`raiMediaFilteredCount` and reasons and no video.

`GeminiEmulator` serves the Interactions API under `/v1beta`: `POST /interactions`
(background, content blocks in, a video out), `GET /interactions/{id}`, `POST
/interactions/{id}/cancel`, and the Files API link the video is delivered by
(`/v1beta/files/{id}:download`, keyed, gone after asset_ttl_seconds: 48 h). Finished
interactions are announced by Standard Webhooks deliveries ("video.generated",
"interaction.failed", "interaction.cancelled") to the request's `webhook_config.uris`,
or else to the configured webhook_url, signed with the configured webhook_secret.

Both speak Google's error body, `{"error": {"code": <HTTP>, "message", "status",
"details"?}}`: 429 RESOURCE_EXHAUSTED with Retry-After and a RetryInfo detail (its
QuotaFailure names a per-minute limit; a spent quota names a per-day one), 503
UNAVAILABLE, 400 INVALID_ARGUMENT with reason API_KEY_INVALID for a wrong key.
Beyond the shared prompt markers, `[[emulate:refuse]]` makes the create itself fail
the prompt check (400 INVALID_ARGUMENT), as Google does for words it will not take.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
import time
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
    first_frame_color,
    mp4_with_padding,
    padded_length,
    reference_picture,
    render_video,
)
from jobs.emulators.state import (
    FAILED,
    SUCCEEDED,
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
    bytes_response,
    json_response,
    stream_response,
)

# HTTP status -> google.rpc status name, for errors raised without one.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_RPC_NAMES = frozenset({*_STATUS_NAMES.values(), "FAILED_PRECONDITION"})
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_REFUSE = re.compile(r"\s*\[\[emulate:refuse\]\]")
# "Mina (image 1)" (Veo's plain words) or "Mina (image_1)" (a Gemini block name).
_LABELLED = re.compile(r"(\S+(?: \S+){0,2}) \((image|video)[ _](\d+)\)")
FETCH_TIMEOUT_SECONDS = 10.0
FETCH_MAX_BYTES = 50 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


class GoogleError(ApiError):
    """An ApiError with Google's `details` list (ErrorInfo, QuotaFailure, RetryInfo)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        rpc_status: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(status, message, code=rpc_status, headers=headers or ())
        self.details = details or []


def invalid(message: str) -> GoogleError:
    return GoogleError(400, message, rpc_status="INVALID_ARGUMENT")


def _unknown_field(name: str, where: str = "") -> GoogleError:
    # Google's JSON parser names the field and the message it is not part of.
    at = f" at '{where}'" if where else ""
    return invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _decode_base64(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise invalid(f"{what} must be a non-empty base64 string.")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise invalid(f"{what} is not valid base64.") from exc


def _image_look(data: bytes, what: str) -> tuple[str, Image.Image]:
    """An image's colour and its picture (what a take composites, for a reference)."""
    if sniff_image(data) is None:
        raise invalid(f"{what}: the image must be JPEG, PNG or WebP.")
    try:
        image = open_image(data)
    except ValueError as exc:
        raise invalid(f"{what}: {exc}") from exc
    return dominant_color(image), reference_picture(image)


def _names(prompt: str) -> dict[tuple[str, int], str]:
    """What the prompt calls each reference: the capitalised words before "(image 1)"."""
    names: dict[tuple[str, int], str] = {}
    for match in _LABELLED.finditer(prompt):
        words = match.group(1).split()
        run: list[str] = []
        for word in reversed(words):
            if not word[:1].isupper():
                break
            run.insert(0, word)
        names.setdefault((match.group(2), int(match.group(3))), " ".join(run or words[-1:]))
    return names


class _GoogleEmulator(Emulator):
    """The key header, Google's error body and its standard answers, for both routes."""

    def credential(self, request: Request) -> str | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key:
            return key
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        accepted = self.config.accepted_api_keys
        if accepted and token not in accepted:
            # A wrong OAuth token is 401, not the 400 a wrong API key gets.
            raise GoogleError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                rpc_status="UNAUTHENTICATED",
            )
        return token

    def render_error(self, error: ApiError) -> Response:
        status = error.code if error.code in _RPC_NAMES else None
        body: dict[str, Any] = {
            "code": error.status,
            "message": error.message,
            "status": status or _STATUS_NAMES.get(error.status, "INTERNAL"),
        }
        details = getattr(error, "details", None)
        if details:
            body["details"] = details
        return json_response({"error": body}, error.status, headers=error.headers)

    # What differs between the two services' standard answers.
    service = "generativelanguage.googleapis.com"
    missing_credential = (401, "UNAUTHENTICATED", "Request is missing required credentials.")
    refusal = "The prompt could not be submitted."

    def _quota_failure(self, quota_id: str) -> dict[str, Any]:
        return {
            "@type": _QUOTA_FAILURE,
            "violations": [
                {"quotaMetric": f"{self.service}/video_generation", "quotaId": quota_id}
            ],
        }

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        if kind == "unauthorized":
            status, name, message = self.missing_credential
            return GoogleError(status, message, rpc_status=name)
        if kind == "invalid_api_key":
            return GoogleError(
                400,
                "API key not valid. Please pass a valid API key.",
                rpc_status="INVALID_ARGUMENT",
                details=[
                    {
                        "@type": _ERROR_INFO,
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": self.service},
                    }
                ],
            )
        if kind == "rate_limit":
            wait = max(1, math.ceil(retry_after if retry_after is not None else 1.0))
            return GoogleError(
                429,
                "Resource exhausted: too many requests per minute for this model. "
                "Please retry later.",
                rpc_status="RESOURCE_EXHAUSTED",
                details=[
                    self._quota_failure("GenerateRequestsPerMinutePerProjectPerModel"),
                    {"@type": _RETRY_INFO, "retryDelay": f"{wait}s"},
                ],
                headers=retry_after_headers(wait),
            )
        if kind == "quota":
            return GoogleError(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                rpc_status="RESOURCE_EXHAUSTED",
                details=[self._quota_failure("GenerateRequestsPerDayPerProjectPerModel")],
            )
        if kind == "unavailable":
            return GoogleError(
                503, "The service is currently unavailable.", rpc_status="UNAVAILABLE"
            )
        if kind == "moderation":
            return invalid(self.refusal)
        if kind == "not_found_route":
            return GoogleError(404, "Requested entity was not found.", rpc_status="NOT_FOUND")
        return GoogleError(500, "Internal error encountered.", rpc_status="INTERNAL")

    def _json_body(self, request: Request) -> dict[str, Any]:
        if request.mime_type not in ("", "application/json"):
            raise invalid(f"Invalid content type {request.mime_type}: send application/json.")
        return request.json()


# --- Veo 3.1 on Vertex AI ---------------------------------------------------------------------

VEO_MODELS = ("veo-3.1-generate-001", "veo-3.1-fast-generate-001")
VEO_PROJECT, VEO_LOCATION = "castboard-emulator", "us-central1"
VEO_DURATIONS = (4, 6, 8)
VEO_EXTEND_SECONDS = 7  # [3P] an extension adds 7 s to the video it is given
VEO_EXTEND_MAX_INPUT = 30.0  # [3P] the video to extend lasts 1-30 s
VEO_RATIOS = ("16:9", "9:16")
VEO_RESOLUTIONS = ("720p", "1080p")
VEO_MAX_ASSETS = 3
VEO_FRAMES = {
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "9:16"): (1080, 1920),
}
VEO_INSTANCE_FIELDS = frozenset({"prompt", "image", "lastFrame", "referenceImages", "video"})
VEO_PARAMETERS = frozenset(
    {
        "durationSeconds",
        "aspectRatio",
        "resolution",
        "generateAudio",
        "sampleCount",
        "seed",
        "negativePrompt",
        "personGeneration",
        "storageUri",
        "enhancePrompt",
        "compressionQuality",
    }
)
VEO_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
VEO_RAI_REASON = (
    "Unable to show generated videos because they violated Vertex AI's usage guidelines. "
    "Support codes: 90789179"
)
_OPERATION = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/google/models/"
    r"(?P<model>[^/]+)/operations/(?P<id>[^/]+)$"
)


@dataclass
class Operation:
    id: str
    name: str
    model: str
    prompt: str
    seconds: float  # of the rendered video: an extension's is the stitched total
    frame: tuple[int, int]
    samples: int
    storage_uri: str
    timeline: Timeline
    outcome: str  # "video", "filtered" (RAI) or "error"
    cast: tuple[CastMember, ...]
    fps: int
    drift: frozenset[str] = frozenset()  # what the take drifts on (markers, drift settings)
    media: Once[RenderedVideo] = field(init=False)

    def __post_init__(self) -> None:
        self.media = Once(self._render)

    def _render(self) -> RenderedVideo:
        width, height = self.frame
        return render_video(
            prompt=self.prompt,
            seconds=self.seconds,
            width=width,
            height=height,
            cast=self.cast,
            fps=self.fps,
            label=f"{self.model} · {self.id[:8]}",
            drift=self.drift,
        )

    def resource(self, now: float) -> dict[str, Any]:
        phase, _ = self.timeline.phase(now)
        body: dict[str, Any] = {"name": self.name}
        if phase not in (SUCCEEDED, FAILED):
            return body | {"done": False}
        body["done"] = True
        if self.outcome == "error":
            body["error"] = {"code": 13, "message": "Internal error encountered."}
        elif self.outcome == "filtered":
            body["response"] = {
                "@type": VEO_RESPONSE_TYPE,
                "raiMediaFilteredCount": self.samples,
                "raiMediaFilteredReasons": [VEO_RAI_REASON],
            }
        else:
            if self.storage_uri:
                base = self.storage_uri.rstrip("/")
                videos = [
                    {"gcsUri": f"{base}/{self.id}/sample_{n}.mp4", "mimeType": "video/mp4"}
                    for n in range(self.samples)
                ]
            else:
                inline = base64.b64encode(self.media.get().video).decode()
                videos = [
                    {"bytesBase64Encoded": inline, "mimeType": "video/mp4"}
                    for _ in range(self.samples)
                ]
            body["response"] = {
                "@type": VEO_RESPONSE_TYPE,
                "raiMediaFilteredCount": 0,
                "videos": videos,
            }
        return body


class VertexVeoEmulator(_GoogleEmulator):
    name = "veo"
    api_prefix = f"/v1/projects/{VEO_PROJECT}/locations/{VEO_LOCATION}"
    service = "aiplatform.googleapis.com"
    missing_credential = (
        401,
        "UNAUTHENTICATED",
        "Request is missing required authentication credential. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential.",
    )
    refusal = (
        "The prompt could not be submitted. This prompt contains sensitive words that "
        "violate Google's Responsible AI practices. Try rephrasing the prompt."
    )

    def __init__(self, **config: Any) -> None:
        self.operations: Store[Operation] = Store()
        super().__init__(**config)

    def add_routes(self, router: Router) -> None:
        # Regional (project and location in the path) and express mode (`/v1` alone).
        for prefix in ("/v1/projects/{project}/locations/{location}", "/v1"):
            models = f"{prefix}/publishers/google/models/{{model}}"
            router.add("POST", f"{models}:predictLongRunning", self.predict, op="create")
            router.add(
                "POST", f"{models}:fetchPredictOperation", self.fetch_operation, op="retrieve"
            )

    def clear_data(self) -> None:
        self.operations.clear()

    def extra_state(self) -> dict[str, Any]:
        return {"operations": len(self.operations)}

    # --- Handlers ---------------------------------------------------------------------------

    def _model(self, request: Request) -> str:
        model = request.params["model"]
        if model not in VEO_MODELS:
            project = request.params.get("project", VEO_PROJECT)
            location = request.params.get("location", VEO_LOCATION)
            raise GoogleError(
                404,
                f"Publisher Model `projects/{project}/locations/{location}/publishers/google/"
                f"models/{model}` was not found or your project does not have access to it.",
                rpc_status="NOT_FOUND",
            )
        return model

    def predict(self, request: Request) -> Response:
        model = self._model(request)
        body = self._json_body(request)
        for name in body:
            if name not in ("instances", "parameters"):
                raise _unknown_field(name)
        instances = body.get("instances")
        if (
            not isinstance(instances, list)
            or len(instances) != 1
            or not isinstance(instances[0], dict)
        ):
            raise invalid("`instances` must hold exactly one instance.")
        instance = instances[0]
        for name in instance:
            if name not in VEO_INSTANCE_FIELDS:
                raise _unknown_field(name, "instances[0]")
        parameters = body.get("parameters")
        if not isinstance(parameters, dict):
            raise invalid("`parameters` is required.")
        for name in parameters:
            if name not in VEO_PARAMETERS:
                raise _unknown_field(name, "parameters")
        prompt = instance.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise invalid("`instances[0].prompt` is required.")
        if _REFUSE.search(prompt):
            raise self.standard_error("moderation")
        clean, markers = strip_markers(prompt)

        extending = "video" in instance
        references = instance.get("referenceImages")
        feature = (
            "video_extension"
            if extending
            else "reference_to_video"
            if references
            else "image_to_video"
            if "image" in instance
            else "text_to_video"
        )
        seconds = self._duration(parameters, feature, extending)
        ratio = parameters.get("aspectRatio", "16:9")
        if ratio not in VEO_RATIOS:
            raise invalid(
                f"Aspect ratio {ratio} is not supported. Supported aspect ratios: "
                f"{', '.join(VEO_RATIOS)}."
            )
        resolution = parameters.get("resolution", "720p")
        if resolution not in VEO_RESOLUTIONS:
            raise invalid(
                f"Resolution {resolution} is not supported. Supported resolutions: "
                f"{', '.join(VEO_RESOLUTIONS)}."
            )
        if not isinstance(parameters.get("generateAudio"), bool):
            raise invalid(
                "`parameters.generateAudio` is required for Veo 3 models (true or false)."
            )
        samples = parameters.get("sampleCount", 1)
        if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 4:
            raise invalid("`parameters.sampleCount` must be an integer from 1 to 4.")
        seed = parameters.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
            raise invalid("`parameters.seed` must be an integer from 0 to 4294967295.")
        storage = parameters.get("storageUri", "")
        if storage and (not isinstance(storage, str) or not storage.startswith("gs://")):
            raise invalid("`parameters.storageUri` must be a gs:// address.")

        cast: list[CastMember] = []
        names = _names(clean)
        if "image" in instance:
            cast.append(CastMember("first frame", self._picture(instance["image"], "image")))
        if "lastFrame" in instance:
            if "image" not in instance:
                raise invalid("`lastFrame` needs `image`: a last frame needs a first frame.")
            cast.append(CastMember("last frame", self._picture(instance["lastFrame"], "lastFrame")))
        if references is not None:
            if extending:
                raise invalid("`referenceImages` cannot be combined with `video`.")
            cast += self._references(references, seconds, ratio, names)
        if extending:
            if resolution != "720p":
                raise invalid("Video extension supports 720p videos only.")
            color, source_seconds = self._source(instance["video"])
            cast.append(CastMember("earlier video", color))
            seconds = source_seconds + VEO_EXTEND_SECONDS  # the result is the whole video

        moderated = markers.moderation or request.forced_moderation
        operation_id = str(uuid.uuid4())
        project = request.params.get("project", VEO_PROJECT)
        location = request.params.get("location", VEO_LOCATION)
        name = (
            f"projects/{project}/locations/{location}/publishers/google/models/{model}"
            f"/operations/{operation_id}"
        )
        config = self.config
        operation = Operation(
            id=operation_id,
            name=name,
            model=model,
            prompt=clean,
            seconds=float(seconds),
            frame=VEO_FRAMES[(resolution, ratio)],
            samples=samples,
            storage_uri=storage,
            timeline=Timeline(
                started=self.clock.now(),
                latency=markers.latency if markers.latency is not None else config.latency_seconds,
                steps=config.progress_steps,
                # RAI filtering is not a failure of the operation: it is done, without video.
                fails=markers.fail,
            ),
            outcome="filtered" if moderated else "error" if markers.fail else "video",
            cast=tuple(cast),
            fps=config.fps,
            drift=take_drift(markers, config, operation_id),
        )
        self.operations.add(operation_id, operation)
        return json_response({"name": name}, job_id=name)

    def fetch_operation(self, request: Request) -> Response:
        self._model(request)
        body = self._json_body(request)
        for name in body:
            if name != "operationName":
                raise _unknown_field(name)
        name = body.get("operationName")
        found = _OPERATION.match(name) if isinstance(name, str) else None
        if found is None:
            raise invalid(
                "`operationName` must look like projects/{project}/locations/{location}/"
                "publishers/google/models/{model}/operations/{operation}."
            )
        operation = self.operations.get(found.group("id"))
        if operation is None or operation.name != name:
            raise GoogleError(404, f"Operation {name} was not found.", rpc_status="NOT_FOUND")
        return json_response(operation.resource(self.clock.now()))

    # --- Checks -----------------------------------------------------------------------------

    @staticmethod
    def _duration(parameters: dict[str, Any], feature: str, extending: bool) -> int:
        seconds = parameters.get("durationSeconds", 8)
        allowed = (VEO_EXTEND_SECONDS,) if extending else VEO_DURATIONS
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds not in allowed:
            listed = ",".join(str(s) for s in allowed)
            raise invalid(
                f"Unsupported output video duration {seconds} seconds, supported durations "
                f"are [{listed}] for feature {feature}."
            )
        return seconds

    def _references(
        self, references: Any, seconds: int, ratio: str, names: dict[tuple[str, int], str]
    ) -> list[CastMember]:
        if not isinstance(references, list) or not references:
            raise invalid("`referenceImages` must be a non-empty list.")
        if len(references) > VEO_MAX_ASSETS:
            raise invalid(
                f"Too many reference images: {len(references)}. At most {VEO_MAX_ASSETS} asset "
                "reference images are supported."
            )
        if seconds != 8:
            raise invalid(
                f"Unsupported output video duration {seconds} seconds, supported durations are "
                "[8] for feature reference_to_video."
            )
        if ratio != "16:9":
            raise invalid(
                f"Aspect ratio {ratio} is not supported for reference_to_video: use 16:9."
            )
        cast = []  # (the name the prompt gives it, the member)
        for number, item in enumerate(references, start=1):
            where = f"referenceImages[{number - 1}]"
            if not isinstance(item, dict) or set(item) - {"image", "referenceType"}:
                raise invalid(f"`{where}` is {{image, referenceType}}.")
            if item.get("referenceType") != "asset":
                raise invalid(
                    f"`{where}.referenceType` {item.get('referenceType')!r} is not supported by "
                    'Veo 3.1: use "asset".'
                )
            color, picture = self._look(item.get("image"), f"{where}.image")
            name = names.get(("image", number))
            cast.append((name, CastMember(name or f"image {number}", color, picture)))
        return list(figures(cast))

    @staticmethod
    def _media(media: Any, where: str, types: tuple[str, ...]) -> bytes | None:
        """The bytes of an {bytesBase64Encoded | gcsUri, mimeType} object (None for gcsUri:
        the emulator has no Cloud Storage to read)."""
        if not isinstance(media, dict) or set(media) - {"bytesBase64Encoded", "gcsUri", "mimeType"}:
            raise invalid(f"`{where}` is {{bytesBase64Encoded | gcsUri, mimeType}}.")
        if ("bytesBase64Encoded" in media) == ("gcsUri" in media):
            raise invalid(f"`{where}` needs exactly one of bytesBase64Encoded and gcsUri.")
        if media.get("mimeType") not in types:
            raise invalid(f"`{where}.mimeType` must be one of {', '.join(types)}.")
        if "gcsUri" in media:
            uri = media["gcsUri"]
            if not isinstance(uri, str) or not uri.startswith("gs://"):
                raise invalid(f"`{where}.gcsUri` must be a gs:// address.")
            return None
        return _decode_base64(media["bytesBase64Encoded"], f"`{where}.bytesBase64Encoded`")

    def _picture(self, media: Any, where: str) -> str:
        """The colour of a first or last frame: a frame is no character, so no picture."""
        return self._look(media, where)[0]

    def _look(self, media: Any, where: str) -> tuple[str, Image.Image | None]:
        data = self._media(media, where, IMAGE_TYPES)
        return ("#808080", None) if data is None else _image_look(data, f"`{where}`")

    def _source(self, media: Any) -> tuple[str, float]:
        data = self._media(media, "instances[0].video", ("video/mp4",))
        if data is None:
            return "#808080", 8.0
        try:
            probe = probe_video(data)
            color = first_frame_color(data)
        except ValueError as exc:
            raise invalid("`instances[0].video` is not a readable MP4 video.") from exc
        if not 1.0 <= probe.seconds <= VEO_EXTEND_MAX_INPUT + 0.25:
            raise invalid(
                f"The video to extend lasts 1 to {VEO_EXTEND_MAX_INPUT:g} s, not "
                f"{probe.seconds:.2f} s."
            )
        return color, probe.seconds


# --- Gemini Omni Flash (Interactions API) ----------------------------------------------------

GEMINI_MODELS = ("gemini-omni-flash-preview",)
GEMINI_CREATE_FIELDS = frozenset(
    {
        "model",
        "input",
        "background",
        "response_format",
        "webhook_config",
        "store",
        "system_instruction",
        "generation_config",
        "previous_interaction_id",
        "labels",
    }
)
GEMINI_BLOCK_FIELDS = frozenset({"type", "data", "uri", "mime_type", "name", "resolution"})
GEMINI_FORMAT_FIELDS = frozenset(
    {"type", "aspect_ratio", "resolution", "duration", "delivery", "gcs_uri"}
)
GEMINI_SECONDS = range(3, 11)  # [3P] 3-10 s
GEMINI_RATIOS = ("16:9", "9:16")
GEMINI_RESOLUTIONS = ("720p",)  # [3P] the preview makes 720p only (the API names 360p-4k)
GEMINI_FRAMES = {"16:9": (1280, 720), "9:16": (720, 1280)}
GEMINI_MAX_IMAGES, GEMINI_MAX_VIDEOS, GEMINI_CLIP_SECONDS = 5, 1, 10.0  # [3P]
GEMINI_FILE_TTL_SECONDS = 48 * 3600  # [3P] the Files API keeps a file 48 hours
_BLOCK_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DURATION = re.compile(r"^(\d+)s$")
GEMINI_SAFETY_ERROR = {
    "code": "SAFETY",
    "message": "The video was blocked by safety filters: it may violate Google's Generative "
    "AI Prohibited Use Policy.",
}
GEMINI_INTERNAL_ERROR = {"code": "INTERNAL", "message": "An internal error has occurred."}


@dataclass
class Interaction:
    id: str
    model: str
    prompt: str
    seconds: int
    ratio: str
    resolution: str
    delivery: str
    timeline: Timeline
    error: dict[str, str] | None
    cast: tuple[CastMember, ...]
    fps: int
    ttl: int
    webhook_uris: tuple[str, ...]
    user_metadata: dict[str, Any] | None
    drift: frozenset[str] = frozenset()  # what the take drifts on (markers, drift settings)
    file_id: str = field(default_factory=lambda: secrets.token_hex(8))
    cancelled_at: float | None = None
    notified: bool = False  # its webhook event has been queued (only the watcher writes it)
    media: Once[RenderedVideo] = field(init=False)

    def __post_init__(self) -> None:
        self.media = Once(self._render)

    def _render(self) -> RenderedVideo:
        width, height = GEMINI_FRAMES[self.ratio]
        return render_video(
            prompt=self.prompt,
            seconds=float(self.seconds),
            width=width,
            height=height,
            cast=self.cast,
            fps=self.fps,
            label=f"{self.model} · {self.id[:12]}",
            drift=self.drift,
        )

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        phase, _ = self.timeline.phase(now)
        return {SUCCEEDED: "completed", FAILED: "failed"}.get(
            phase, "queued" if now < self.timeline.queued_until else "in_progress"
        )

    def finished_at(self) -> float:
        return self.cancelled_at if self.cancelled_at is not None else self.timeline.finishes_at

    def resource(self, now: float, host: str) -> dict[str, Any]:
        status = self.status(now)
        body: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "status": status,
            "created": _iso(self.timeline.started),
            "updated": _iso(min(now, self.finished_at())),
            "response_format": {
                "type": "video",
                "aspect_ratio": self.ratio,
                "resolution": self.resolution,
                "duration": f"{self.seconds}s",
                "delivery": self.delivery,
            },
        }
        if self.webhook_uris:
            body["webhook_config"] = {"uris": list(self.webhook_uris)} | (
                {"user_metadata": self.user_metadata} if self.user_metadata else {}
            )
        if status == "completed":
            video: dict[str, Any] = {"type": "video", "mime_type": "video/mp4"}
            if self.delivery == "inline":
                video["data"] = base64.b64encode(self.media.get().video).decode()
            else:
                video["uri"] = f"http://{host}/v1beta/files/{self.file_id}:download?alt=media"
            body["steps"] = [{"type": "model_output", "content": [video]}]
            # [3P] 5,792 tokens a second of 720p video.
            body["usage"] = {"total_output_tokens": 5792 * self.seconds}
        elif status == "failed" and self.error:
            body["errors"] = [dict(self.error)]
        return body


class GeminiEmulator(NotifiesWhenDone, _GoogleEmulator):
    name = "gemini"
    watcher_name = "gemini-events"
    api_prefix = "/v1beta"
    missing_credential = (
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )
    refusal = (
        "The prompt could not be submitted: it may violate Google's Generative AI "
        "Prohibited Use Policy."
    )

    def __init__(self, **config: Any) -> None:
        self.interactions: Store[Interaction] = Store()
        self.webhooks = WebhookSender()
        super().__init__(**{"asset_ttl_seconds": GEMINI_FILE_TTL_SECONDS, **config})

    def add_routes(self, router: Router) -> None:
        base = self.api_prefix
        router.add("POST", f"{base}/interactions", self.create, op="create")
        router.add("GET", f"{base}/interactions/{{interaction_id}}", self.get, op="retrieve")
        router.add(
            "POST", f"{base}/interactions/{{interaction_id}}/cancel", self.cancel, op="cancel"
        )
        router.add("GET", f"{base}/files/{{file_id}}:download", self.download, op="content")

    def clear_data(self) -> None:
        self.interactions.clear()
        self.webhooks.clear()

    def extra_state(self) -> dict[str, Any]:
        return {
            "interactions": len(self.interactions),
            "webhooks": {"deliveries": self.webhooks.records()},
        }

    # --- Handlers ---------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        body = self._json_body(request)
        for name in body:
            if name not in GEMINI_CREATE_FIELDS:
                raise _unknown_field(name)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("`model` is required.")
        if model not in GEMINI_MODELS:
            raise GoogleError(
                404,
                f"models/{model} is not found for API version v1beta, or is not supported "
                "for interactions.",
                rpc_status="NOT_FOUND",
            )
        if body.get("background") is not True:
            raise invalid("Video generation runs in the background: set `background` to true.")
        ratio, resolution, seconds, delivery = self._format(body.get("response_format"))
        uris, metadata = self._webhook_config(body.get("webhook_config"))
        prompt, cast = self._input(body.get("input"))
        if _REFUSE.search(prompt):
            raise self.standard_error("moderation")
        clean, markers = strip_markers(prompt)
        moderated = markers.moderation or request.forced_moderation
        config = self.config
        interaction_id = "v1_" + secrets.token_urlsafe(18)
        interaction = Interaction(
            id=interaction_id,
            model=model,
            prompt=clean,
            seconds=seconds,
            ratio=ratio,
            resolution=resolution,
            delivery=delivery,
            timeline=Timeline(
                started=self.clock.now(),
                latency=markers.latency if markers.latency is not None else config.latency_seconds,
                steps=config.progress_steps,
                fails=moderated or markers.fail,
                fails_early=moderated,
            ),
            error=GEMINI_SAFETY_ERROR
            if moderated
            else GEMINI_INTERNAL_ERROR
            if markers.fail
            else None,
            cast=_named_cast(clean, cast),
            fps=config.fps,
            ttl=config.asset_ttl_seconds,
            webhook_uris=uris,
            user_metadata=metadata,
            drift=take_drift(markers, config, interaction_id),
        )
        self.interactions.add(interaction.id, interaction)
        resource = interaction.resource(self.clock.now(), request.host)
        return json_response(resource, job_id=interaction.id)

    def get(self, request: Request) -> Response:
        interaction = self._interaction(request.params["interaction_id"])
        return json_response(interaction.resource(self.clock.now(), request.host))

    def cancel(self, request: Request) -> Response:
        interaction = self._interaction(request.params["interaction_id"])
        now = self.clock.now()
        status = interaction.status(now)
        if status not in ("queued", "in_progress"):
            raise GoogleError(
                400,
                f"Interaction {interaction.id} is {status}: only a background interaction that "
                "is queued or in progress can be cancelled.",
                rpc_status="FAILED_PRECONDITION",
            )
        interaction.cancelled_at = now
        return json_response(interaction.resource(now, request.host))

    def download(self, request: Request) -> Response:
        file_id = request.params["file_id"]
        now = self.clock.now()
        interaction = next(
            (i for i in self.interactions.values() if i.file_id == file_id and i.delivery == "uri"),
            None,
        )
        if (
            interaction is None
            or interaction.status(now) != "completed"
            or now >= interaction.timeline.finishes_at + interaction.ttl
        ):
            # The Files API says the same for a file that never was and one that has expired.
            raise GoogleError(
                403,
                f"You do not have permission to access the File {file_id} or it may not exist.",
                rpc_status="PERMISSION_DENIED",
            )
        if request.query.get("alt") != "media":
            return json_response(
                {"name": f"files/{file_id}", "mimeType": "video/mp4", "state": "ACTIVE"}
            )
        video = interaction.media.get().video
        pad = self.config.pad_video_bytes
        if pad:
            return stream_response(
                mp4_with_padding(video, pad),
                length=padded_length(video, pad),
                content_type="video/mp4",
            )
        return bytes_response(video, "video/mp4")

    # --- Checks -----------------------------------------------------------------------------

    def _interaction(self, interaction_id: str) -> Interaction:
        interaction = self.interactions.get(interaction_id)
        if interaction is None:
            raise GoogleError(
                404, f"Interaction {interaction_id} was not found.", rpc_status="NOT_FOUND"
            )
        return interaction

    @staticmethod
    def _format(value: Any) -> tuple[str, str, int, str]:
        formats = value if isinstance(value, list) else [value]
        video = next((f for f in formats if isinstance(f, dict) and f.get("type") == "video"), None)
        if video is None:
            raise invalid('`response_format` must ask for a video: {"type": "video", ...}.')
        for name in video:
            if name not in GEMINI_FORMAT_FIELDS:
                raise _unknown_field(name, "response_format")
        ratio = video.get("aspect_ratio", "16:9")
        if ratio not in GEMINI_RATIOS:
            raise invalid(
                f"`response_format.aspect_ratio` {ratio!r} is not supported: use "
                f"{' or '.join(GEMINI_RATIOS)}."
            )
        resolution = video.get("resolution", "720p")
        if resolution not in GEMINI_RESOLUTIONS:
            raise invalid(
                f"`response_format.resolution` {resolution!r} is not supported by "
                f"{GEMINI_MODELS[0]}: use 720p."
            )
        duration = video.get("duration", "8s")
        found = _DURATION.match(duration) if isinstance(duration, str) else None
        if found is None or int(found.group(1)) not in GEMINI_SECONDS:
            raise invalid(
                f"`response_format.duration` {duration!r} is not supported: use a duration "
                f'from "{GEMINI_SECONDS[0]}s" to "{GEMINI_SECONDS[-1]}s".'
            )
        delivery = video.get("delivery", "inline")
        if delivery not in ("inline", "uri"):
            raise invalid('`response_format.delivery` must be "inline" or "uri".')
        return ratio, resolution, int(found.group(1)), delivery

    @staticmethod
    def _webhook_config(value: Any) -> tuple[tuple[str, ...], dict[str, Any] | None]:
        if value is None:
            return (), None
        if not isinstance(value, dict):
            raise invalid("`webhook_config` must be an object.")
        for name in value:
            if name not in ("uris", "user_metadata"):
                raise _unknown_field(name, "webhook_config")
        uris = value.get("uris", [])
        if not isinstance(uris, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in uris
        ):
            raise invalid("`webhook_config.uris` must be a list of http(s) URLs.")
        metadata = value.get("user_metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise invalid("`webhook_config.user_metadata` must be an object.")
        return tuple(uris), metadata

    def _input(self, value: Any) -> tuple[str, list[_Block]]:
        """The prompt, and each picture or clip as (kind, block name, colour, picture)."""
        if isinstance(value, str):
            value = [{"type": "text", "text": value}]
        elif isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not value:
            raise invalid("`input` is required: a string or a list of content blocks.")
        texts: list[str] = []
        media: list[_Block] = []
        seen: set[str] = set()
        counts = {"image": 0, "video": 0}
        for index, block in enumerate(value):
            where = f"input[{index}]"
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                text = block.get("text")
                if set(block) - {"type", "text"} or not isinstance(text, str) or not text.strip():
                    raise invalid(f'`{where}` is {{"type": "text", "text": "<prompt>"}}.')
                texts.append(text)
                continue
            if kind not in ("image", "video"):
                raise invalid(
                    f"`{where}.type` {kind!r} is not supported for video generation: use text, "
                    "image or video."
                )
            for name in block:
                if name not in GEMINI_BLOCK_FIELDS:
                    raise _unknown_field(name, where)
            counts[kind] += 1
            name = block.get("name", f"{kind}_{counts[kind]}")
            if not isinstance(name, str) or not _BLOCK_NAME.match(name):
                raise invalid(f"`{where}.name` must be 1-64 letters, digits, '_' or '-'.")
            if name in seen:
                raise invalid(f"`{where}.name` {name!r} is used by another block.")
            seen.add(name)
            data = self._block_bytes(block, where, kind)
            if kind == "image":
                color, picture = _image_look(data, f"`{where}`")
            else:
                color, picture = self._clip_look(data, where)
            media.append((kind, name, color, picture))
        if not texts:
            raise invalid("`input` needs a text block: the prompt.")
        if counts["image"] > GEMINI_MAX_IMAGES:
            raise invalid(
                f"At most {GEMINI_MAX_IMAGES} images are supported for video generation; the "
                f"request has {counts['image']}."
            )
        if counts["video"] > GEMINI_MAX_VIDEOS:
            raise invalid(
                f"At most {GEMINI_MAX_VIDEOS} input video is supported for video generation; "
                f"the request has {counts['video']}."
            )
        return "\n".join(texts), media

    @staticmethod
    def _block_bytes(block: dict[str, Any], where: str, kind: str) -> bytes:
        if ("data" in block) == ("uri" in block):
            raise invalid(f"`{where}` needs exactly one of `data` and `uri`.")
        mime = block.get("mime_type")
        if "data" in block:
            if not isinstance(mime, str) or not mime.startswith(f"{kind}/"):
                raise invalid(f"`{where}.mime_type` is required with `data` ({kind}/...).")
            return _decode_base64(block["data"], f"`{where}.data`")
        uri = block["uri"]
        if not isinstance(uri, str):
            raise invalid(f"`{where}.uri` must be a string.")
        try:
            return fetch(uri, timeout_seconds=FETCH_TIMEOUT_SECONDS, max_bytes=FETCH_MAX_BYTES)
        except ValueError as exc:
            raise invalid(f"`{where}.uri` could not be read ({exc}).") from exc

    @staticmethod
    def _clip_look(data: bytes, where: str) -> tuple[str, Image.Image]:
        """A clip's colour and the picture of its first frame."""
        try:
            probe = probe_video(data)
            frame = first_frame(data)
        except ValueError as exc:
            raise invalid(f"`{where}` is not a readable video.") from exc
        if probe.seconds > GEMINI_CLIP_SECONDS + 0.25:
            raise invalid(
                f"`{where}`: an input video lasts up to {GEMINI_CLIP_SECONDS:g} s, not "
                f"{probe.seconds:.2f} s."
            )
        return dominant_color(frame), reference_picture(frame)

    # --- Webhooks -----------------------------------------------------------------------------

    def notify_finished(self, now: float) -> None:
        """Queue a signed event for every interaction that has finished or was cancelled."""
        for interaction in self.interactions.values():
            if interaction.notified or now < interaction.finished_at():
                continue
            interaction.notified = True
            config = self.config
            urls = interaction.webhook_uris or ((config.webhook_url,) if config.webhook_url else ())
            status = interaction.status(now)
            kind = {
                "completed": "video.generated",
                "failed": "interaction.failed",
                "cancelled": "interaction.cancelled",
            }[status]
            data: dict[str, Any] = {"id": interaction.id, "status": status}
            if interaction.user_metadata:
                data["user_metadata"] = interaction.user_metadata
            event = {
                "id": "evt_" + secrets.token_hex(16),
                "type": kind,
                "version": "v1",
                # Wall time, like the signature's timestamp: receivers compare it with theirs.
                "timestamp": _iso(time.time()),
                "data": data,
            }
            for url in urls:
                self.webhooks.send(
                    url=url,
                    secret=config.webhook_secret,
                    event=event,
                    copies=config.webhook_duplicates,
                )


_Block = tuple[str, str, str, Image.Image]  # a Gemini input: kind, block name, colour, picture


def _named_cast(prompt: str, media: list[_Block]) -> tuple[CastMember, ...]:
    """A member per reference, named by the words the prompt puts before "(image_1)"."""
    names = _names(prompt)
    counts = {"image": 0, "video": 0}
    cast = []
    for kind, block_name, color, picture in media:
        counts[kind] += 1
        name = names.get((kind, counts[kind]))
        cast.append((name, CastMember(name or block_name, color, picture)))
    return figures(cast)
