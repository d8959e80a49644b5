"""ByteDance Seedance 2.0 adapter (BytePlus ModelArk; Volcengine Ark speaks the same protocol).

Seedance keeps no characters for us: each one travels with every request as a
reference image (or clip) and the prompt names it by its place, "Mina (image 1)".
Billing is in tokens, which the finished task reports.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

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

# Our sizes as Ark's (resolution, ratio); Ark picks the pixels from these two.
SIZES: dict[str, tuple[str, str]] = {
    "1280x720": ("720p", "16:9"),
    "720x1280": ("720p", "9:16"),
    "1920x1080": ("1080p", "16:9"),
    "1080x1920": ("1080p", "9:16"),
    "960x960": ("720p", "1:1"),
    "1440x1440": ("1080p", "1:1"),
}
_STATUS = {
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "failed",  # a task that waited past its execution deadline
}
# Reference items: the content type and the role Seedance gives each kind of input.
_ITEMS = {
    "image": ("image_url", "reference_image"),
    "video": ("video_url", "reference_video"),
    "audio": ("audio_url", "reference_audio"),
}
MAX_REFERENCE_AUDIO = 3
TOKEN_FPS = 24


def _is_moderation(code: str) -> bool:
    # InputTextSensitiveContentDetected, InputImageSensitiveContentDetected,
    # OutputVideoSensitiveContentDetected, ... : every content check Ark runs.
    return "SensitiveContent" in code


def _shortened(url: str) -> str:
    """A data: URL as "<image/png, 1234 bytes>", so the stored payload stays small."""
    if not url.startswith("data:"):
        return url
    header, _, data = url.partition(",")
    content_type = header.removeprefix("data:").split(";")[0] or "application/octet-stream"
    return f"<{content_type}, {len(data) * 3 // 4 - data.count('=', -2)} bytes>"


class SeedanceProvider(Provider):
    kind = "seedance"
    official_base_url = "https://ark.ap-southeast.bytepluses.com/api/v3"
    capabilities = Capabilities(
        native_characters=False,
        mention_syntax="image n",
        durations=tuple(range(4, 16)),
        sizes=tuple(SIZES),
        # Characters travel as reference images, so the image limit is the character limit.
        max_characters=9,
        max_references=9,
        pricing_unit="token",
        # [3P] about $0.93 for 5 s at 1080p; that video is 1920 x 1080 x 24 fps x 5 s / 1024
        # = 243,000 tokens, so 0.93 / 243,000 = 0.00000382716... a token.
        price=Decimal("0.0000038272"),
        webhooks=False,  # callback_url exists, but with no published signature to verify
        remix=False,
        extend_seconds=(),
        character_clip_seconds=None,
        character_from_job=False,
        can_list_jobs=True,
        list_is_authoritative=True,
        can_cancel=True,
        result_variants=("video",),
        max_reference_clips=3,
        reference_clip_seconds=(2.0, 15.0),
        reports_progress=False,  # Ark says queued, running or done: no percentage
    )
    DEFAULT_MODEL = "dreamina-seedance-2-0-260128"
    POLL_INTERVAL = 2.0  # Ark sends no hint; a steady, polite pace
    LIST_PAGE_SIZE = 100
    LIST_MAX_PAGES = 20  # bounded: at most 2,000 recent tasks are examined

    @property
    def label(self) -> str:
        return "Seedance"

    # --- Prices and limits ----------------------------------------------------------------------

    def usage_estimate(self, *, seconds: int, size: str) -> Decimal:
        """Tokens for a video: width x height x 24 fps x seconds / 1024 (ByteDance's formula).

        A size we cannot read is priced as the largest we make, so a budget is never
        under-reserved.
        """
        try:
            width, height = (int(side) for side in size.lower().split("x"))
        except ValueError:
            width, height = max(
                (tuple(int(side) for side in known.split("x")) for known in SIZES),
                key=lambda pair: pair[0] * pair[1],
            )
        exact = Decimal(width * height * TOKEN_FPS * seconds) / 1024
        return exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)

    def estimate(self, *, seconds: int, characters_to_register: int = 0) -> Decimal:
        # The list price at the size the price above was quoted for (1080p 16:9).
        return self.capabilities.price * self.usage_estimate(seconds=seconds, size="1920x1080")

    def validate(self, request: GenerationRequest) -> list[str]:
        problems = super().validate(request)
        if request.kind != "generate":
            problems.append(f"{self.label} cannot {request.kind} a video.")
        audio = sum(1 for r in request.references if r.kind == "audio")
        if audio > MAX_REFERENCE_AUDIO:
            problems.append(
                f"{self.label} takes at most {MAX_REFERENCE_AUDIO} reference audio file(s) per "
                f"video; this request has {audio}."
            )
        if any(r.url is None and r.data is None for r in request.references):
            problems.append("A reference has neither a file nor an address.")
        return problems

    # --- Characters -----------------------------------------------------------------------------

    def register_character(self, source: CharacterSource) -> RegisteredCharacter:
        raise ProviderError(
            "invalid", "Seedance has no saved characters; characters travel as reference images."
        )

    def reference_label(self, kind: str, index: int) -> str:
        """Seedance prompts say "image 1", "video 2", "audio 1" (1-based, per kind)."""
        if kind not in _ITEMS:
            raise ValueError(f"Seedance has no {kind} references.")
        return f"{kind} {index}"

    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        # The external id is the reference label the pipeline gave the character's picture.
        return self._render(
            prompt, mentions, lambda character: f"{character.name} ({character.external_id})"
        )

    # --- Generation -----------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        if request.kind != "generate":
            raise ProviderError("invalid", f"{self.label} cannot {request.kind} a video.")
        if request.size not in SIZES:
            raise ProviderError(
                "invalid", f"{self.label} cannot make {request.size}; it makes {', '.join(SIZES)}."
            )
        resolution, ratio = SIZES[request.size]
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        content.extend(self._reference_item(reference) for reference in request.references)
        payload: dict[str, Any] = {
            "model": self.model or self.DEFAULT_MODEL,
            "content": content,
            "resolution": resolution,
            "ratio": ratio,
            "duration": request.seconds,
            "watermark": False,
        }
        response = send_once(
            self.http,
            "POST",
            self._url("/contents/generations/tasks"),
            headers=self._headers(),
            json=payload,
        )
        body = self._answer(response)
        job = ProviderJob(
            provider_job_id=str(body["id"]),
            status="queued",  # Ark answers the id alone
            poll_after=self.POLL_INTERVAL,
            prompt=request.prompt,
            raw=dict(body),
        )
        return job, self._recorded(payload)

    def _reference_item(self, reference: Reference) -> dict[str, Any]:
        if reference.kind not in _ITEMS:
            raise ProviderError("invalid", f"{self.label} takes no {reference.kind} references.")
        item_type, role = _ITEMS[reference.kind]
        if reference.url:
            url = reference.url
        elif reference.data is not None:
            content_type = reference.content_type or "application/octet-stream"
            url = f"data:{content_type};base64,{base64.b64encode(reference.data).decode()}"
        else:
            raise ProviderError("invalid", "A reference has neither a file nor an address.")
        return {"type": item_type, item_type: {"url": url}, "role": role}

    @staticmethod
    def _recorded(payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as sent, with inline files named by type and size instead of bytes."""
        content = []
        for item in payload["content"]:
            key = item["type"]
            if key == "text":
                content.append(dict(item))
            else:
                content.append({**item, key: {"url": _shortened(item[key]["url"])}})
        return {**payload, "content": content}

    @classmethod
    def describe_sent(cls, payload: Mapping[str, Any]) -> SentRequest:
        """Ark's body is a `content` list: the text item is the prompt, and each reference is
        named as the prompt names it ("image 1", "video 1"), with its role and address."""
        if "content" not in payload:  # the record made just before sending
            return super().describe_sent(payload)
        prompt, inputs, counts = "", [], {}
        for item in payload.get("content") or []:
            if item.get("type") == "text":
                prompt = str(item.get("text") or "")
                continue
            kind = str(item.get("type", "")).removesuffix("_url")
            counts[kind] = counts.get(kind, 0) + 1
            url = str((item.get(item.get("type")) or {}).get("url") or "")
            role = item.get("role", "")
            inputs.append(f"{kind} {counts[kind]} ({role}): {shown_briefly(url, 90)}")
        inputs += [f"{key}: {value}" for key, value in payload.items() if key != "content"]
        return SentRequest(prompt=prompt, inputs=tuple(inputs))

    def fetch(self, provider_job_id: str) -> ProviderJob:
        response = send_once(
            self.http,
            "GET",
            self._url(f"/contents/generations/tasks/{provider_job_id}"),
            headers=self._headers(),
            safe=True,
        )
        return self._job(self._answer(response))

    def _job(self, body: Mapping[str, Any]) -> ProviderJob:
        raw_status = str(body.get("status") or "").lower()
        status = _STATUS.get(raw_status, "queued")
        error = body.get("error") or {}
        code = str(error.get("code") or "") if isinstance(error, dict) else ""
        message = str(error.get("message") or "") if isinstance(error, dict) else str(error)
        if raw_status == "expired" and not code:
            code, message = "expired", "The task waited too long in Seedance's queue."
        if status != "failed":
            code = message = ""
        elif _is_moderation(code):
            code = f"moderation:{code}"  # the pipeline recognises moderation by this word
        content = body.get("content") or {}
        usage = body.get("usage") or {}
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        return ProviderJob(
            provider_job_id=str(body.get("id")),
            status=status,
            # Ark reports no progress: a task is waiting, working or done.
            progress=100 if status == "succeeded" else 0,
            error_code=code,
            error_message=message,
            poll_after=self.POLL_INTERVAL,
            video_url=str(content.get("video_url") or "") if isinstance(content, dict) else "",
            created_at=body.get("created_at"),
            usage=Decimal(int(tokens)) if status == "succeeded" and tokens is not None else None,
            raw=dict(body),
        )

    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        if variant != "video":
            raise ProviderError(
                "not_found", f"{self.label} has no {variant} for task {job.provider_job_id}."
            )
        url = job.video_url or self.fetch(job.provider_job_id).video_url
        if not url:
            raise ProviderError(
                "not_found", f"{self.label} has no video for task {job.provider_job_id}."
            )
        try:
            # A public, signed object-storage link: no API key goes with it.
            yield from self._stream(url)
        except ProviderError as error:
            if error.status_code not in (403, 404):
                raise
            # Object storage answers 403 once the 24 h signature has expired.
            raise ProviderError(
                "not_found",
                f"{self.label}'s link to this video has expired or is gone (links last 24 hours).",
                status_code=error.status_code,
            ) from error

    def is_sent_job(self, candidate: ProviderJob, sent: Mapping[str, Any]) -> bool:
        """Ark's tasks do not echo the prompt: match on what they do echo, the model,
        length, resolution and ratio (reconciliation takes the earliest unclaimed match)."""
        shape = SIZES.get(str(sent.get("size") or ""))
        if shape is None:
            return False
        raw = candidate.raw
        return (
            str(raw.get("model") or "") == (self.model or self.DEFAULT_MODEL)
            and int(raw.get("duration") or 0) == int(sent.get("seconds") or 0)
            and (str(raw.get("resolution") or ""), str(raw.get("ratio") or "")) == shape
        )

    def list_recent(self, *, since: int) -> list[ProviderJob]:
        """Tasks created since `since`, newest first.

        Ark's tasks do not echo the prompt, so these come back with `prompt` empty.
        """
        found: list[ProviderJob] = []
        for page in range(1, self.LIST_MAX_PAGES + 1):
            response = send_once(
                self.http,
                "GET",
                self._url("/contents/generations/tasks"),
                headers=self._headers(),
                params={
                    "page_num": page,
                    "page_size": self.LIST_PAGE_SIZE,
                    "filter.model": self.model or self.DEFAULT_MODEL,
                },
                safe=True,
            )
            body = self._answer(response)
            items = body.get("items") or []
            for item in items:
                if int(item.get("created_at") or 0) < since:
                    return found
                found.append(self._job(item))
            if len(items) < self.LIST_PAGE_SIZE or page * self.LIST_PAGE_SIZE >= int(
                body.get("total") or 0
            ):
                break
        return found

    def cancel(self, provider_job_id: str) -> bool:
        """Cancel a queued task (or delete a finished one); False once it is running or gone."""
        response = send_once(
            self.http,
            "DELETE",
            self._url(f"/contents/generations/tasks/{provider_job_id}"),
            headers=self._headers(),
            safe=True,
        )
        # 404: no such task; 409: running (Ark lets it finish) or already cancelled.
        if response.status_code in (404, 409):
            return False
        self._answer(response)
        return True

    # --- Errors ---------------------------------------------------------------------------------

    def _answer(self, response) -> dict:
        """classify_response, plus what only Ark's codes say: moderation and quota."""
        try:
            return classify_response(response, provider=self.label)
        except ProviderError as error:
            if _is_moderation(error.code):
                raise ProviderError(
                    "moderation",
                    f"{error.message} ({error.code})",
                    status_code=error.status_code,
                    code=error.code,
                ) from error
            if error.kind == "rate_limit" and error.code.startswith(
                ("QuotaExceeded", "AccountOverdue")
            ):
                raise ProviderError(
                    "quota",
                    error.message.replace("rate limited", "out of quota", 1),
                    retry_after=error.retry_after,
                    status_code=error.status_code,
                    code=error.code,
                ) from error
            raise
