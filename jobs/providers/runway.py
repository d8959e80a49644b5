"""Runway's API (PROVIDERS.md section 3): hosted video models behind one task protocol.

DEFAULT_BASE is https://api.dev.runwayml.com; paths carry their own /v1. Every request
carries `Authorization: Bearer <key>` and `X-Runway-Version: 2024-11-06` (runwayml 5.24.0,
`_client.py`). A video is made by `POST /v1/text_to_video`, or `POST /v1/image_to_video`
when the request has a first frame (`promptImage`); both answer `{"id"}`, which is polled
at `GET /v1/tasks/{id}` and cancelled by `DELETE /v1/tasks/{id}`. Tasks are PENDING,
THROTTLED (over the account's concurrency, queued by Runway), RUNNING (`progress` 0..1),
SUCCEEDED (`output`: links that expire in 24-48 h; reading the task again gives fresh
ones), FAILED (`failure`, `failureCode`; SAFETY.* is moderation and is never retried) or
CANCELLED. A terminal task reports `cost.credits`, what Runway charged: the job's usage.

What a request may hold depends on the model, so the models are a table (MODELS), each
row taken from the SDK's own types (`types/text_to_video_create_params.py`,
`types/image_to_video_create_params.py`); `capabilities_for(model)` reads the account's
row. The default, `seedance2`, is the video model whose text-to-video request takes image
`references` (up to 9).

Characters are not kept by Runway: each travels as a reference image. In SDK 5.24.0 a
video request's `references` are `[{uri}]` with no `tag` (tags, 3-16 letters, digits or
underscores, exist only on the image models' `referenceImages`), so a reference is named
by its place, `@Image1`, `@Image2` ... (the form Runway documents for audio references,
"@Audio1", and that Seedance 2.0 itself reads [3P]); the prompt says "Mina (@Image1)".

Runway has no task list (the SDK's tasks resource reads and deletes one task), so there
is nothing to reconcile against, and no webhooks: polling only.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
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
    shown_briefly,
)
from jobs.providers.http import classify_response, send_once

DEFAULT_BASE = "https://api.dev.runwayml.com"
API_VERSION = "2024-11-06"
TEXT_TO_VIDEO, IMAGE_TO_VIDEO, TASKS = "/v1/text_to_video", "/v1/image_to_video", "/v1/tasks"
# A data URI must be under 5 MB, encoding included; a URL must be https on a domain name
# (docs.dev.runwayml.com/assets/inputs) [C].
DATA_URI_MAX_CHARS = 5 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
_STATUS = {
    "PENDING": "queued",
    "THROTTLED": "queued",  # over the concurrency limit: Runway queues it, we wait
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
_MENTION = re.compile(r"@Image(\d+)\b")
# Not in the SDK: the words Runway answers (with a 400) when the account's credits are
# spent [?]; read as quota, not as a refused request.
_NO_CREDITS = ("not have enough credits", "insufficient credits", "out of credits")


# Seedance 2.0's ratios in text_to_video and image_to_video (480p to 4K), in the SDK's order.
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
class RunwayModel:
    """One video model as Runway's SDK types describe it, and what a second of it costs.

    `ratios` are the sizes every request may ask for (text-to-video's where the model has
    both endpoints); `max_references` counts the `references` of a text-to-video request,
    and `first_frame` says whether `image_to_video` takes a picture to start from.
    """

    id: str
    text_to_video: bool
    first_frame: bool
    durations: tuple[int, ...]
    ratios: tuple[str, ...]
    max_references: int
    prompt_chars: int  # UTF-16 code units
    credits_per_second: int
    credits_source: str
    audio: bool  # the request asks for sound (`audio: true`), and is priced with it
    # With a first frame the prompt may be left out (gen4.5 still requires one).
    frame_prompt_optional: bool = True

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple(ratio.replace(":", "x") for ratio in self.ratios)

    def ratio_of(self, size: str) -> str:
        return size.replace("x", ":")


# Credits per second: runwayml/skills `rw-api-reference` (Runway's own agent skill; the
# version with seedance2 as mirrored on mcpservers.org and skill4agent.com, not re-read
# here) lists gen4.5 12, gen4_turbo 5, veo3.1 20-40, veo3.1_fast 10-15 and seedance2 36.
# Veo's upper figures are with audio, which we ask for. Seedance 2.0's figure is given once
# for every resolution [?]: its 1080p and 4K ratios may cost more, and the task's own
# `cost.credits` is what is charged in the end.
MODELS: dict[str, RunwayModel] = {
    model.id: model
    for model in (
        RunwayModel(
            id="seedance2",
            text_to_video=True,
            first_frame=True,
            # The SDK says only `int | "auto"`; ByteDance's own range for Seedance 2.0 [?].
            durations=tuple(range(4, 16)),
            ratios=SEEDANCE2_RATIOS,
            max_references=9,
            prompt_chars=3500,
            credits_per_second=36,
            credits_source="runwayml/skills rw-api-reference (mirrored) [3P]",
            audio=True,
        ),
        RunwayModel(
            id="gen4.5",
            text_to_video=True,
            first_frame=True,
            durations=tuple(range(2, 11)),  # "Must be an integer from 2 to 10" [C]
            ratios=("1280:720", "720:1280"),  # text_to_video's; a first frame allows more
            max_references=0,
            prompt_chars=1000,
            credits_per_second=12,
            credits_source="runwayml/skills rw-api-reference [C]",
            audio=False,
            frame_prompt_optional=False,
        ),
        RunwayModel(
            id="gen4_turbo",
            text_to_video=False,  # image_to_video only: it needs a first frame [C]
            first_frame=True,
            durations=tuple(range(2, 11)),  # the SDK says `int`; the skill says 2-10
            ratios=GEN4_FRAME_RATIOS,
            max_references=0,
            prompt_chars=1000,
            credits_per_second=5,
            credits_source="runwayml/skills rw-api-reference [C]",
            audio=False,
        ),
        RunwayModel(
            id="veo3.1",
            text_to_video=True,
            first_frame=True,
            durations=(4, 6, 8),  # Literal[4, 6, 8] [C]
            ratios=VEO_RATIOS,
            max_references=0,
            prompt_chars=1000,
            credits_per_second=40,  # "20-40": 40 with audio
            credits_source="runwayml/skills rw-api-reference, with audio [3P]",
            audio=True,
        ),
        RunwayModel(
            id="veo3.1_fast",
            text_to_video=True,
            first_frame=True,
            durations=(4, 6, 8),
            ratios=VEO_RATIOS,
            max_references=0,
            prompt_chars=1000,
            credits_per_second=15,  # "10-15": 15 with audio
            credits_source="runwayml/skills rw-api-reference, with audio [3P]",
            audio=True,
        ),
    )
}
DEFAULT_MODEL = "seedance2"


def _capabilities(model: RunwayModel) -> Capabilities:
    # A first frame is an image in the request too, so a model without references still
    # takes one picture (validate() says which).
    images = max(model.max_references, 1 if model.first_frame else 0)
    return Capabilities(
        native_characters=False,
        mention_syntax="@tag",
        durations=model.durations,
        sizes=model.sizes,
        # Characters travel as reference images, so the image limit is the character limit.
        max_characters=model.max_references,
        max_references=images,
        pricing_unit="credit",
        price=Decimal("0.01"),  # a credit is $0.01 (the price book says so too)
        webhooks=False,  # the SDK has no webhook or callback: polling only
        remix=False,
        extend_seconds=(),
        can_list_jobs=False,  # the tasks resource reads and deletes one task, no list
        list_is_authoritative=False,
        can_cancel=True,
        result_variants=("video",),
        max_reference_clips=0,  # seedance2 takes referenceVideos; we do not send them
        callback_per_request=False,
        audio=model.audio,
        frames=("first",) if model.first_frame else (),  # image_to_video's promptImage
        reports_progress=True,  # a running task's `progress`, 0..1
    )


def _unknown_model_capabilities() -> Capabilities:
    """An account whose model is not in MODELS may do nothing risky: validate() refuses,
    and the dearest rate prices it, so a budget is never under-reserved."""
    return dataclasses.replace(
        _capabilities(MODELS[DEFAULT_MODEL]),
        durations=(5,),
        sizes=("1280x720",),
        max_characters=0,
        max_references=0,
        audio=False,
    )


_CAPABILITIES = {model_id: _capabilities(model) for model_id, model in MODELS.items()}


def _image_type(data: bytes) -> str:
    """A picture's type from its first bytes ("" when it is not one Runway takes)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return ""


