"""The interface of a provider that speaks (text to speech), and the values it speaks in.

A speech provider is a Provider like the others (one registry, ADAPTERS, keyed by kind),
whose capabilities say `output="speech"`: it takes speech jobs only, so the video calls
refuse plainly, and it adds voices, synthesis and a history of what it made (to find a
synthesis whose answer was lost, instead of paying for it twice).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from jobs.providers.base import (
    CharacterSource,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderJob,
    RegisteredCharacter,
    SentRequest,
    shown_briefly,
)


@dataclass(frozen=True)
class VoiceInfo:
    """One of the provider's voices: its id, its name, what kind of voice it is (ElevenLabs:
    premade, cloned, generated, professional), where to hear it, and when it was made."""

    voice_id: str
    name: str
    category: str = ""
    preview_url: str = ""
    created_at: int | None = None


@dataclass(frozen=True)
class VoiceSample:
    """A short recording a voice is made from."""

    name: str
    data: bytes
    filename: str = "sample.mp3"
    content_type: str = "audio/mpeg"


@dataclass(frozen=True)
class SpeechRequest:
    """Words to speak, in one of the provider's voices."""

    text: str
    voice_id: str


@dataclass(frozen=True)
class Speech:
    """Audio the provider made, and what it said about it: where it keeps it (ElevenLabs'
    history item), the request's id, and what it cost in its pricing unit (credits)."""

    audio: bytes
    content_type: str
    item_id: str = ""
    request_id: str = ""
    credits: Decimal | None = None


@dataclass(frozen=True)
class SpeechItem:
    """A synthesis as the provider's history lists it."""

    item_id: str
    voice_id: str
    text: str
    created_at: int
    content_type: str = "audio/mpeg"
    credits: Decimal | None = None
    request_id: str = ""


class SpeechProvider(Provider):
    """A provider that speaks words in a voice. It makes no video: asked for one, it says so."""

    @property
    def makes_no_video(self) -> str:
        return f"{self.label} makes speech, not video."

    def _no_video(self) -> ProviderError:
        return ProviderError("invalid", self.makes_no_video, code="speech_only")

    # --- The video calls: refused ---------------------------------------------------------

    def register_character(self, source: CharacterSource) -> RegisteredCharacter:
        raise self._no_video()

    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        return self._render(prompt, mentions, lambda character: character.name)

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        raise self._no_video()

    def fetch(self, provider_job_id: str) -> ProviderJob:
        raise self._no_video()

    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        raise self._no_video()

    def validate(self, request: GenerationRequest) -> list[str]:
        return [self.makes_no_video]

    # --- Speech -------------------------------------------------------------------------------

    @abc.abstractmethod
    def list_voices(self) -> list[VoiceInfo]:
        """Every voice the account can speak in (free: nothing is made)."""

    @abc.abstractmethod
    def add_voice(self, sample: VoiceSample) -> VoiceInfo:
        """Make a voice from a short sample, once; the pipeline registers it (Registration)."""

    def find_voice(self, *, name: str, since: int) -> VoiceInfo | None:
        """The newest voice called `name` made since a unix time (after an add whose answer
        was lost), where the provider says when its voices were made."""
        found = [
            v
            for v in self.list_voices()
            if v.name == name and v.created_at is not None and v.created_at >= since
        ]
        return max(found, key=lambda v: v.created_at or 0) if found else None

    @abc.abstractmethod
    def sent_payload(self, request: SpeechRequest) -> dict:
        """What synthesize() will send for the request, as the job records it before sending."""

    @abc.abstractmethod
    def synthesize(self, request: SpeechRequest) -> tuple[Speech, dict]:
        """Speak the words, once; return the audio and the payload as sent (for the record).
        A failure after the request may have arrived is flagged `maybe_accepted`."""

    @abc.abstractmethod
    def speech_history(self, *, since: int, voice_id: str = "") -> list[SpeechItem]:
        """What the account has spoken since a unix time (reconciliation), newest first."""

    @abc.abstractmethod
    def history_audio(self, item_id: str) -> bytes:
        """The audio of a synthesis in the history."""

    def is_sent_speech(self, item: SpeechItem, sent: Mapping[str, object]) -> bool:
        """Whether a history item is the synthesis recorded as `sent` (its words and voice)."""
        return item.text == sent.get("text") and item.voice_id == sent.get("voice_id")

    @abc.abstractmethod
    def credits_for(self, text: str) -> Decimal:
        """What speaking `text` will cost, in the pricing unit, before it is spoken."""

    def speech_problems(self, text: str) -> list[str]:
        """Plain reasons this provider cannot speak the words (empty when it can)."""
        return [] if text.strip() else ["There are no words to speak."]

    @classmethod
    def describe_sent(cls, payload: Mapping[str, object]) -> SentRequest:
        """A synthesis as sent: the words, then the voice, model and format."""
        return SentRequest(
            prompt=str(payload.get("text") or ""),
            inputs=tuple(
                f"{key}: {shown_briefly(value)}" for key, value in payload.items() if key != "text"
            ),
        )

    def usage_estimate(self, *, seconds: int, size: str) -> Decimal:
        raise self._no_video()
