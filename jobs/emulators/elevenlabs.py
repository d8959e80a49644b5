"""ElevenLabs text to speech under /v1, as its API and official SDK speak it.

The key comes in `xi-api-key`. Voices: four of ElevenLabs' premade voices (their real ids)
and instant clones made by `POST /v1/voices/add` from samples that must decode as audio.
Synthesis (`POST /v1/text-to-speech/{voice_id}`) answers with real MP3 (or PCM) audio whose
length follows the text (about 14 characters a second) in the voice's own pitch, with the
`character-cost`, `request-id` and `history-item-id` headers; each one is kept in the
history (`GET /v1/history`, `GET /v1/history/{id}/audio`), which is how a client finds a
synthesis whose answer it lost.

Errors are ElevenLabs' `{"detail": {"status": ..., "message": ...}}`, and a malformed body
FastAPI's 422 `{"detail": [{"loc", "msg", "type"}]}`. Out of credits is a 401
`quota_exceeded`; more syntheses at once than the plan allows, a 429
`too_many_concurrent_requests`.
"""

from __future__ import annotations

import json
import math
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any

from jobs.emulators.base import Emulator
from jobs.emulators.inputs import probe_audio
from jobs.emulators.speech import Tone, encode_mp3, encode_pcm, estimate_pitch, speak
from jobs.emulators.state import Once, Store
from jobs.emulators.wsgi import (
    ApiError,
    Request,
    Response,
    Router,
    UploadedFile,
    bytes_response,
    json_response,
)

# model id -> (the most characters one request speaks, credits per character)
MODELS = {
    "eleven_multilingual_v2": (5_000, 1.0),
    "eleven_v3": (5_000, 1.0),
    "eleven_flash_v2_5": (40_000, 0.5),
    "eleven_turbo_v2_5": (40_000, 0.5),
}
DEFAULT_MODEL = "eleven_multilingual_v2"
OUTPUT_FORMATS = (
    "mp3_22050_32",
    "mp3_44100_32",
    "mp3_44100_64",
    "mp3_44100_96",
    "mp3_44100_128",
    "mp3_44100_192",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_44100",
)
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"
SYNTHESIS_FIELDS = frozenset(
    {
        "text",
        "model_id",
        "language_code",
        "voice_settings",
        "pronunciation_dictionary_locators",
        "seed",
        "previous_text",
        "next_text",
        "previous_request_ids",
        "next_request_ids",
        "use_pvc_as_ivc",
        "apply_text_normalization",
        "apply_language_text_normalization",
    }
)
# voice_settings field -> (low, high), or None for a boolean
VOICE_SETTINGS = {
    "stability": (0.0, 1.0),
    "similarity_boost": (0.0, 1.0),
    "style": (0.0, 1.0),
    "speed": (0.7, 1.2),
    "use_speaker_boost": None,
}
CONCURRENT_SYNTHESES = 5  # the Creator plan's concurrency
CREDIT_QUOTA = 10_000_000  # far beyond any test; a "quota" fault runs out sooner
MAX_SAMPLE_BYTES = 11 * 1024 * 1024
MAX_SAMPLES = 25
MIN_SAMPLE_SECONDS = 0.5
HISTORY_PAGE_MAX = 1000

# ElevenLabs' premade voices, by their real ids: (name, labels, tone).
PREMADE = {
    "21m00Tcm4TlvDq8ikWAM": (
        "Rachel",
        {"accent": "american", "description": "calm", "age": "young", "gender": "female"},
        Tone(pitch=205, formants=1.17, brightness=0.9),
    ),
    "EXAVITQu4vr4xnSDxMaL": (
        "Sarah",
        {"accent": "american", "description": "soft", "age": "young", "gender": "female"},
        Tone(pitch=228, formants=1.2, brightness=1.1),
    ),
    "pNInz6obpgDQGcFmaJgB": (
        "Adam",
        {"accent": "american", "description": "deep", "age": "middle aged", "gender": "male"},
        Tone(pitch=102, formants=1.0, brightness=0.8),
    ),
    "ErXwobaYiN019PkySvjV": (
        "Antoni",
        {"accent": "american", "description": "well-rounded", "age": "young", "gender": "male"},
        Tone(pitch=128, formants=1.04, brightness=1.0),
    ),
}


class Invalid(ApiError):
    """FastAPI's 422: a list of field errors."""

    def __init__(self, *errors: dict[str, Any]) -> None:
        super().__init__(422, "; ".join(e["msg"] for e in errors))
        self.detail = list(errors)