def _data_uri(data: bytes, content_type: str) -> str:
    content_type = content_type or _image_type(data)
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def _fits_inline(reference: Reference) -> bool:
    data = reference.data
    return data is not None and 4 * ((len(data) + 2) // 3) + 40 <= DATA_URI_MAX_CHARS


def _https_on_a_domain(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    host = parts.hostname or ""
    return parts.scheme == "https" and bool(host) and not host.replace(".", "").isdigit()


def _shortened(uri: str) -> str:
    """A data URI as "<image/png, 1234 bytes>", so the recorded payload stays small."""
    if not uri.startswith("data:"):
        return uri
    header, _, data = uri.partition(",")
    content_type = header.removeprefix("data:").split(";")[0] or "application/octet-stream"
    return f"<{content_type}, {len(data) * 3 // 4 - data.count('=', -2)} bytes>"


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _is_first_frame(reference: Reference) -> bool:
    return reference.kind == "image" and reference.role == "first_frame"


def _unix(stamp: Any) -> int | None:
    """createdAt ("2024-11-06T12:00:00.000Z") as unix seconds."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


class RunwayProvider(Provider):
    kind = "runway"
    official_base_url = DEFAULT_BASE
    # The class-level set is the default model's; an instance has its account's model's.
    capabilities = _CAPABILITIES[DEFAULT_MODEL]
    DEFAULT_MODEL = DEFAULT_MODEL
    # "Consumers of this API should not expect updates more frequent than once every five
    # seconds for a given task" (the SDK's tasks.retrieve).
    POLL_INTERVAL = 5.0

    @classmethod
    def capabilities_for(cls, model: str) -> Capabilities:
        return _CAPABILITIES.get(model or DEFAULT_MODEL) or _unknown_model_capabilities()

    @property
    def label(self) -> str:
        return "Runway"

    @property
    def model_name(self) -> str:
        return self.model or DEFAULT_MODEL

    @property
    def hosted(self) -> RunwayModel | None:
        return MODELS.get(self.model_name)

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), "X-Runway-Version": API_VERSION}

    def _unknown_model(self) -> str:
        return (
            f"Runway has no video model {self.model_name!r} that Castboard knows; "
            f"pick one of: {', '.join(MODELS)}."
        )

    # --- Prices and limits ----------------------------------------------------------------------

    def usage_estimate(self, *, seconds: int, size: str) -> Decimal:
        """Credits for a video of this length: the model's credits per second (MODELS says
        where each figure comes from) times the seconds. An unknown model is priced as the
        dearest, so a budget is never under-reserved."""
        row = self.hosted
        rate = row.credits_per_second if row else max(m.credits_per_second for m in MODELS.values())
        return Decimal(rate * seconds)

    def estimate(self, *, seconds: int, characters_to_register: int = 0) -> Decimal:
        # Characters cost nothing here: they are pictures in the request.
        return self.capabilities.price * self.usage_estimate(seconds=seconds, size="")

    def validate(self, request: GenerationRequest) -> list[str]:
        row = self.hosted
        if row is None:
            return [self._unknown_model()]
        problems = super().validate(request)
        name = f"{self.label} {row.id}"
        if request.kind != "generate":
            problems.append(f"{self.label} cannot {request.kind} a video.")
        others = sorted({r.kind for r in request.references if r.kind != "image"})
        if others:
            problems.append(f"{self.label} takes image references only, not {', '.join(others)}.")
        frames = [r for r in request.references if _is_first_frame(r)]
        pictures = [r for r in request.references if r.kind == "image" and not _is_first_frame(r)]
        roles = sorted({r.role for r in pictures if r.role not in ("", "reference_image")})
        if roles:
            problems.append(f"{self.label} takes no {', '.join(roles)} image here.")
        if len(frames) > 1:
            problems.append(f"{self.label} starts a video from one first frame, not {len(frames)}.")
        if not frames and not row.text_to_video:
            problems.append(f"{name} makes a video only from a first frame; this request has none.")
        if pictures and not row.max_references:
            problems.append(
                f"{name} takes no reference images, only a first frame; "
                f"this request has {len(pictures)}."
            )
        if frames and pictures and row.max_references:
            problems.append(
                f"{name} takes a first frame or reference images, not both in one video."
            )
        for reference in frames + pictures:
            # A quote knows a picture by its address only; the bytes come when it is sent.
            if reference.data is None and reference.url is None:
                problems.append("A reference has neither a file nor an address.")
            elif (
                reference.data is not None
                and not _fits_inline(reference)
                and not _https_on_a_domain(reference.url)
            ):
                problems.append(
                    f"{self.label} takes a picture inline only under 5 MB, or by an https "
                    "address on a domain name; one reference is neither."
                )
        if not request.prompt.strip() and not (frames and row.frame_prompt_optional):
            problems.append(f"{name} needs a prompt.")
        length = _utf16_length(request.prompt)
        if length > row.prompt_chars:
            problems.append(
                f"{name} reads prompts of at most {row.prompt_chars:,} characters; "
                f"this one has {length:,}."
            )
        named = sorted({int(n) for n in _MENTION.findall(request.prompt)})
        if named and named[-1] > len(pictures):
            problems.append(
                f"The prompt names @Image{named[-1]}, but this request has "
                f"{len(pictures)} reference image(s)."
            )
        return problems

    # --- Characters -----------------------------------------------------------------------------

    def register_character(self, source: CharacterSource) -> RegisteredCharacter:
        raise ProviderError(
            "invalid", "Runway keeps no characters; characters travel as reference images."
        )

    def reference_label(self, kind: str, index: int) -> str:
        """Runway's video references are named by their place: @Image1, @Image2 ..."""
        if kind != "image":
            raise ValueError(f"{self.label} takes image references only, not {kind}.")
        return f"@Image{index}"

    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        # "Mina (@Image1)": the character's name, then the tag of its picture.
        return self._render(
            prompt, mentions, lambda character: f"{character.name} ({character.external_id})"
        )

    # --- Generation -----------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        problems = self.validate(request)
        if problems:
            raise ProviderError("invalid", " ".join(problems))
        row = self.hosted
        if row is None:  # validate() has said so already; this keeps the type checker sure
            raise ProviderError("invalid", self._unknown_model())
        frame = next((r for r in request.references if _is_first_frame(r)), None)
        payload: dict[str, Any] = {"model": row.id, "promptText": request.prompt}
        if frame is not None:
            path = IMAGE_TO_VIDEO
            # The list form says "first frame" for every model (a bare string is a
            # reference image to seedance2).
            payload["promptImage"] = [{"uri": self._uri(frame), "position": "first"}]
            if not request.prompt.strip():
                del payload["promptText"]  # optional with a first frame, and must not be ""
        else:
            path = TEXT_TO_VIDEO
            pictures = [r for r in request.references if r.kind == "image"]
            if pictures:
                payload["references"] = [{"uri": self._uri(p)} for p in pictures]
        payload["ratio"] = row.ratio_of(request.size)
        payload["duration"] = request.seconds
        if row.audio:
            payload["audio"] = True
        response = send_once(
            self.http, "POST", self._url(path), headers=self._headers(), json=payload
        )
        body = self._answer(response)
        task_id = str(body.get("id") or "")
        if not task_id:
            raise ProviderError(
                "unavailable", f"{self.label} accepted the video without a task id."
            )
        job = ProviderJob(
            provider_job_id=task_id,
            status="queued",  # Runway answers the id alone
            poll_after=self.POLL_INTERVAL,
            prompt=request.prompt,
            raw=dict(body),
        )
        return job, self._recorded(payload)

    def _uri(self, reference: Reference) -> str:
        """Inline when it fits (nothing to fetch), else its https address."""
        if reference.data is not None and _fits_inline(reference):
            return _data_uri(reference.data, reference.content_type)
        if _https_on_a_domain(reference.url):
            return str(reference.url)
        raise ProviderError(
            "invalid",
            f"{self.label} takes a picture inline (under 5 MB) or by an https address on a "
            f"domain name; this one is {shown_briefly(reference.url or 'a file too large', 90)}.",
            code="reference_unreachable",
        )

    @staticmethod
    def _recorded(payload: dict[str, Any]) -> dict[str, Any]:
        recorded = dict(payload)
        for key in ("references", "promptImage"):
            if key in recorded:
                recorded[key] = [{**item, "uri": _shortened(item["uri"])} for item in payload[key]]
        return recorded

    @classmethod
    def describe_sent(cls, payload: Mapping[str, Any]) -> SentRequest:
        """The prompt, each reference as the prompt names it (@Image1 ...), then the rest."""
        if "promptText" not in payload and "model" not in payload:
            return super().describe_sent(payload)  # the record made just before sending
        inputs = [
            f"@Image{n}: {shown_briefly(str(item.get('uri') or ''), 90)}"
            for n, item in enumerate(payload.get("references") or [], start=1)
        ]
        inputs += [
            f"{item.get('position', 'first')} frame: {shown_briefly(str(item.get('uri')), 90)}"
            for item in payload.get("promptImage") or []
        ]
        inputs += [
            f"{key}: {shown_briefly(value)}"
            for key, value in payload.items()
            if key not in ("promptText", "references", "promptImage")
        ]
        return SentRequest(prompt=str(payload.get("promptText") or ""), inputs=tuple(inputs))

    def fetch(self, provider_job_id: str) -> ProviderJob:
        return self._job(self._task(provider_job_id))

    def _task(self, provider_job_id: str) -> dict:
        response = send_once(
            self.http,
            "GET",
            self._url(f"{TASKS}/{provider_job_id}"),
            headers=self._headers(),
            safe=True,
        )
        return self._answer(response)

    def _job(self, task: Mapping[str, Any]) -> ProviderJob:
        raw_status = str(task.get("status") or "")
        status = _STATUS.get(raw_status, "queued")
        code = message = ""
        if status == "failed":
            failure_code = str(task.get("failureCode") or "")
            message = str(task.get("failure") or "Runway could not make the video.")
            # SAFETY.INPUT.* / SAFETY.OUTPUT.*: content moderation, "You should not retry
            # these generations" (docs.dev.runwayml.com/errors/task-failures) [C].
            if failure_code.startswith("SAFETY."):
                code = f"moderation:{failure_code}"
            else:
                code = failure_code or "failed"
        progress = 0
        if status == "running":
            try:
                share = float(task.get("progress") or 0)
            except (TypeError, ValueError):
                share = 0.0
            progress = max(1, min(99, round(share * 100)))  # 0 reads as queued, 100 as done
        elif status == "succeeded":
            progress = 100
        output = task.get("output") or []
        url = str(output[0]) if status == "succeeded" and output else ""
        cost = task.get("cost")
        credits = cost.get("credits") if isinstance(cost, dict) else None
        usage = (
            Decimal(str(credits))
            if status == "succeeded" and isinstance(credits, int | float)
            else None
        )
        return ProviderJob(
            provider_job_id=str(task.get("id") or ""),
            status=status,
            progress=progress,
            error_code=code,
            error_message=message,
            poll_after=self.POLL_INTERVAL,
            video_url=url,
            created_at=_unix(task.get("createdAt")),
            usage=usage,  # the credits Runway charged: the ledger charges exactly these
            raw=dict(task),
        )

    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        """The video from its link; a link that has expired is renewed once by reading the
        task again, as the SDK says to ("fetch the task again to get fresh URLs")."""
        if variant != "video":
            raise ProviderError(
                "not_found", f"{self.label} has no {variant} for task {job.provider_job_id}."
            )
        url = job.video_url or self._fresh_url(job.provider_job_id)
        try:
            yield from self._stream(url)  # a signed link: no key goes with it
            return
        except ProviderError as error:
            if error.status_code not in (401, 403, 404):
                raise
        fresh = self._fresh_url(job.provider_job_id)
        if fresh == url:
            raise ProviderError(
                "not_found",
                f"{self.label}'s link to this video has expired or is gone "
                "(links last 24-48 hours).",
            )
        try:
            yield from self._stream(fresh)
        except ProviderError as error:
            if error.status_code not in (401, 403, 404):
                raise
            raise ProviderError(
                "not_found",
                f"{self.label}'s link to this video has expired or is gone.",
                status_code=error.status_code,
            ) from error

    def _fresh_url(self, provider_job_id: str) -> str:
        job = self.fetch(provider_job_id)
        if job.status != "succeeded" or not job.video_url:
            raise ProviderError(
                "not_found",
                f"{self.label} has no video for task {provider_job_id} "
                f"(it is {str(job.raw.get('status') or 'unknown').lower()}).",
            )
        return job.video_url

    def cancel(self, provider_job_id: str) -> bool:
        """Stop a task that is waiting or running; False once it has ended or is unknown.

        Runway's DELETE cancels a task under way but deletes a finished one (its charge
        stands), so the task is read first and a finished one is left alone.
        """
        try:
            task = self._task(provider_job_id)
        except ProviderError as error:
            if error.kind == "not_found":
                return False
            raise
        if str(task.get("status") or "") in _TERMINAL:
            return False
        response = send_once(
            self.http,
            "DELETE",
            self._url(f"{TASKS}/{provider_job_id}"),
            headers=self._headers(),
            safe=True,
        )
        if response.status_code == 404:
            return False
        if response.status_code in (200, 204):
            return True
        self._answer(response)  # raises: what else Runway said
        return False

    # --- Errors ---------------------------------------------------------------------------------

    def _answer(self, response: httpx.Response) -> dict:
        """classify_response, with Runway's 400 body ({error, issues[{path, message}]}) in
        plain words, and a spent balance read as quota."""
        try:
            body = classify_response(response, provider=self.label)
        except ProviderError as error:
            detail = _detail(response)
            if error.kind == "invalid" and detail:
                if any(words in detail.lower() for words in _NO_CREDITS):
                    raise ProviderError(
                        "quota",
                        f"{self.label}: out of credits: {detail}",
                        status_code=error.status_code,
                    ) from error
                raise ProviderError(
                    "invalid",
                    f"{self.label} refused the request: {detail}",
                    status_code=error.status_code,
                    code=error.code,
                ) from error
            raise
        if not isinstance(body, dict):
            raise ProviderError("unavailable", f"{self.label} answered with something unexpected.")
        return body


def _detail(response: httpx.Response) -> str:
    """Runway's `error`, followed by each issue as "path: message"."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    text = str(body.get("error") or "")
    issues = body.get("issues")
    if isinstance(issues, list):
        parts = []
        for issue in issues:
            if not isinstance(issue, dict):
                continue
            path = ".".join(str(step) for step in issue.get("path") or [])
            words = str(issue.get("message") or "")
            parts.append(f"{path}: {words}" if path else words)
        if parts:
            text = f"{text} ({'; '.join(parts)})" if text else "; ".join(parts)
    return text
