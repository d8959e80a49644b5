"""ElevenLabs text to speech (`https://api.elevenlabs.io/v1`), as its API and official SDK
speak it: the key in `xi-api-key`, voices (`GET /voices`, instant clones by `POST
/voices/add`), synthesis (`POST /text-to-speech/{voice_id}`, MP3 back, its cost in the
`character-cost` header and its place in the history in `history-item-id`), and the
history (`GET /history`, `GET /history/{id}/audio`) a lost answer is found in.

Errors come as `{"detail": {"status": ..., "message": ...}}` (a 422 as a list of field
errors); a 401 `quota_exceeded` is out of credits, not a bad key.
"""

from __future__ import annotations

import math
from decimal import Decimal

import httpx

from jobs.providers.base import Capabilities, ProviderError
from jobs.providers.http import classify_response, send_once
from jobs.providers.speech import (
    Speech,
    SpeechItem,
    SpeechProvider,
    SpeechRequest,
    VoiceInfo,
    VoiceSample,
)

DEFAULT_MODEL = "eleven_multilingual_v2"
OUTPUT_FORMAT = "mp3_44100_128"
# Per model: the most characters one request speaks, and the credits each character costs.
MODELS: dict[str, tuple[int, Decimal]] = {
    "eleven_multilingual_v2": (5_000, Decimal("1")),
    "eleven_v3": (5_000, Decimal("1")),
    "eleven_flash_v2_5": (40_000, Decimal("0.5")),
    "eleven_turbo_v2_5": (40_000, Decimal("0.5")),
}
HISTORY_PAGE = 100
HISTORY_PAGES = 10  # bounded: at most 1,000 recent syntheses are examined
_RATE_LIMITS = ("too_many_concurrent_requests", "system_busy")
_NO_VOICE = ("voice_not_found", "voice_does_not_exist")


