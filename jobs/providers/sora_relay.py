"""Sora relay ("reverse") adapter: native @character ids, flat price, task polling, no SLA."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal

from jobs.providers.base import (
    Capabilities,
    CharacterSource,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderJob,
    RegisteredCharacter,
)
from jobs.providers.http import classify_response, send_once

# Status names across relays: `submitted` is some resellers' word for queued.
_STATUS = {
    "queued": "queued",
    "submitted": "queued",
    "pending": "queued",
    "processing": "running",
    "in_progress": "running",
    "running": "running",
    "completed": "succeeded",
    "succeeded": "succeeded",
    "failed": "failed",
}


class SoraRelayProvider(Provider):
    kind = "sora_relay"
    capabilities = Capabilities(
        native_characters=True,
        mention_syntax="@id",
        durations=(5, 10, 15),
        sizes=("720x1280",),
        max_characters=4,
        max_references=0,
        pricing_unit="request",
        price=Decimal("0.12"),
        character_clip_seconds=(1.0, 15.0),
        character_from_job=True,
        reports_progress=True,  # a task's `progress`, as Sora's
    )
    POLL_INTERVAL = 3.0  # the relay sends no hint; a steady, polite pace

    @property
    def label(self) -> str:
        return "Sora relay"

    def register_character(self, source: CharacterSource) -> RegisteredCharacter:
        if source.from_provider_job_id:
            payload = {"task_id": source.from_provider_job_id, "name": source.name}
            path = "/sora/characters/extract"
        elif source.clip_url:
            payload = {"video_url": source.clip_url, "name": source.name}
            if source.description:
                payload["description"] = source.description
            path = "/sora/characters"
        else:
            raise ProviderError(
                "invalid",
                f"The relay needs a clip URL or a finished take to register {source.name}.",
            )
        response = send_once(
            self.http, "POST", self._url(path), headers=self._headers(), json=payload
        )
        body = classify_response(response, provider=self.label)
        external = body.get("character_id") or body.get("id") or ""
        # Some relays answer with a username to mention instead of the id.
        return RegisteredCharacter(
            external_id=str(body.get("username") or external),
            name=str(body.get("name") or source.name),
        )

    def find_character(self, *, name: str, since: int) -> RegisteredCharacter | None:
        response = send_once(
            self.http, "GET", self._url("/sora/characters"), headers=self._headers(), safe=True
        )
        body = classify_response(response, provider=self.label)
        matches = [
            c
            for c in body.get("characters", [])
            if c.get("name") == name and int(c.get("created_at") or 0) >= since
        ]
        if not matches:
            return None
        latest = max(matches, key=lambda c: int(c.get("created_at") or 0))
        return RegisteredCharacter(external_id=str(latest["character_id"]), name=name)

    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        return self._render(prompt, mentions, lambda character: f"@{character.external_id}")

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        if request.kind != "generate":
            raise ProviderError("invalid", f"The relay cannot {request.kind} a video.")
        payload = {"prompt": request.prompt, "duration": request.seconds}
        response = send_once(
            self.http, "POST", self._url("/sora/generate"), headers=self._headers(), json=payload
        )
        return self._job(classify_response(response, provider=self.label)), payload

    def fetch(self, provider_job_id: str) -> ProviderJob:
        response = send_once(
            self.http,
            "GET",
            self._url(f"/sora/tasks/{provider_job_id}"),
            headers=self._headers(),
            safe=True,
        )
        return self._job(classify_response(response, provider=self.label))

    def _job(self, body: Mapping) -> ProviderJob:
        status = _STATUS.get(str(body.get("status", "")).lower(), "queued")
        error = body.get("error")
        return ProviderJob(
            provider_job_id=str(body.get("task_id") or body.get("id")),
            status=status,
            progress=int(body.get("progress") or (100 if status == "succeeded" else 0)),
            error_code="generation_failed" if status == "failed" else "",
            error_message=str(error.get("message") if isinstance(error, dict) else error or ""),
            poll_after=self.POLL_INTERVAL,
            video_url=str(body.get("video_url") or ""),
            raw=dict(body),
        )

    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        if variant != "video" or not job.video_url:
            raise ProviderError(
                "not_found", f"The relay has no {variant} for task {job.provider_job_id}."
            )
        # The video URL is the relay's own file host, not a user's URL.
        yield from self._stream(job.video_url)
