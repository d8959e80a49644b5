"""Google's two video routes: Veo 3.1 on Vertex AI, and Gemini Omni Flash on the Gemini API.

Neither keeps characters: a character travels with each request as a reference
image (Veo's `referenceImages` of type "asset", up to 3; Omni Flash's named image
blocks, up to 5). Both speak Google's error shape, `{"error": {"code", "message",
"status", "details"}}`, read here once for both.

Auth. Both take an API key in the `x-goog-api-key` header: the Gemini API's key, or
a Vertex AI key (Vertex "express mode", base URL `https://aiplatform.googleapis.com/v1`).
A Vertex account may instead hold an OAuth access token (they start "ya29."; from
`gcloud auth print-access-token`, valid an hour): it is sent as `Authorization:
Bearer`, with a base URL naming the project and region,
`https://aiplatform.googleapis.com/v1/projects/{project}/locations/{location}`.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx

from jobs.providers.base import (
    Capabilities,
    CharacterSource,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderJob,
    Reference,
    RegisteredCharacter,
    SentRequest,
    WebhookNotice,
    shown_briefly,
)
from jobs.providers.http import classify_response, send_once
from jobs.providers.openai import OpenAIProvider

# Base64 is decoded this many characters at a time (a multiple of 4): 768 KiB of video each.
_B64_CHUNK_CHARS = 4 * (1 << 18)
_RATIOS = {"1280x720": "16:9", "1920x1080": "16:9", "720x1280": "9:16", "1080x1920": "9:16"}
_RESOLUTIONS = {"1280x720": "720p", "720x1280": "720p", "1920x1080": "1080p", "1080x1920": "1080p"}
# google.rpc.Code numbers, as an operation's `error.code` gives them.
_RPC_CODES = {
    1: "CANCELLED",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}
# Words Google uses when its safety filters refuse a prompt, an input or an output.
_MODERATION = re.compile(
    r"usage guidelines|responsible ai|prohibited use|safety|sensitive words|"
    r"raimediafiltered|blocked by",
    re.IGNORECASE,
)


def _is_moderation(*texts: str) -> bool:
    return any(_MODERATION.search(text or "") for text in texts)


def _details(body: object) -> list[dict[str, Any]]:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details or [] if isinstance(d, dict)]


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """google.rpc.RetryInfo's `retryDelay` ("17s"), where the body carries one."""
    for detail in details:
        delay = str(detail.get("retryDelay") or "")
        if delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                continue
    return None


def google_answer(response: httpx.Response, *, provider: str) -> dict:
    """classify_response, plus what only Google's bodies say.

    Google names the error in `status` (its `code` is the HTTP number), refuses a wrong
    API key with 400 INVALID_ARGUMENT / API_KEY_INVALID, and answers 429
    RESOURCE_EXHAUSTED both for a per-minute limit (wait and retry) and for a spent daily
    or billing quota (no use retrying soon): the QuotaFailure detail tells them apart.
    """
    try:
        return classify_response(response, provider=provider)
    except ProviderError as error:
        try:
            body = response.json()
        except ValueError:
            raise error from None
        info = body.get("error") if isinstance(body, dict) else None
        if not isinstance(info, dict):
            raise
        status = str(info.get("status") or error.code)
        message = str(info.get("message") or error.message)
        details = _details(body)
        reasons = {str(d.get("reason") or "") for d in details}
        quota_ids = " ".join(
            str(v.get("quotaId") or v.get("description") or "")
            for d in details
            for v in d.get("violations") or []
            if isinstance(v, dict)
        )
        kind, retry_after = error.kind, error.retry_after
        if "API_KEY_INVALID" in reasons or status == "UNAUTHENTICATED":
            kind, message = "auth", f"{provider} refused the API key: {message}"
        elif error.status_code == 429:
            if retry_after is None:
                retry_after = _retry_delay(details)
            spent = re.search(r"PerDay|billing|credits|FreeTier", f"{quota_ids} {message}")
            kind = "quota" if spent else "rate_limit"
            message = f"{provider}: {'out of quota' if spent else 'rate limited'}: {message}"
        elif kind == "invalid" and _is_moderation(message):
            kind = "moderation"
        else:
            message = error.message  # classify_response's words, which name the provider
        raise ProviderError(
            kind,
            message,
            retry_after=retry_after,
            status_code=error.status_code,
            code=status,
            maybe_accepted=error.maybe_accepted,
        ) from error


