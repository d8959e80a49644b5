"""The one interface every provider adapter implements, and the values it speaks in."""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, Literal

import httpx

from jobs.netguard import AddressRefused
from jobs.providers.errors import ErrorKind, ProviderError, WebhookRejected
from jobs.providers.http import classify_response
from jobs.providers.transport import guarded_client

__all__ = ["ErrorKind", "ProviderError", "WebhookRejected"]  # where adapters have read them

# Where a compiled prompt names a character, e.g. {{character:12}} (or a later version of it,
# {{character:12:v3}}).
PLACEHOLDER = re.compile(r"\{\{([a-z_]+:\d+(?::v\d+)?)\}\}")

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
PricingUnit = Literal["second", "request", "token", "credit"]
# What a provider makes: videos, or speech (words spoken in a voice, as audio).
Output = Literal["video", "speech"]


@dataclass(frozen=True)
class Capabilities:
    """What a provider can make and how it names characters; routing and validation read this."""

    native_characters: bool
    # How a prompt names a character: "name" (plain name plus an id list), "@id",
    # "<<<element_n>>>", "@tag", "image n", or "plain" (description only).
    mention_syntax: str
    durations: tuple[int, ...]
    sizes: tuple[str, ...]
    max_characters: int
    max_references: int  # reference images per request
    pricing_unit: PricingUnit  # token-priced providers (Seedance) override usage_estimate()
    price: Decimal  # list price per unit; the price book (jobs.prices) may say otherwise
    character_price: Decimal = Decimal("0")
    webhooks: bool = False
    remix: bool = False
    # Lengths of the segment an extension adds (the result is the stitched total).
    extend_seconds: tuple[int, ...] = ()
    # A character is made from a clip of this many seconds (min, max), or None.
    character_clip_seconds: tuple[float, float] | None = None
    # A character is made from up to this many pictures (Kling's image elements), or 0.
    character_images: int = 0
    # The provider can take a character straight from one of its finished jobs.
    character_from_job: bool = False
    can_list_jobs: bool = False
    # The list shows every create the account made, at once: a create it does not show
    # never arrived, so it may be sent again (after a crash or a 500 on the create).
    list_is_authoritative: bool = False
    can_cancel: bool = False
    result_variants: tuple[str, ...] = ("video",)
    # Reference clips per request (Seedance: up to 3) and how long each may be.
    max_reference_clips: int = 0
    reference_clip_seconds: tuple[float, float] | None = None
    # The provider takes a callback address with each create (Kling's callback_url, fal's
    # fal_webhook, Gemini's webhook_config) instead of one set in its dashboard.
    callback_per_request: bool = False
    # The provider speaks as well as it films (dialogue goes in the prompt).
    audio: bool = False
    # Which given pictures a video can start from or end on ("first", "last"): sent as
    # references with the role "first_frame" / "last_frame".
    frames: tuple[str, ...] = ()
    # What it makes: a speech provider (jobs.providers.speech) takes speech jobs only, a
    # video provider every other kind; routing never offers one for the other's work.
    output: Output = "video"
    # A speech provider makes a voice from a short sample (ElevenLabs' instant clones).
    voice_samples: bool = False
    # Its status says how far along a job is (Sora's and Runway's `progress`); one that
    # says nothing until done (Seedance, Veo, Kling, fal) gets an estimate from the
    # account's recent jobs instead (jobs.estimates).
    reports_progress: bool = False


@dataclass(frozen=True)
class Reference:
    """An input that shows the model something: an image, a clip or audio, as bytes or a URL.

    `name` is how the prompt refers to it where the provider names references
    (Runway's @tag, Omni Flash's block name, Kling's <<<image_1>>>); `role` is the
    provider's word for its use (Veo "asset"/"style", Seedance "reference_image").
    """

    kind: Literal["image", "video", "audio"]
    data: bytes | None = None
    url: str | None = None
    content_type: str = ""
    name: str = ""
    role: str = ""


@dataclass(frozen=True)
class CharacterSource:
    """What a provider needs to register a character: a clip (bytes or URL), images, or a job."""

    name: str
    description: str = ""
    clip: bytes | None = None
    clip_url: str | None = None
    images: tuple[Reference, ...] = ()  # for providers that build characters from pictures
    from_provider_job_id: str | None = None


@dataclass(frozen=True)
class RegisteredCharacter:
    external_id: str
    name: str