def _field_error(where: list[str | int], message: str, kind: str, value: Any = None) -> Invalid:
    error: dict[str, Any] = {"type": kind, "loc": where, "msg": message}
    if value is not None:
        error["input"] = value
    return Invalid(error)


def _refused(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, message, code=code)


def _new_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(20))


@dataclass
class Voice:
    voice_id: str
    name: str
    category: str
    tone: Tone
    labels: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    created_at: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    preview: Once[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.preview = Once(
            lambda: encode_mp3(speak(f"Hello, my name is {self.name}.", self.tone), kbps=64)
        )

    def resource(self, host: str) -> dict[str, Any]:
        """The SDK's Voice fields (those an emulator can say something true about)."""
        cloned = self.category == "cloned"
        return {
            "voice_id": self.voice_id,
            "name": self.name,
            "samples": self.samples if cloned else None,
            "category": self.category,
            "fine_tuning": {"is_allowed_to_fine_tune": cloned, "state": {}},
            "labels": dict(self.labels),
            "description": self.description,
            "preview_url": f"http://{host}/previews/{self.voice_id}.mp3",
            "available_for_tiers": [],
            "settings": None,
            "sharing": None,
            "high_quality_base_model_ids": list(MODELS),
            "verified_languages": [],
            "safety_control": None,
            "voice_verification": {
                "requires_verification": False,
                "is_verified": False,
                "verification_failures": [],
                "verification_attempts_count": 0,
            },
            "permission_on_resource": "admin" if cloned else None,
            "is_owner": cloned,
            "is_legacy": False,
            "is_mixed": False,
            "created_at_unix": self.created_at,
        }


@dataclass(frozen=True)
class HistoryItem:
    history_item_id: str
    request_id: str
    seq: int
    voice: Voice
    model_id: str
    text: str
    date_unix: int
    count_from: int
    count_to: int
    content_type: str
    output_format: str
    settings: dict[str, Any]
    audio: bytes = field(repr=False)

    def resource(self) -> dict[str, Any]:
        return {
            "history_item_id": self.history_item_id,
            "request_id": self.request_id,
            "voice_id": self.voice.voice_id,
            "model_id": self.model_id,
            "voice_name": self.voice.name,
            "voice_category": self.voice.category,
            "text": self.text,
            "date_unix": self.date_unix,
            "character_count_change_from": self.count_from,
            "character_count_change_to": self.count_to,
            "content_type": self.content_type,
            "state": "created",
            "settings": self.settings,
            "feedback": None,
            "share_link_id": None,
            "source": "TTS",
            "alignments": None,
            "dialogue": None,
            "output_format": self.output_format,
        }


class ElevenLabsEmulator(Emulator):
    name = "elevenlabs"
    api_prefix = "/v1"

    def __init__(self, **config: Any) -> None:
        self.voices: Store[Voice] = Store()
        self.history: Store[HistoryItem] = Store()
        self._lock = threading.Lock()
        self._seq = 0
        self._credits_used = 0
        self._speaking = threading.BoundedSemaphore(CONCURRENT_SYNTHESES)
        super().__init__(**config)
        self._add_premade()

    def _add_premade(self) -> None:
        for voice_id, (name, labels, tone) in PREMADE.items():
            self.voices.add(voice_id, Voice(voice_id, name, "premade", tone, labels=labels))

    # --- Emulator hooks ---------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        p = self.api_prefix
        router.add("GET", f"{p}/voices", self.list_voices, op="retrieve")
        router.add("POST", f"{p}/voices/add", self.add_voice, op="character")
        router.add("GET", f"{p}/voices/{{voice_id}}", self.get_voice, op="retrieve")
        router.add("POST", f"{p}/text-to-speech/{{voice_id}}", self.synthesize, op="create")
        router.add("GET", f"{p}/history", self.list_history, op="list")
        router.add("GET", f"{p}/history/{{item_id}}", self.get_history_item, op="retrieve")
        router.add("GET", f"{p}/history/{{item_id}}/audio", self.history_audio, op="content")
        router.add("GET", "/previews/{voice_id}.mp3", self.preview, op="preview", public=True)

    def credential(self, request: Request) -> str | None:
        key = request.headers.get("xi-api-key", "").strip()
        return key or None

    def render_error(self, error: ApiError) -> Response:
        if isinstance(error, Invalid):
            body: Any = {"detail": error.detail}
        elif error.code:
            body = {"detail": {"status": error.code, "message": error.message}}
        else:
            body = {"detail": error.message}
        return json_response(body, error.status, headers=error.headers)

    def standard_error(self, kind: str, *, retry_after: float | None = None) -> ApiError:
        if kind == "unauthorized":
            return _refused(
                401,
                "needs_authorization",
                "Neither authorization header nor xi-api-key received, please provide one.",
            )
        if kind == "invalid_api_key":
            return _refused(401, "invalid_api_key", "Invalid API key")
        if kind == "rate_limit":
            return _refused(
                429,
                "too_many_concurrent_requests",
                "Too many concurrent requests. Your current subscription is associated with a "
                f"maximum of {CONCURRENT_SYNTHESES} concurrent requests.",
            )
        if kind == "quota":
            return _refused(
                401,
                "quota_exceeded",
                "This request exceeds your quota. You have 0 credits remaining, while more "
                "credits are required for this request.",
            )
        if kind == "unavailable":
            return _refused(503, "service_unavailable", "The service is temporarily unavailable.")
        if kind == "moderation":
            return _refused(
                400,
                "content_moderation_blocked",
                "This request was blocked by our content moderation.",
            )
        if kind == "not_found_route":
            return ApiError(404, "Not Found")
        return _refused(500, "internal_server_error", "An internal server error occurred.")

    def clear_data(self) -> None:
        self.voices.clear()
        self.history.clear()
        with self._lock:
            self._seq = 0
            self._credits_used = 0
        self._add_premade()

    def extra_state(self) -> dict[str, Any]:
        return {
            "voices": len(self.voices),
            "cloned_voices": sum(1 for v in self.voices.values() if v.category == "cloned"),
            "syntheses": len(self.history),
            "credits_used": self._credits_used,
        }

    # --- Voices -------------------------------------------------------------------------------

    def list_voices(self, request: Request) -> Response:
        voices = sorted(self.voices.values(), key=lambda v: (v.category != "premade", v.name))
        return json_response({"voices": [v.resource(request.host) for v in voices]})

    def get_voice(self, request: Request) -> Response:
        return json_response(self._voice(request.params["voice_id"]).resource(request.host))

    def add_voice(self, request: Request) -> Response:
        if request.mime_type != "multipart/form-data":
            raise _field_error(
                ["body", "name"], "Field required (send multipart/form-data)", "missing"
            )
        payload = request.payload()
        name = payload.get("name")
        files = payload.get("files")
        if isinstance(files, UploadedFile):
            files = [files]
        errors = []
        if not isinstance(name, str) or not name.strip():
            errors.append({"type": "missing", "loc": ["body", "name"], "msg": "Field required"})
        if not files:
            errors.append({"type": "missing", "loc": ["body", "files"], "msg": "Field required"})
        elif not all(isinstance(f, UploadedFile) for f in files):
            errors.append(
                {"type": "value_error", "loc": ["body", "files"], "msg": "Expected UploadFile"}
            )
        if errors:
            raise Invalid(*errors)
        labels = payload.get("labels")
        if labels not in (None, "", "null"):
            try:
                labels = json.loads(labels) if isinstance(labels, str) else labels
            except ValueError:
                labels = None
            if not isinstance(labels, dict):
                raise _field_error(
                    ["body", "labels"], "Labels must be a JSON object", "value_error"
                )
        if len(files) > MAX_SAMPLES:
            raise _refused(
                400, "too_many_samples", f"At most {MAX_SAMPLES} samples can be uploaded."
            )
        if request.forced_moderation:
            raise self.standard_error("moderation")
        samples, pitches, seconds = [], [], 0.0
        for upload in files:
            if len(upload.data) > MAX_SAMPLE_BYTES:
                raise _refused(
                    400,
                    "sample_too_large",
                    f"The file '{upload.filename}' is larger than "
                    f"{MAX_SAMPLE_BYTES // (1024 * 1024)} MB.",
                )
            try:
                probe = probe_audio(upload.data)
            except ValueError as exc:
                raise _refused(
                    400,
                    "invalid_audio_file",
                    f"The file '{upload.filename}' could not be read as audio: {exc}",
                ) from exc
            seconds += probe.seconds
            pitch = estimate_pitch(probe.samples, probe.rate)
            if pitch is not None:
                pitches.append(pitch)
            samples.append(
                {
                    "sample_id": _new_id(),
                    "file_name": upload.filename,
                    "mime_type": upload.content_type or "audio/mpeg",
                    "size_bytes": len(upload.data),
                    "hash": secrets.token_hex(16),
                    "duration_secs": round(probe.seconds, 2),
                }
            )
        if seconds < MIN_SAMPLE_SECONDS:
            raise _refused(
                400,
                "sample_too_short",
                f"The samples last {seconds:.1f} s; a voice needs at least "
                f"{MIN_SAMPLE_SECONDS:g} s of speech.",
            )
        heard = sorted(pitches)[len(pitches) // 2] if pitches else None
        voice = Voice(
            voice_id=_new_id(),
            name=str(name).strip(),
            category="cloned",
            tone=Tone.from_seed(b"".join(f.data for f in files), pitch=heard),
            labels=labels if isinstance(labels, dict) else {},
            description=payload.get("description") or None,
            created_at=int(self.clock.now()),
            samples=samples,
        )
        self.voices.add(voice.voice_id, voice)
        return json_response({"voice_id": voice.voice_id, "requires_verification": False})

    def preview(self, request: Request) -> Response:
        voice = self._voice(request.params["voice_id"])
        return bytes_response(voice.preview.get(), "audio/mpeg")

    def _voice(self, voice_id: str) -> Voice:
        voice = self.voices.get(voice_id)
        if voice is None:
            raise _refused(
                404, "voice_not_found", f"A voice with the voice_id {voice_id} was not found."
            )
        return voice

    # --- Synthesis ----------------------------------------------------------------------------

    def synthesize(self, request: Request) -> Response:
        output_format = request.query.get("output_format", DEFAULT_OUTPUT_FORMAT)
        if output_format not in OUTPUT_FORMATS:
            raise _field_error(
                ["query", "output_format"],
                f"Input should be {', '.join(repr(f) for f in OUTPUT_FORMATS)}",
                "enum",
                output_format,
            )
        body = self._json_body(request)
        unknown = sorted(set(body) - SYNTHESIS_FIELDS)
        if unknown:
            raise Invalid(
                *(
                    {
                        "type": "extra_forbidden",
                        "loc": ["body", k],
                        "msg": "Extra inputs are not permitted",
                    }
                    for k in unknown
                )
            )
        text = body.get("text")
        if "text" not in body:
            raise _field_error(["body", "text"], "Field required", "missing")
        if not isinstance(text, str):
            raise _field_error(["body", "text"], "Input should be a valid string", "string_type")
        if not text:
            raise _field_error(
                ["body", "text"], "String should have at least 1 character", "string_too_short"
            )
        model_id = body.get("model_id") or DEFAULT_MODEL
        if not isinstance(model_id, str) or model_id not in MODELS:
            raise _refused(
                400, "model_not_found", f"A model with model ID {model_id} does not exist."
            )
        speed = self._speed(body.get("voice_settings"))
        voice = self._voice(request.params["voice_id"])
        if not text.strip():
            raise _refused(400, "empty_text", "The text is empty: there is nothing to speak.")
        most, per_character = MODELS[model_id]
        if len(text) > most:
            raise _refused(
                400,
                "max_character_limit_exceeded",
                f"You are sending {len(text)} characters; {model_id} takes at most {most} "
                "characters per request.",
            )
        cost = math.ceil(len(text) * per_character)
        with self._lock:
            if self._credits_used + cost > CREDIT_QUOTA:
                left = CREDIT_QUOTA - self._credits_used
                raise _refused(
                    401,
                    "quota_exceeded",
                    f"This request exceeds your quota of {CREDIT_QUOTA}. You have {left} "
                    f"credits remaining, while {cost} credits are required for this request.",
                )
        if request.forced_moderation:
            raise self.standard_error("moderation")
        if not self._speaking.acquire(blocking=False):
            raise self.standard_error("rate_limit")
        try:
            # A real synthesis takes a moment; the emulator's latency setting scales it.
            self.stopping.wait(min(self.config.latency_seconds, 6.0) / 10)
            audio, content_type = self._audio(text, voice.tone, speed, output_format)
        finally:
            self._speaking.release()
        item = self._remember(voice, model_id, text, cost, audio, content_type, output_format)
        headers = [
            ("character-cost", str(cost)),
            ("request-id", item.request_id),
            ("history-item-id", item.history_item_id),
        ]
        return Response(
            status=200,
            body=audio,
            content_type=content_type,
            headers=headers,
            job_id=item.history_item_id,
        )

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        if request.mime_type != "application/json":
            raise _field_error(
                ["body"], "Input should be a valid dictionary (send application/json)", "dict_type"
            )
        try:
            data = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise _field_error(["body", 0], "JSON decode error", "json_invalid") from exc
        if not isinstance(data, dict):
            raise _field_error(["body"], "Input should be a valid dictionary", "dict_type")
        return data

    @staticmethod
    def _speed(settings: Any) -> float:
        """voice_settings checked as ElevenLabs' schema does; its speed (1.0 if unset)."""
        if settings is None:
            return 1.0
        if not isinstance(settings, dict):
            raise _field_error(
                ["body", "voice_settings"], "Input should be a valid dictionary", "dict_type"
            )
        for key, value in settings.items():
            where: list[str | int] = ["body", "voice_settings", key]
            if key not in VOICE_SETTINGS:
                raise _field_error(where, "Extra inputs are not permitted", "extra_forbidden")
            bounds = VOICE_SETTINGS[key]
            if value is None:
                continue
            if bounds is None:
                if not isinstance(value, bool):
                    raise _field_error(where, "Input should be a valid boolean", "bool_type")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _field_error(where, "Input should be a valid number", "float_type")
            low, high = bounds
            if not low <= value <= high:
                raise _field_error(
                    where,
                    f"Input should be between {low} and {high}",
                    "less_than_equal" if value > high else "greater_than_equal",
                    value,
                )
        speed = settings.get("speed")
        return float(speed) if isinstance(speed, int | float) else 1.0

    @staticmethod
    def _audio(text: str, tone: Tone, speed: float, output_format: str) -> tuple[bytes, str]:
        samples = speak(text, tone, speed=speed)
        codec, rate, *rest = output_format.split("_")
        if codec == "pcm":
            return encode_pcm(samples, rate=int(rate)), "audio/pcm"
        return encode_mp3(samples, rate=int(rate), kbps=int(rest[0])), "audio/mpeg"

    def _remember(
        self,
        voice: Voice,
        model_id: str,
        text: str,
        cost: int,
        audio: bytes,
        content_type: str,
        output_format: str,
    ) -> HistoryItem:
        with self._lock:
            self._seq += 1
            before = self._credits_used
            self._credits_used += cost
            item = HistoryItem(
                history_item_id=_new_id(),
                request_id=_new_id(),
                seq=self._seq,
                voice=voice,
                model_id=model_id,
                text=text,
                date_unix=int(self.clock.now()),
                count_from=before,
                count_to=before + cost,
                content_type=content_type,
                output_format=output_format,
                settings={},
                audio=audio,
            )
        return self.history.add(item.history_item_id, item)

    # --- History ------------------------------------------------------------------------------

    def list_history(self, request: Request) -> Response:
        query = request.query
        size_text = query.get("page_size", "100")
        if not size_text.isdigit() or not 1 <= int(size_text) <= HISTORY_PAGE_MAX:
            raise _field_error(
                ["query", "page_size"],
                f"Input should be less than or equal to {HISTORY_PAGE_MAX}",
                "less_than_equal",
                size_text,
            )
        direction = query.get("sort_direction", "desc")
        if direction not in ("asc", "desc"):
            raise _field_error(
                ["query", "sort_direction"], "Input should be 'asc' or 'desc'", "enum", direction
            )
        bounds = {}
        for key in ("date_after_unix", "date_before_unix"):
            if key in query:
                if not query[key].lstrip("-").isdigit():
                    raise _field_error(
                        ["query", key], "Input should be a valid integer", "int_parsing", query[key]
                    )
                bounds[key] = int(query[key])
        items = sorted(
            self.history.values(), key=lambda i: (i.date_unix, i.seq), reverse=direction == "desc"
        )
        if query.get("voice_id"):
            items = [i for i in items if i.voice.voice_id == query["voice_id"]]
        if query.get("model_id"):
            items = [i for i in items if i.model_id == query["model_id"]]
        if "date_after_unix" in bounds:
            items = [i for i in items if i.date_unix >= bounds["date_after_unix"]]
        if "date_before_unix" in bounds:
            items = [i for i in items if i.date_unix < bounds["date_before_unix"]]
        if query.get("search"):
            needle = query["search"].lower()
            items = [i for i in items if needle in i.text.lower()]
        after = query.get("start_after_history_item_id")
        if after:
            ids = [i.history_item_id for i in items]
            if after not in ids:
                raise _refused(
                    400,
                    "invalid_history_item_id",
                    f"The history item {after} does not exist.",
                )
            items = items[ids.index(after) + 1 :]
        page = items[: int(size_text)]
        return json_response(
            {
                "history": [i.resource() for i in page],
                "last_history_item_id": page[-1].history_item_id if page else None,
                "has_more": len(items) > len(page),
                "scanned_until": page[-1].date_unix if page else None,
            }
        )

    def get_history_item(self, request: Request) -> Response:
        return json_response(self._item(request.params["item_id"]).resource())

    def history_audio(self, request: Request) -> Response:
        item = self._item(request.params["item_id"])
        return bytes_response(item.audio, item.content_type)

    def _item(self, item_id: str) -> HistoryItem:
        item = self.history.get(item_id)
        if item is None:
            raise _refused(
                404,
                "history_item_not_found",
                f"A history item with the id {item_id} was not found.",
            )
        return item