def _decoded(text: str, *, cap: int | None, too_large) -> Iterator[bytes]:
    """Base64 `text` decoded a slice at a time: the video is never held twice."""
    size = len(text) * 3 // 4 - text.count("=", -2)
    if cap is not None and size > cap:
        raise too_large(size, cap)
    for start in range(0, len(text), _B64_CHUNK_CHARS):
        yield base64.b64decode(text[start : start + _B64_CHUNK_CHARS])


def _inline_size(text: str) -> str:
    return f"{len(text) * 3 // 4 - text.count('=', -2)} bytes"


class _Google(Provider):
    """What both Google adapters share: the key header, the error reading, no characters."""

    def _headers(self) -> dict[str, str]:
        if self.api_key.startswith("ya29."):  # an OAuth access token, not an API key
            return {"Authorization": f"Bearer {self.api_key}"}
        return {"x-goog-api-key": self.api_key}

    def _answer(self, response: httpx.Response) -> dict:
        return google_answer(response, provider=self.label)

    def register_character(self, source: CharacterSource) -> RegisteredCharacter:
        raise ProviderError(
            "invalid",
            f"{self.label} has no saved characters; characters travel as reference images.",
        )

    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        # The external id is the reference label the pipeline gave the character's picture.
        return self._render(
            prompt, mentions, lambda character: f"{character.name} ({character.external_id})"
        )


# --- Veo 3.1 on Vertex AI -----------------------------------------------------------------------

VEO_MODELS = ("veo-3.1-generate-001", "veo-3.1-fast-generate-001")
VEO_MAX_ASSETS = 3
VEO_REFERENCE_SECONDS, VEO_REFERENCE_RATIO = 8, "16:9"
_VEO_OPERATION = re.compile(r"/models/(?P<model>[^/]+)/operations/[^/]+$")