@dataclass(frozen=True)
class GenerationRequest:
    """A compiled request: mentions already in the provider's syntax."""

    prompt: str
    seconds: int
    size: str
    character_ids: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    kind: str = "generate"  # generate | remix | extend
    source_provider_job_id: str = ""
    # Where the provider should report completion, for providers that take one per request
    # (Capabilities.callback_per_request); empty: poll.
    callback_url: str = ""


@dataclass(frozen=True)
class ProviderJob:
    """A provider's view of a job, normalised."""

    provider_job_id: str
    status: Status
    progress: int = 0
    error_code: str = ""
    error_message: str = ""
    poll_after: float | None = None  # seconds the provider asks us to wait
    video_url: str = ""
    prompt: str = ""
    created_at: int | None = None
    # What the provider says it billed, in its pricing unit (Seedance: tokens), if it says.
    usage: Decimal | None = None
    raw: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SentRequest:
    """What went to a provider, in its own words: the prompt it read, and each other thing
    the request carried (its model, length, size, characters, references), one per line."""

    prompt: str
    inputs: tuple[str, ...] = ()


def shown_briefly(value: object, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class WebhookNotice:
    event_id: str
    event_type: str
    provider_job_id: str
    payload: Mapping[str, object]


def _in_words(size: int) -> str:
    """A byte count as people read it: "78.1 KB", "1.2 GB"."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} bytes"


# Every adapter, by its kind: filled in as adapter modules are imported (jobs.providers).
ADAPTERS: dict[str, type[Provider]] = {}


class Provider(abc.ABC):
    """One provider's wire protocol. Adapters never retry creates by themselves.

    A subclass that declares a `kind` registers itself in ADAPTERS; nothing else needs
    to know the list.
    """

    kind: ClassVar[str]
    capabilities: Capabilities  # the class declares it; an instance has its model's
    # The provider's own address, which an account without a base URL gets ("": none, as
    # for a gateway, a reseller or a Vertex project, whose address is the user's own).
    official_base_url: ClassVar[str] = ""

    @classmethod
    def capabilities_for(cls, model: str) -> Capabilities:
        """What this provider can make with `model`. One adapter, one set, by default; an
        aggregator (fal.ai) reads its hosted model's row instead."""
        return cls.capabilities

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind:
            if kind in ADAPTERS and ADAPTERS[kind] is not cls:
                raise TypeError(f"Two adapters declare the kind {kind!r}.")
            ADAPTERS[kind] = cls

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str = "",
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        max_result_bytes: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.capabilities = self.capabilities_for(model)
        # The largest result we take: a declared size above it is refused before reading.
        self.max_result_bytes = max_result_bytes
        self._owns_http = http is None
        self.http = http or guarded_client(timeout)

    # --- Shared plumbing ----------------------------------------------------

    def _headers(self) -> dict[str, str]:
        """Bearer auth, which every adapter here uses (Kling-style JWTs override this)."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _render(self, prompt: str, mentions: Mapping[str, RegisteredCharacter], as_text) -> str:
        """Replace each `{{subject}}` placeholder with `as_text(character)`; unknown ones stay."""
        return PLACEHOLDER.sub(
            lambda m: as_text(mentions[m.group(1)]) if m.group(1) in mentions else m.group(0),
            prompt,
        )

    def _stream(self, url: str, **kwargs) -> Iterator[bytes]:
        """GET `url` and yield its body as it arrives; errors are classified like any answer.

        Chunks are whatever each read brings (not gathered into fixed sizes), so a caller
        that watches the time sees a server that trickles bytes.
        """
        try:
            with self.http.stream("GET", url, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    classify_response(response, provider=self.label)
                declared = response.headers.get("content-length", "").strip()
                cap = self.max_result_bytes
                if cap is not None and declared.isdigit() and int(declared) > cap:
                    raise self.result_too_large(int(declared), cap)
                yield from response.iter_bytes()
        except AddressRefused as refused:
            raise ProviderError("invalid", refused.message, code="address_refused") from None

    def result_too_large(self, size: int, cap: int) -> ProviderError:
        """The refusal of a result larger than we keep (JOBS_RESULT_MAX_BYTES)."""
        return ProviderError(
            "invalid",
            f"{self.label}'s video is {_in_words(size)}, more than the {_in_words(cap)} "
            "Castboard keeps (JOBS_RESULT_MAX_BYTES); it was not stored.",
            code="result_too_large",
        )

    def close(self) -> None:
        if self._owns_http:  # a shared client stays open for the next adapter
            self.http.close()

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- What every adapter does -------------------------------------------

    @abc.abstractmethod
    def register_character(self, source: CharacterSource) -> RegisteredCharacter: ...

    @abc.abstractmethod
    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        """Put each `{{subject}}` placeholder of a compiled prompt in this provider's syntax."""

    @abc.abstractmethod
    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        """Send the create call once; return the job and the payload as sent (for the record)."""

    @abc.abstractmethod
    def fetch(self, provider_job_id: str) -> ProviderJob: ...

    @abc.abstractmethod
    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        """Yield the result's bytes in chunks (never the whole file in memory)."""

    def find_character(self, *, name: str, since: int) -> RegisteredCharacter | None:
        """A character registered as `name` since a unix time, where the provider lists them."""
        return None

    def list_recent(self, *, since: int) -> list[ProviderJob]:
        """Jobs created since a unix time (reconciliation); adapters without a list return []."""
        return []

    def cancel(self, provider_job_id: str) -> bool:
        """Ask the provider to stop; False where it cannot."""
        return False

    @classmethod
    def describe_sent(cls, payload: Mapping[str, object]) -> SentRequest:
        """A payload as it was sent (Job.sent_payload), for people: most providers take a
        `prompt` field beside the rest; one whose body differs (Seedance) overrides this."""
        return SentRequest(
            prompt=str(payload.get("prompt") or ""),
            inputs=tuple(
                f"{key}: {shown_briefly(value)}"
                for key, value in payload.items()
                if key != "prompt"
            ),
        )

    def is_sent_job(self, candidate: ProviderJob, sent: Mapping[str, object]) -> bool:
        """Whether a listed job is the create recorded as `sent` (its prompt, seconds, size).

        Reconciliation asks this of every recent job after a create that may have been
        accepted. Most providers echo the prompt; one that does not overrides this.
        """
        return bool(candidate.prompt) and candidate.prompt == sent.get("prompt")

    def verify_webhook(
        self, *, headers: Mapping[str, str], body: bytes, secret: str
    ) -> WebhookNotice:
        raise WebhookRejected("This provider sends no webhooks.")

    def usage_estimate(self, *, seconds: int, size: str) -> Decimal:
        """How many pricing units a video of this length and size will cost, before it is made."""
        return Decimal(seconds) if self.capabilities.pricing_unit == "second" else Decimal(1)

    def reference_label(self, kind: str, index: int) -> str:
        """How this provider's prompts refer to the index-th (1-based) reference of a kind.

        Used where characters travel as references (no native characters): the prompt
        then says "Mina (image 1)".
        """
        return f"{kind} {index}"

    def estimate(self, *, seconds: int, characters_to_register: int = 0) -> Decimal:
        caps = self.capabilities
        units = Decimal(seconds) if caps.pricing_unit == "second" else Decimal(1)
        return caps.price * units + caps.character_price * characters_to_register

    def validate(self, request: GenerationRequest) -> list[str]:
        """Plain reasons this provider cannot make the request (empty when it can)."""
        caps = self.capabilities
        problems = []
        if request.kind == "extend":
            if request.seconds not in caps.extend_seconds:
                lengths = ", ".join(str(s) for s in caps.extend_seconds) or "no"
                problems.append(
                    f"{self.label} extends a video by {lengths} seconds, not {request.seconds}."
                )
        elif request.seconds not in caps.durations:
            allowed = ", ".join(str(s) for s in caps.durations)
            problems.append(
                f"{self.label} makes videos of {allowed} seconds; "
                f"this scene asks for {request.seconds}."
            )
        if request.kind != "remix" and request.size not in caps.sizes:
            problems.append(
                f"{self.label} cannot make {request.size}; it makes {', '.join(caps.sizes)}."
            )
        images = sum(1 for r in request.references if r.kind == "image")
        clips = sum(1 for r in request.references if r.kind == "video")
        if images > caps.max_references:
            problems.append(
                f"{self.label} takes at most {caps.max_references} reference image(s) per video; "
                f"this request has {images}."
            )
        if clips > caps.max_reference_clips:
            problems.append(
                f"{self.label} takes at most {caps.max_reference_clips} reference clip(s) per "
                f"video; this request has {clips}."
            )
        if len(request.character_ids) > caps.max_characters:
            problems.append(
                f"{self.label} takes at most {caps.max_characters} characters per video; "
                f"this scene has {len(request.character_ids)}."
            )
        return problems

    @property
    def label(self) -> str:
        return type(self).__name__.replace("Provider", "")