def _detail(response: httpx.Response) -> tuple[str, str]:
    """(status, message) from `{"detail": {"status", "message"}}`, a 422's list of field
    errors, or a plain `{"detail": "..."}`."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return str(detail.get("status") or ""), str(detail.get("message") or "")
    if isinstance(detail, str):
        return "", detail
    if isinstance(detail, list):
        messages = []
        for item in detail:
            if isinstance(item, dict):
                place = [str(p) for p in item.get("loc") or [] if p not in ("body", "query")]
                where = ".".join(place)
                text = str(item.get("msg") or "")
                messages.append(f"{where}: {text}" if where else text)
        return "validation_error", "; ".join(messages)
    return "", ""


class ElevenLabsProvider(SpeechProvider):
    kind = "elevenlabs"
    official_base_url = "https://api.elevenlabs.io/v1"
    capabilities = Capabilities(
        native_characters=False,
        mention_syntax="plain",
        durations=(),
        sizes=(),
        max_characters=1,
        max_references=0,
        pricing_unit="credit",
        # A character of Multilingual v2 is a credit; ElevenLabs' published overage is
        # $0.30 per 1,000 (the price book says where the figure comes from).
        price=Decimal("0.0003"),
        output="speech",
        voice_samples=True,
        # The history lists every synthesis at once (unless zero retention is asked for,
        # which Castboard never does), so one it does not show never happened.
        can_list_jobs=True,
        list_is_authoritative=True,
        result_variants=("audio",),
    )

    @property
    def label(self) -> str:
        return "ElevenLabs"

    @property
    def model_id(self) -> str:
        return self.model or DEFAULT_MODEL

    def _headers(self) -> dict[str, str]:
        return {"xi-api-key": self.api_key}

    # --- Pricing and limits ---------------------------------------------------------------

    def _limits(self) -> tuple[int, Decimal]:
        return MODELS.get(self.model_id, MODELS[DEFAULT_MODEL])

    def credits_for(self, text: str) -> Decimal:
        _, per_character = self._limits()
        return Decimal(math.ceil(len(text) * per_character))

    def speech_problems(self, text: str) -> list[str]:
        problems = super().speech_problems(text)
        most, _ = self._limits()
        if len(text) > most:
            problems.append(
                f"{self.label} ({self.model_id}) speaks at most {most:,} characters at a time; "
                f"these words have {len(text):,}. Split the line."
            )
        return problems

    # --- Voices ---------------------------------------------------------------------------

    def list_voices(self) -> list[VoiceInfo]:
        response = send_once(
            self.http, "GET", self._url("/voices"), headers=self._headers(), safe=True
        )
        body = self._json(response)
        voices = body.get("voices")
        if not isinstance(voices, list):
            raise ProviderError("unavailable", f"{self.label} sent a voice list without voices.")
        return [self._voice(item) for item in voices if isinstance(item, dict)]

    @staticmethod
    def _voice(item: dict) -> VoiceInfo:
        created = item.get("created_at_unix")
        return VoiceInfo(
            voice_id=str(item.get("voice_id") or ""),
            name=str(item.get("name") or ""),
            category=str(item.get("category") or ""),
            preview_url=str(item.get("preview_url") or ""),
            created_at=created if isinstance(created, int) else None,
        )

    def add_voice(self, sample: VoiceSample) -> VoiceInfo:
        response = send_once(
            self.http,
            "POST",
            self._url("/voices/add"),
            headers=self._headers(),
            data={"name": sample.name[:100], "remove_background_noise": "false"},
            files=[("files", (sample.filename, sample.data, sample.content_type))],
        )
        body = self._json(response)
        voice_id = str(body.get("voice_id") or "")
        if not voice_id:
            raise ProviderError("unavailable", f"{self.label} made a voice but sent no id for it.")
        return VoiceInfo(voice_id=voice_id, name=sample.name, category="cloned")

    # --- Synthesis ------------------------------------------------------------------------

    def sent_payload(self, request: SpeechRequest) -> dict:
        return {
            "voice_id": request.voice_id,
            "text": request.text,
            "model_id": self.model_id,
            "output_format": OUTPUT_FORMAT,
        }

    def synthesize(self, request: SpeechRequest) -> tuple[Speech, dict]:
        payload = self.sent_payload(request)
        response = send_once(
            self.http,
            "POST",
            self._url(f"/text-to-speech/{request.voice_id}"),
            params={"output_format": OUTPUT_FORMAT},
            headers={**self._headers(), "Accept": "audio/mpeg"},
            json={"text": request.text, "model_id": self.model_id},
        )
        self._answer(response)
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if not content_type.startswith("audio/"):
            raise ProviderError(
                "unavailable",
                f"{self.label} answered with {content_type or 'no content type'}, not audio.",
            )
        audio = response.content
        cap = self.max_result_bytes
        if cap is not None and len(audio) > cap:
            raise self.result_too_large(len(audio), cap)
        cost = response.headers.get("character-cost", "").strip()
        speech = Speech(
            audio=audio,
            content_type=content_type,
            item_id=response.headers.get("history-item-id", ""),
            request_id=response.headers.get("request-id", ""),
            credits=Decimal(cost) if cost.isdigit() else None,
        )
        return speech, payload

    # --- History --------------------------------------------------------------------------

    def speech_history(self, *, since: int, voice_id: str = "") -> list[SpeechItem]:
        found: list[SpeechItem] = []
        after = ""
        for _ in range(HISTORY_PAGES):
            params: dict[str, str | int] = {"page_size": HISTORY_PAGE, "date_after_unix": since}
            if voice_id:
                params["voice_id"] = voice_id
            if after:
                params["start_after_history_item_id"] = after
            response = send_once(
                self.http,
                "GET",
                self._url("/history"),
                headers=self._headers(),
                params=params,
                safe=True,
            )
            body = self._json(response)
            for item in body.get("history") or []:
                if not isinstance(item, dict):
                    continue
                if int(item.get("date_unix") or 0) < since:
                    return found
                found.append(self._history_item(item))
            after = str(body.get("last_history_item_id") or "")
            if not body.get("has_more") or not after:
                break
        return found

    @staticmethod
    def _history_item(item: dict) -> SpeechItem:
        before = item.get("character_count_change_from")
        after = item.get("character_count_change_to")
        credits = None
        if isinstance(before, int) and isinstance(after, int):
            credits = Decimal(max(0, after - before))
        return SpeechItem(
            item_id=str(item.get("history_item_id") or ""),
            voice_id=str(item.get("voice_id") or ""),
            text=str(item.get("text") or ""),
            created_at=int(item.get("date_unix") or 0),
            content_type=str(item.get("content_type") or "audio/mpeg"),
            credits=credits,
            request_id=str(item.get("request_id") or ""),
        )

    def history_audio(self, item_id: str) -> bytes:
        response = send_once(
            self.http,
            "GET",
            self._url(f"/history/{item_id}/audio"),
            headers=self._headers(),
            safe=True,
        )
        self._answer(response)
        cap = self.max_result_bytes
        if cap is not None and len(response.content) > cap:
            raise self.result_too_large(len(response.content), cap)
        return response.content

    # --- Errors ---------------------------------------------------------------------------

    def _json(self, response: httpx.Response) -> dict:
        self._answer(response)
        body = classify_response(response, provider=self.label)
        if not isinstance(body, dict):
            raise ProviderError("unavailable", f"{self.label} answered with something unexpected.")
        return body

    def _answer(self, response: httpx.Response) -> None:
        """Nothing for a success; a ProviderError in ElevenLabs' words for an error."""
        if response.status_code < 400:
            return
        status, message = _detail(response)
        try:
            classify_response(response, provider=self.label)
        except ProviderError as error:
            raise self._reworded(error, status, message) from error

    def _reworded(self, error: ProviderError, status: str, message: str) -> ProviderError:
        kind = error.kind
        detail = message or error.message
        if status == "quota_exceeded":
            kind, words = "quota", f"{self.label} is out of credits: {detail}"
        elif status in _RATE_LIMITS:
            kind, words = "rate_limit", f"{self.label} is busy ({status}): {detail}"
        elif status in _NO_VOICE:
            kind, words = "not_found", f"{self.label} has no such voice: {detail}"
        elif kind == "auth":
            words = f"{self.label} refused the API key: {detail}"
        elif kind == "rate_limit":
            words = f"{self.label} is rate limiting: {detail}"
        elif kind in ("invalid", "not_found"):
            words = f"{self.label} refused the request: {detail}"
        else:
            words = f"{self.label} is having trouble (HTTP {error.status_code}): {detail}"
        return ProviderError(
            kind,
            words,
            retry_after=error.retry_after,
            status_code=error.status_code,
            code=status or error.code,
            maybe_accepted=error.maybe_accepted,
        )