class VeoProvider(_Google):
    """Veo 3.1 through Vertex AI's long-running predict: create, then poll the operation.

    References: images with role "first_frame" become `image`, "last_frame" becomes
    `lastFrame` (interpolation between the two), and every other image is an "asset"
    reference image (up to 3; the prompt names them in plain words, "Mina (image 1)").
    Reference mode makes only 8 s, 16:9 videos [3P]. An extension sends the earlier
    video back as `video` and adds 7 s to it [3P]. The finished video comes inline, as
    base64 in the operation (no `storageUri` is sent): there is no link to expire, and no
    list, cancel or webhook on this route.
    """

    kind = "veo"
    capabilities = Capabilities(
        native_characters=False,
        mention_syntax="plain",
        durations=(4, 6, 8),
        sizes=tuple(_RATIOS),
        max_characters=VEO_MAX_ASSETS,
        max_references=VEO_MAX_ASSETS,
        pricing_unit="second",
        # [3P] Vertex AI list price for Veo 3.1 with audio, $0.40 a second (fast: $0.15),
        # as quoted by docs.dev.xavier.icvr.xyz/models/google-vertex/veo-3.1.html.
        price=Decimal("0.40"),
        webhooks=False,
        remix=False,
        extend_seconds=(7,),  # [3P] each extension adds 7 s; the result is the whole video
        can_list_jobs=False,
        # Vertex publishes no cancel for a publisher model's predict operations (the
        # google-genai SDK has none either): a started video runs to its end.
        can_cancel=False,
        audio=True,
        frames=("first", "last"),  # `image` and `lastFrame`: Veo interpolates between them
    )
    DEFAULT_MODEL = VEO_MODELS[0]
    FAST_PRICE = Decimal("0.15")  # [3P] the same source, veo-3.1-fast with audio
    POLL_INTERVAL = 5.0  # Google's samples poll every 10-15 s; a video takes a minute or more

    @classmethod
    def capabilities_for(cls, model: str) -> Capabilities:
        if "fast" in (model or ""):
            return dataclasses.replace(cls.capabilities, price=cls.FAST_PRICE)
        return cls.capabilities

    @property
    def label(self) -> str:
        return "Veo"

    def reference_label(self, kind: str, index: int) -> str:
        if kind != "image":
            raise ValueError("Veo takes only image references.")
        return f"image {index}"

    # --- Validation -----------------------------------------------------------------------

    @staticmethod
    def _roles(
        request: GenerationRequest,
    ) -> tuple[list[Reference], Reference | None, Reference | None]:
        assets, first, last = [], None, None
        for reference in request.references:
            if reference.kind == "image" and reference.role == "first_frame":
                first = reference
            elif reference.kind == "image" and reference.role == "last_frame":
                last = reference
            else:
                assets.append(reference)
        return assets, first, last

    def validate(self, request: GenerationRequest) -> list[str]:
        assets, first, last = self._roles(request)
        # The frames are not reference images: only the assets count against the limit of 3.
        problems = super().validate(dataclasses.replace(request, references=tuple(assets)))
        if request.kind == "remix":
            problems.append("Veo cannot remix a video.")
        if request.kind == "extend":
            if not request.source_provider_job_id:
                problems.append("Veo extends only a video it made; this one has no Veo operation.")
            if request.references:
                problems.append("Veo takes no reference images when it extends a video.")
            if _RESOLUTIONS.get(request.size) != "720p":
                problems.append(f"Veo extends 720p videos only, not {request.size}.")
            return problems
        images = [r for r in assets if r.kind == "image"]
        if images and request.seconds != VEO_REFERENCE_SECONDS:
            problems.append(
                f"Veo makes {VEO_REFERENCE_SECONDS}-second videos only when it is given "
                f"reference images; this scene asks for {request.seconds}."
            )
        if images and _RATIOS.get(request.size) not in (None, VEO_REFERENCE_RATIO):
            problems.append(
                f"Veo makes {VEO_REFERENCE_RATIO} videos only when it is given reference "
                f"images; {request.size} is {_RATIOS[request.size]}."
            )
        if last is not None and first is None:
            problems.append("Veo needs a first frame to go with a last frame.")
        if any(r.kind == "audio" for r in request.references):
            problems.append("Veo takes no reference audio.")
        # A web link is no Veo input, but a quote knows a reference by its address only:
        # the pipeline sends the file's bytes, and a request without them fails as it is
        # built (_image), in the same words.
        return problems

    # --- Generation -----------------------------------------------------------------------

    def _model_url(self, model: str, verb: str) -> str:
        return self._url(f"/publishers/google/models/{model}:{verb}")

    @staticmethod
    def _image(reference: Reference) -> dict[str, str]:
        mime = reference.content_type or "image/png"
        if reference.data is not None:
            return {
                "bytesBase64Encoded": base64.b64encode(reference.data).decode(),
                "mimeType": mime,
            }
        if (reference.url or "").startswith("gs://"):
            return {"gcsUri": reference.url or "", "mimeType": mime}
        raise ProviderError(
            "invalid", "Veo takes reference images as files or gs:// addresses, not web links."
        )

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        # Only what cannot be put into Vertex's words is refused here; Vertex itself refuses
        # the rest (a wrong length, a fourth reference image) in its own words.
        if request.kind == "remix":
            raise ProviderError("invalid", "Veo cannot remix a video.")
        if request.size not in _RATIOS:
            raise ProviderError(
                "invalid", f"Veo cannot make {request.size}; it makes {', '.join(_RATIOS)}."
            )
        if request.kind == "extend" and not request.source_provider_job_id:
            raise ProviderError("invalid", "Veo extends only a video it made.")
        model = self.model or self.DEFAULT_MODEL
        instance: dict[str, Any] = {"prompt": request.prompt}
        if request.kind == "extend":
            instance["video"] = self._source_video(request.source_provider_job_id)
        else:
            assets, first, last = self._roles(request)
            if first is not None:
                instance["image"] = self._image(first)
            if last is not None:
                instance["lastFrame"] = self._image(last)
            if assets:
                instance["referenceImages"] = [
                    {"image": self._image(r), "referenceType": "asset"} for r in assets
                ]
        payload: dict[str, Any] = {
            "instances": [instance],
            "parameters": {
                "durationSeconds": request.seconds,
                "aspectRatio": _RATIOS[request.size],
                "resolution": _RESOLUTIONS[request.size],
                "generateAudio": True,
                "sampleCount": 1,
            },
        }
        response = send_once(
            self.http,
            "POST",
            self._model_url(model, "predictLongRunning"),
            headers=self._headers(),
            json=payload,
        )
        body = self._answer(response)
        job = ProviderJob(
            provider_job_id=str(body["name"]),
            status="queued",  # Vertex answers the operation's name alone
            poll_after=self.POLL_INTERVAL,
            prompt=request.prompt,
            raw=dict(body),
        )
        return job, {"model": model, **self._recorded(payload)}

    def _source_video(self, operation: str) -> dict[str, str]:
        """The earlier Veo video, as Vertex takes it back: its gcsUri, or its bytes again."""
        source = self.fetch(operation)
        video = self._video_of(source)
        if source.status != "succeeded" or video is None:
            raise ProviderError("invalid", "Veo can extend only a finished Veo video.")
        mime = str(video.get("mimeType") or "video/mp4")
        if video.get("gcsUri"):
            return {"gcsUri": str(video["gcsUri"]), "mimeType": mime}
        return {"bytesBase64Encoded": str(video.get("bytesBase64Encoded") or ""), "mimeType": mime}

    @staticmethod
    def _recorded(payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as sent, with inline files named by type and size instead of bytes."""

        def small(media: Mapping[str, Any]) -> dict[str, Any]:
            if "bytesBase64Encoded" in media:
                inline = str(media["bytesBase64Encoded"])
                return {"bytesBase64Encoded": f"<{media.get('mimeType')}, {_inline_size(inline)}>"}
            return dict(media)

        instance = dict(payload["instances"][0])
        for key in ("image", "lastFrame", "video"):
            if key in instance:
                instance[key] = small(instance[key])
        if "referenceImages" in instance:
            instance["referenceImages"] = [
                {**item, "image": small(item["image"])} for item in instance["referenceImages"]
            ]
        return {**payload, "instances": [instance]}

    @classmethod
    def describe_sent(cls, payload: Mapping[str, Any]) -> SentRequest:
        """Vertex's body is `instances[0]` (the prompt and pictures) and `parameters`."""
        if "instances" not in payload:  # the record made just before sending
            return super().describe_sent(payload)
        instance = dict((payload.get("instances") or [{}])[0])
        inputs = [f"model: {payload.get('model', '')}"] if payload.get("model") else []
        for key, label in (
            ("image", "first frame"),
            ("lastFrame", "last frame"),
            ("video", "video to extend"),
        ):
            if key in instance:
                inputs.append(f"{label}: {shown_briefly(instance[key], 90)}")
        for number, item in enumerate(instance.get("referenceImages") or [], start=1):
            picture = shown_briefly(item.get("image"), 90)
            inputs.append(f"image {number} ({item.get('referenceType')}): {picture}")
        inputs += [f"{key}: {value}" for key, value in (payload.get("parameters") or {}).items()]
        return SentRequest(prompt=str(instance.get("prompt") or ""), inputs=tuple(inputs))

    def fetch(self, provider_job_id: str) -> ProviderJob:
        # The operation names its model; poll there, whatever this account's model is now.
        found = _VEO_OPERATION.search(provider_job_id)
        model = found.group("model") if found else self.model or self.DEFAULT_MODEL
        response = send_once(
            self.http,
            "POST",
            self._model_url(model, "fetchPredictOperation"),
            headers=self._headers(),
            json={"operationName": provider_job_id},
            safe=True,  # a read, though it is a POST
        )
        return self._job(self._answer(response), provider_job_id)

    def _job(self, body: Mapping[str, Any], name: str) -> ProviderJob:
        operation = str(body.get("name") or name)
        if not body.get("done"):
            # Vertex reports no progress for Veo: an operation is under way or done.
            return ProviderJob(operation, "running", poll_after=self.POLL_INTERVAL, raw=dict(body))
        error = body.get("error")
        if isinstance(error, dict) and error:
            raw_code = error.get("status") or error.get("code") or ""
            code = (
                _RPC_CODES.get(raw_code, str(raw_code))
                if isinstance(raw_code, int)
                else str(raw_code)
            )
            message = str(error.get("message") or "Veo could not make this video.")
            if _is_moderation(message):
                code = f"moderation:{code}"
            return ProviderJob(
                operation, "failed", error_code=code, error_message=message, raw=dict(body)
            )
        result = body.get("response") or {}
        videos = [v for v in result.get("videos") or [] if isinstance(v, dict)]
        if not videos:
            reasons = [str(r) for r in result.get("raiMediaFilteredReasons") or []]
            if int(result.get("raiMediaFilteredCount") or 0) > 0 or reasons:
                return ProviderJob(
                    operation,
                    "failed",
                    # The pipeline recognises moderation by this word.
                    error_code="moderation:rai_media_filtered",
                    error_message=" ".join(reasons)
                    or "Veo's safety filters withheld the video it made.",
                    raw=dict(body),
                )
            return ProviderJob(
                operation,
                "failed",
                error_code="no_video",
                error_message="Veo finished without a video.",
                raw=dict(body),
            )
        return ProviderJob(
            operation,
            "succeeded",
            progress=100,
            # Only a storage address is kept as the link: inline bytes stay in `raw`.
            video_url=str(videos[0].get("gcsUri") or ""),
            raw=dict(body),
        )

    @staticmethod
    def _video_of(job: ProviderJob) -> Mapping[str, Any] | None:
        response = job.raw.get("response") if isinstance(job.raw, Mapping) else None
        videos = (response or {}).get("videos") if isinstance(response, Mapping) else None
        return videos[0] if videos and isinstance(videos[0], Mapping) else None

    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        if variant != "video":
            raise ProviderError("not_found", f"Veo has no {variant} for {job.provider_job_id}.")
        video = self._video_of(job)
        if video is None:  # the download step holds only the operation's name
            video = self._video_of(self.fetch(job.provider_job_id))
        if video is None:
            raise ProviderError("not_found", f"Veo has no video for {job.provider_job_id}.")
        inline = video.get("bytesBase64Encoded")
        if inline:
            yield from _decoded(
                str(inline), cap=self.max_result_bytes, too_large=self.result_too_large
            )
            return
        raise ProviderError(
            "invalid",
            f"Veo wrote this video to Cloud Storage ({video.get('gcsUri')}), which an API key "
            "cannot read. Castboard sends no storageUri, so Vertex answers with the video "
            "inline; a project that forces a bucket must copy the file out itself.",
            code="gcs_result",
        )


# --- Gemini Omni Flash (Interactions API) ----------------------------------------------------

GEMINI_MODELS = ("gemini-omni-flash-preview",)
GEMINI_MAX_IMAGES, GEMINI_MAX_CLIPS = 5, 1
_GEMINI_STATUS = {
    "queued": "queued",
    "in_progress": "running",
    "requires_action": "running",  # waiting on the caller: polling shows it, nothing is lost
    "completed": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "incomplete": "failed",
    "budget_exceeded": "failed",
}
# Webhook events that mean the video is ready (the engine downloads on ".completed").
_GEMINI_DONE_EVENTS = ("video.generated", "interaction.completed")


class GeminiOmniProvider(_Google):
    """Gemini Omni Flash through the Interactions API (`/v1beta/interactions`).

    A create is one interaction, run in the background: the input is a list of content
    blocks (the prompt's text, then each picture or clip as an image or video block
    carrying a `name` the prompt refers to, "Mina (image_1)"), and `response_format`
    asks for a video. With `callback_url` set, `webhook_config` sends the finished
    event to Castboard (signed with the account's Standard Webhooks secret). The video
    is asked for by `uri` (a Files API link, kept 48 hours [3P]) rather than inline.
    """

    kind = "gemini"
    official_base_url = "https://generativelanguage.googleapis.com/v1beta"
    capabilities = Capabilities(
        native_characters=False,
        mention_syntax="name",
        durations=tuple(range(3, 11)),  # [3P] 3-10 s in 1 s steps
        sizes=("1280x720", "720x1280"),  # [3P] the preview makes 720p only
        max_characters=GEMINI_MAX_IMAGES,
        max_references=GEMINI_MAX_IMAGES,  # [3P] up to 5 reference images
        pricing_unit="second",
        # [3P] $0.10 a second of 720p video with audio (docs.gmicloud.ai Omni Flash page;
        # Google bills 5,792 output tokens a second at $17.50 per million, runware.ai).
        price=Decimal("0.10"),
        webhooks=True,
        callback_per_request=True,
        can_list_jobs=False,
        can_cancel=True,  # POST /interactions/{id}/cancel [C] (google-genai SDK)
        max_reference_clips=GEMINI_MAX_CLIPS,  # [3P] one input video, up to 10 s
        reference_clip_seconds=(1.0, 10.0),
        audio=True,
    )
    DEFAULT_MODEL = GEMINI_MODELS[0]
    POLL_INTERVAL = 5.0

    @property
    def label(self) -> str:
        return "Gemini"

    def reference_label(self, kind: str, index: int) -> str:
        """The name of the index-th block of a kind, as submit() names it: "image_1"."""
        if kind not in ("image", "video"):
            raise ValueError(f"Gemini takes no {kind} references.")
        return f"{kind}_{index}"

    def validate(self, request: GenerationRequest) -> list[str]:
        problems = super().validate(request)
        if request.kind != "generate":
            problems.append(f"Gemini cannot {request.kind} a video.")
        if any(r.kind == "audio" for r in request.references):
            problems.append("Gemini takes no reference audio.")
        if any(r.url is None and r.data is None for r in request.references):
            problems.append("A reference has neither a file nor an address.")
        return problems

    # --- Generation -----------------------------------------------------------------------

    def _block(self, reference: Reference, name: str) -> dict[str, Any]:
        block: dict[str, Any] = {"type": reference.kind, "name": name}
        if reference.data is not None:
            block["data"] = base64.b64encode(reference.data).decode()
        elif reference.url:
            block["uri"] = reference.url
        else:
            raise ProviderError("invalid", "A reference has neither a file nor an address.")
        block["mime_type"] = reference.content_type or (
            "image/png" if reference.kind == "image" else "video/mp4"
        )
        return block

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        if request.kind != "generate":
            raise ProviderError("invalid", f"Gemini cannot {request.kind} a video.")
        if request.size not in self.capabilities.sizes:
            raise ProviderError(
                "invalid", f"Gemini cannot make {request.size}; it makes 1280x720, 720x1280."
            )
        blocks: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        counts: dict[str, int] = {}
        for reference in request.references:
            if reference.kind not in ("image", "video"):
                raise ProviderError("invalid", f"Gemini takes no {reference.kind} references.")
            counts[reference.kind] = counts.get(reference.kind, 0) + 1
            blocks.append(
                self._block(reference, self.reference_label(reference.kind, counts[reference.kind]))
            )
        payload: dict[str, Any] = {
            "model": self.model or self.DEFAULT_MODEL,
            "input": blocks,
            "response_format": {
                "type": "video",
                "aspect_ratio": _RATIOS[request.size],
                "resolution": _RESOLUTIONS[request.size],
                "duration": f"{request.seconds}s",  # a protobuf Duration, in JSON
                "delivery": "uri",
            },
            "background": True,
        }
        if request.callback_url:
            payload["webhook_config"] = {"uris": [request.callback_url]}
        response = send_once(
            self.http, "POST", self._url("/interactions"), headers=self._headers(), json=payload
        )
        job = self._job(self._answer(response))
        return dataclasses.replace(job, prompt=request.prompt), self._recorded(payload)

    @staticmethod
    def _recorded(payload: dict[str, Any]) -> dict[str, Any]:
        blocks = []
        for block in payload["input"]:
            if "data" in block:
                block = {
                    **block,
                    "data": f"<{block.get('mime_type')}, {_inline_size(block['data'])}>",
                }
            blocks.append(dict(block))
        return {**payload, "input": blocks}

    @classmethod
    def describe_sent(cls, payload: Mapping[str, Any]) -> SentRequest:
        """The Interactions body is an `input` list: the text block is the prompt, and each
        picture or clip is named as the prompt names it ("image_1")."""
        if "input" not in payload:  # the record made just before sending
            return super().describe_sent(payload)
        prompt, inputs = "", []
        for block in payload.get("input") or []:
            if block.get("type") == "text":
                prompt = str(block.get("text") or "")
                continue
            where = block.get("data") or block.get("uri") or ""
            inputs.append(f"{block.get('name') or block.get('type')}: {shown_briefly(where, 90)}")
        inputs += [
            f"{key}: {shown_briefly(value)}" for key, value in payload.items() if key != "input"
        ]
        return SentRequest(prompt=prompt, inputs=tuple(inputs))

    def fetch(self, provider_job_id: str) -> ProviderJob:
        response = send_once(
            self.http,
            "GET",
            self._url(f"/interactions/{provider_job_id}"),
            headers=self._headers(),
            safe=True,
        )
        return self._job(self._answer(response))

    @staticmethod
    def _video_block(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The output video: in a `model_output` step (the API since May 2026) or, from
        earlier versions, in `outputs`."""
        contents: list[Any] = []
        for step in body.get("steps") or []:
            if isinstance(step, Mapping) and step.get("type") == "model_output":
                contents.extend(step.get("content") or [])
        contents.extend(body.get("outputs") or [])
        return next(
            (c for c in contents if isinstance(c, Mapping) and c.get("type") == "video"), None
        )

    def _job(self, body: Mapping[str, Any]) -> ProviderJob:
        raw_status = str(body.get("status") or "")
        status = _GEMINI_STATUS.get(raw_status, "queued")
        code = message = ""
        if status == "failed":
            errors = [e for e in body.get("errors") or [] if isinstance(e, Mapping)]
            code = str(errors[0].get("code") or raw_status) if errors else raw_status
            message = "; ".join(str(e.get("message") or "") for e in errors) or (
                f"The interaction ended as {raw_status}."
            )
            if _is_moderation(code, message):
                code = f"moderation:{code}"
        video = self._video_block(body) if status == "succeeded" else None
        return ProviderJob(
            provider_job_id=str(body.get("id") or ""),
            status=status,
            progress=100 if status == "succeeded" else 0,  # the API reports no percentage
            error_code=code,
            error_message=message,
            poll_after=self.POLL_INTERVAL,
            video_url=str(video.get("uri") or "") if video else "",
            raw=dict(body),
        )

    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        if variant != "video":
            raise ProviderError("not_found", f"Gemini has no {variant} for {job.provider_job_id}.")
        video = self._video_block(job.raw) if job.raw else None
        url = job.video_url
        if video is None and not url:
            fetched = self.fetch(job.provider_job_id)
            video, url = self._video_block(fetched.raw), fetched.video_url
        if video is not None and video.get("data"):
            yield from _decoded(
                str(video["data"]), cap=self.max_result_bytes, too_large=self.result_too_large
            )
            return
        url = url or (str(video.get("uri") or "") if video else "")
        if not url:
            raise ProviderError("not_found", f"Gemini has no video for {job.provider_job_id}.")
        # A Files API link needs the key; a link elsewhere must never be handed it.
        same_host = urlsplit(url).netloc == urlsplit(self.base_url).netloc
        try:
            yield from self._stream(url, headers=self._headers() if same_host else {})
        except ProviderError as error:
            if error.status_code not in (403, 404):
                raise
            # The Files API answers 403 PERMISSION_DENIED for a file that is gone.
            raise ProviderError(
                "not_found",
                "Gemini's file for this video has expired or is gone (files last 48 hours).",
                status_code=error.status_code,
            ) from error

    def cancel(self, provider_job_id: str) -> bool:
        """Stop a background interaction; False once it has finished or is unknown."""
        response = send_once(
            self.http,
            "POST",
            self._url(f"/interactions/{provider_job_id}/cancel"),
            headers=self._headers(),
            safe=True,  # cancelling twice does no harm
        )
        if response.status_code in (400, 404, 409):
            return False  # FAILED_PRECONDITION (already finished) or NOT_FOUND
        return self._job(self._answer(response)).status == "cancelled"

    # --- Webhooks (Standard Webhooks) -----------------------------------------------------

    def verify_webhook(
        self, *, headers: Mapping[str, str], body: bytes, secret: str
    ) -> WebhookNotice:
        """Gemini signs like OpenAI (Standard Webhooks: webhook-id, webhook-timestamp,
        webhook-signature "v1,<HMAC-SHA256>" with the whsec_ secret), so OpenAI's verifier
        checks it; what differs is the event's names. "video.generated" (and
        "interaction.completed") become "interaction.completed", which the engine takes as
        the word to download; "interaction.failed" and the rest stay a nudge to poll."""
        notice = OpenAIProvider.verify_webhook(self, headers=headers, body=body, secret=secret)  # type: ignore[arg-type]
        event = notice.payload
        data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
        job_id = str(data.get("id") or data.get("interaction_id") or notice.provider_job_id)
        event_type = notice.event_type
        if event_type in _GEMINI_DONE_EVENTS:
            event_type = "interaction.completed"
        return dataclasses.replace(notice, event_type=event_type, provider_job_id=job_id)
