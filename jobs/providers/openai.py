"""OpenAI Videos API adapter (also any OpenAI-compatible gateway: the base URL is configurable)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal

import httpx

from jobs.providers.base import (
    Capabilities,
    CharacterSource,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderJob,
    RegisteredCharacter,
    WebhookNotice,
    WebhookRejected,
)
from jobs.providers.http import classify_response, send_once

_STATUS = {
    "queued": "queued",
    "in_progress": "running",
    "completed": "succeeded",
    "failed": "failed",
}
WEBHOOK_TOLERANCE_SECONDS = 300


class OpenAIProvider(Provider):
    kind = "openai"
    capabilities = Capabilities(
        native_characters=True,
        mention_syntax="name",
        durations=(4, 8, 12),
        sizes=("720x1280", "1280x720", "1024x1792", "1792x1024"),
        max_characters=2,
        max_references=1,
        pricing_unit="second",
        price=Decimal("0.10"),
        webhooks=True,
        remix=True,
        extend_seconds=(4, 8, 12),
        character_clip_seconds=(2.0, 4.0),
        can_list_jobs=True,
        list_is_authoritative=True,
        # DELETE /videos/{id} removes only finished videos: one under way cannot be stopped
        # (and may still be billed), so a cancelled take is abandoned there.
        can_cancel=False,
        result_variants=("video", "thumbnail", "spritesheet"),
        reports_progress=True,  # a video's `progress`, 0-100
    )
    PRO_SIZES = ("1024x1792", "1792x1024")

    @property
    def label(self) -> str:
        return "OpenAI"

    def validate(self, request: GenerationRequest) -> list[str]:
        problems = super().validate(request)
        if request.size in self.PRO_SIZES and "pro" not in (self.model or "sora-2"):
            problems.append(
                f"{request.size} needs a sora-2-pro model; "
                f"this account uses {self.model or 'sora-2'}."
            )
        return problems

    def estimate(self, *, seconds: int, characters_to_register: int = 0) -> Decimal:
        per_second = Decimal("0.30") if "pro" in (self.model or "") else self.capabilities.price
        return per_second * seconds

    # --- Characters ---------------------------------------------------------

    def register_character(self, source: CharacterSource) -> RegisteredCharacter:
        if source.clip is None:
            raise ProviderError(
                "invalid", f"OpenAI needs a 2-4 s clip of {source.name} to register it."
            )
        response = send_once(
            self.http,
            "POST",
            self._url("/videos/characters"),
            headers=self._headers(),
            data={"name": source.name[:80]},
            files={"video": ("character.mp4", source.clip, "video/mp4")},
        )
        body = classify_response(response, provider=self.label)
        return RegisteredCharacter(external_id=body["id"], name=body.get("name") or source.name)

    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        # OpenAI (via gateways) wants the character's name in the prompt and its id in `characters`.
        return self._render(prompt, mentions, lambda character: character.name)

    # --- Generation ---------------------------------------------------------

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        if request.kind == "remix":
            payload: dict = {"prompt": request.prompt}
            response = send_once(
                self.http,
                "POST",
                self._url(f"/videos/{request.source_provider_job_id}/remix"),
                headers=self._headers(),
                json=payload,
            )
        elif request.kind == "extend":
            payload = {
                "prompt": request.prompt,
                "seconds": str(request.seconds),
                "video": {"id": request.source_provider_job_id},
            }
            response = send_once(
                self.http,
                "POST",
                self._url("/videos/extensions"),
                headers=self._headers(),
                json=payload,
            )
        else:
            payload = {
                "prompt": request.prompt,
                "seconds": str(request.seconds),
                "size": request.size,
            }
            if self.model:
                payload["model"] = self.model
            if request.character_ids:
                payload["characters"] = [{"id": cid} for cid in request.character_ids]
            image = next((r for r in request.references if r.kind == "image"), None)
            if image is not None and image.data is None:
                # Only an address: the JSON body takes it as `input_reference.image_url`.
                if not image.url:
                    raise ProviderError("invalid", "A reference has neither a file nor an address.")
                payload["input_reference"] = {"image_url": image.url}
                response = send_once(
                    self.http, "POST", self._url("/videos"), headers=self._headers(), json=payload
                )
            elif image is not None:
                data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
                extension = image.content_type.rsplit("/", 1)[-1] or "png"
                files = {
                    "input_reference": (f"reference.{extension}", image.data, image.content_type)
                }
                response = send_once(
                    self.http,
                    "POST",
                    self._url("/videos"),
                    headers=self._headers(),
                    data=data,
                    files=files,
                )
                payload["input_reference"] = f"<{image.content_type}, {len(image.data)} bytes>"
            else:
                response = send_once(
                    self.http, "POST", self._url("/videos"), headers=self._headers(), json=payload
                )
        body = classify_response(response, provider=self.label)
        return self._job(body, response), payload

    def fetch(self, provider_job_id: str) -> ProviderJob:
        response = send_once(
            self.http,
            "GET",
            self._url(f"/videos/{provider_job_id}"),
            headers=self._headers(),
            safe=True,
        )
        return self._job(classify_response(response, provider=self.label), response)

    def _job(self, body: Mapping, response: httpx.Response) -> ProviderJob:
        error = body.get("error") or {}
        hint = response.headers.get("openai-poll-after-ms")
        return ProviderJob(
            provider_job_id=str(body["id"]),
            status=_STATUS.get(str(body.get("status")), "queued"),
            progress=int(body.get("progress") or 0),
            error_code=str(error.get("code") or ""),
            error_message=str(error.get("message") or ""),
            poll_after=int(hint) / 1000 if hint and hint.isdigit() else 1.0,
            prompt=str(body.get("prompt") or ""),
            created_at=body.get("created_at"),
            raw=dict(body),
        )

    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        url = self._url(f"/videos/{job.provider_job_id}/content")
        try:
            yield from self._stream(url, params={"variant": variant}, headers=self._headers())
        except ProviderError as error:
            if error.code != "video_not_ready":
                raise
            # Finished by its own account (a webhook can run ahead of the content), or
            # still being made: either way, not gone. The pipeline waits for it.
            raise ProviderError(
                "not_ready", error.message, status_code=error.status_code, code=error.code
            ) from error

    def list_recent(self, *, since: int) -> list[ProviderJob]:
        found: list[ProviderJob] = []
        after = None
        for _ in range(20):  # bounded: at most 2,000 recent videos are examined
            params = {"limit": 100, "order": "desc"} | ({"after": after} if after else {})
            response = send_once(
                self.http,
                "GET",
                self._url("/videos"),
                headers=self._headers(),
                params=params,
                safe=True,
            )
            body = classify_response(response, provider=self.label)
            for item in body.get("data", []):
                if (item.get("created_at") or 0) < since:
                    return found
                found.append(self._job(item, response))
            if not body.get("has_more"):
                break
            after = body.get("last_id")
        return found

    # --- Webhooks (Standard Webhooks) ---------------------------------------

    def verify_webhook(
        self, *, headers: Mapping[str, str], body: bytes, secret: str
    ) -> WebhookNotice:
        lower = {k.lower(): v for k, v in headers.items()}
        event_id, stamp, signatures = (
            lower.get("webhook-id", ""),
            lower.get("webhook-timestamp", ""),
            lower.get("webhook-signature", ""),
        )
        if not (event_id and stamp and signatures and secret):
            raise WebhookRejected("Missing webhook headers or secret.")
        try:
            sent_at = int(stamp)
        except ValueError:
            raise WebhookRejected("Malformed webhook timestamp.") from None
        if abs(time.time() - sent_at) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRejected("Webhook timestamp is too old or in the future.")
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(
            hmac.new(key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        offered = [part.split(",", 1)[1] for part in signatures.split() if part.startswith("v1,")]
        if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
            raise WebhookRejected("Webhook signature does not match.")
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRejected("Webhook body is not JSON.") from None
        return WebhookNotice(
            event_id=event_id,
            event_type=str(event.get("type", "")),
            provider_job_id=str((event.get("data") or {}).get("id", "")),
            payload=event,
        )
