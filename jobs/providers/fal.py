"""fal.ai's queue (PROVIDERS.md section 3, Aggregators): many hosted video models, one protocol.

fal hosts other companies' models (Kling, Seedance, Veo ...) behind one queue:
`POST {base}/{owner}/{app}[/{path}]` submits, and status, result and cancel live under
`{base}/{owner}/{app}/requests/{id}` (owner and app only, never the sub-path). What a
model takes differs per endpoint, so the models are data: each row of fal_models.toml
says which lengths and sizes an endpoint makes and what its fields are called, and
this adapter builds capabilities and request bodies from the account's row.

Characters are not saved here: they travel as reference images where the row takes
them. Completion can be reported to a `fal_webhook` given per request, signed with
Ed25519 under keys fal publishes as a JWKS; the account's webhook secret is not used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from jobs.providers.base import (
    Capabilities,
    CharacterSource,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderJob,
    Reference,
    RegisteredCharacter,
    WebhookNotice,
    WebhookRejected,
)
from jobs.providers.http import classify_response, send_once

MODELS_FILE = Path(__file__).with_name("fal_models.toml")
OFFICIAL_QUEUE_HOST = "queue.fal.run"
OFFICIAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
WEBHOOK_TOLERANCE_SECONDS = 300
JWKS_CACHE_SECONDS = 3600  # fal rotates keys rarely; an unknown key refetches at once anyway
POLICY_ERROR = "content_policy_violation"  # fal's error type for a flagged input or output
_CANCELLED_TYPES = ("client_cancelled", "request_cancelled")


# --- The hosted models, as data -------------------------------------------------------------


@dataclass(frozen=True)
class HostedModel:
    """One row of fal_models.toml: an endpoint and how its requests are written."""

    id: str
    label: str
    durations: tuple[int, ...]
    duration_format: str
    mention_syntax: str
    min_references: int
    max_references: int
    audio: bool
    price_unit: str
    price: Decimal
    price_source: str
    fields: Mapping[str, str]
    sizes: Mapping[str, Mapping[str, str]]

    @property
    def app(self) -> str:
        """`owner/app`: where status, result and cancel live."""
        return "/".join(self.id.split("/")[:2])

    def duration_value(self, seconds: int) -> str:
        return self.duration_format.format(seconds=seconds)


@dataclass(frozen=True)
class Catalog:
    default_model: str
    models: Mapping[str, HostedModel]


_FIELD_CONCEPTS = frozenset(
    {"prompt", "duration", "aspect_ratio", "resolution", "images", "image", "generate_audio"}
)


def load_catalog(path: Path = MODELS_FILE) -> Catalog:
    """Read and check a models file; ValueError names the first bad row."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    models: dict[str, HostedModel] = {}
    for number, row in enumerate(data.get("models") or [], start=1):
        where = f"{path.name}, model {number} ({row.get('id', '?')})"
        try:
            model = _model(row)
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise ValueError(f"{where}: {error}") from error
        if model.id in models:
            raise ValueError(f"{where}: the id appears twice.")
        models[model.id] = model
    default = str(data.get("default_model") or "")
    if default and default not in models:
        raise ValueError(f"{path.name}: default_model {default!r} is not a row.")
    return Catalog(default_model=default, models=models)


def _model(row: Mapping[str, Any]) -> HostedModel:
    fields = {str(k): str(v) for k, v in dict(row["fields"]).items()}
    unknown = set(fields) - _FIELD_CONCEPTS
    if unknown:
        raise ValueError(f"unknown field concepts {sorted(unknown)}")
    if "prompt" not in fields:
        raise ValueError("a model needs a prompt field")
    price = row["price"]
    model = HostedModel(
        id=str(row["id"]),
        label=str(row["label"]),
        durations=tuple(int(s) for s in row["durations"]),
        duration_format=str(row.get("duration_format", "{seconds}")),
        mention_syntax=str(row.get("mention_syntax", "plain")),
        min_references=int(row.get("min_references", 0)),
        max_references=int(row.get("max_references", 0)),
        audio=bool(row.get("audio", False)),
        price_unit=str(price["unit"]),
        price=Decimal(str(price["amount"])),
        price_source=str(price["source"]),
        fields=fields,
        sizes={str(size): dict(shape) for size, shape in dict(row["sizes"]).items()},
    )
    if model.id.count("/") < 1 or not all(model.id.split("/")):
        raise ValueError("an id is owner/app[/path]")
    if model.price_unit not in ("second", "request"):
        raise ValueError("price.unit is 'second' or 'request'")
    if model.mention_syntax not in ("plain", "image n"):
        raise ValueError("mention_syntax is 'plain' or 'image n'")
    if model.max_references and not ({"images", "image"} & set(fields)):
        raise ValueError("a model that takes references needs an images or image field")
    if "image" in fields and model.max_references > 1:
        raise ValueError("a single image field takes one reference")
    if not model.durations or not model.sizes:
        raise ValueError("a model makes at least one length and one size")
    return model


_catalog: Catalog | None = None


def catalog() -> Catalog:
    """The shipped models file, read once per process."""
    global _catalog
    if _catalog is None:
        _catalog = load_catalog()
    return _catalog


def _capabilities(model: HostedModel) -> Capabilities:
    return Capabilities(
        native_characters=False,
        mention_syntax=model.mention_syntax,
        durations=model.durations,
        sizes=tuple(model.sizes),
        # Characters travel as reference images, so the image limit is the character limit.
        max_characters=model.max_references,
        max_references=model.max_references,
        pricing_unit=model.price_unit,  # type: ignore[arg-type]
        price=model.price,  # the row's price, with its source in fal_models.toml
        webhooks=True,
        can_list_jobs=False,  # the queue has no list of an account's requests
        can_cancel=True,  # queued requests only: a started video model runs to the end
        callback_per_request=True,  # ?fal_webhook= on each submit
        audio=model.audio,
    )


def _unknown_model_capabilities(models: Mapping[str, HostedModel]) -> Capabilities:
    """What an account with a model we have no row for may do: nothing risky. The price is
    the dearest row's, so a budget is never under-reserved; validate() refuses anyway."""
    dearest = max((m.price for m in models.values()), default=Decimal("1"))
    return Capabilities(
        native_characters=False,
        mention_syntax="plain",
        durations=(5,),
        sizes=("1280x720",),
        max_characters=0,
        max_references=0,
        pricing_unit="second",
        price=dearest,
        webhooks=True,
        can_cancel=True,
        callback_per_request=True,
    )


# --- Webhook keys -----------------------------------------------------------------------------

_jwks: dict[str, tuple[float, tuple[Ed25519PublicKey, ...]]] = {}
_jwks_lock = threading.Lock()


def _public_keys(document: Any) -> tuple[Ed25519PublicKey, ...]:
    """The Ed25519 keys of a JWKS document (`{keys: [{kty: OKP, crv: Ed25519, x}]}`)."""
    items = document.get("keys") if isinstance(document, dict) else None
    keys = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or (item.get("kty"), item.get("crv")) != ("OKP", "Ed25519"):
            continue
        encoded = str(item.get("x") or "")
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError):
            continue
    return tuple(keys)


# --- The adapter ------------------------------------------------------------------------------


class FalProvider(Provider):
    kind = "fal"
    official_base_url = f"https://{OFFICIAL_QUEUE_HOST}"
    # The class-level set is the default model's; an instance has its account's model's.
    capabilities = _capabilities(catalog().models[catalog().default_model])
    POLL_INTERVAL = 3.0  # fal sends no hint; its own client polls about this often

    def __init__(self, *, catalog_file: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A different models file (tests, or an operator's own list) replaces the shipped one.
        self.catalog = load_catalog(catalog_file) if catalog_file else catalog()
        self.capabilities = self._capabilities_in(self.catalog, self.model)

    @classmethod
    def capabilities_for(cls, model: str) -> Capabilities:
        return cls._capabilities_in(catalog(), model)

    @staticmethod
    def _capabilities_in(models: Catalog, model: str) -> Capabilities:
        row = models.models.get(model or models.default_model)
        return _capabilities(row) if row else _unknown_model_capabilities(models.models)

    @property
    def hosted(self) -> HostedModel | None:
        return self.catalog.models.get(self.model or self.catalog.default_model)

    @property
    def label(self) -> str:
        return "fal"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.api_key}"}

    def _row(self) -> HostedModel:
        row = self.hosted
        if row is None:
            raise ProviderError("invalid", self._unknown_model(), code="unknown_model")
        return row

    def _unknown_model(self) -> str:
        known = ", ".join(sorted(self.catalog.models))
        return (
            f"fal has no hosted model {self.model!r} in Castboard's list (fal_models.toml); "
            f"pick one of: {known}."
        )

    # --- Validation -----------------------------------------------------------------------

    def validate(self, request: GenerationRequest) -> list[str]:
        row = self.hosted
        if row is None:
            return [self._unknown_model()]
        problems = super().validate(request)
        name = row.label
        if request.kind != "generate":
            problems.append(f"{name} cannot {request.kind} a video.")
        images = sum(1 for r in request.references if r.kind == "image")
        if images < row.min_references:
            problems.append(
                f"{name} needs at least {row.min_references} reference image(s); "
                f"this request has {images}."
            )
        others = sorted({r.kind for r in request.references if r.kind != "image"})
        if others:
            problems.append(f"{name} takes image references only, not {', '.join(others)}.")
        if any(r.url is None and r.data is None for r in request.references):
            problems.append("A reference has neither a file nor an address.")
        return problems

    def estimate(self, *, seconds: int, characters_to_register: int = 0) -> Decimal:
        return super().estimate(seconds=seconds)  # characters cost nothing: they are images

    # --- Characters -----------------------------------------------------------------------

    def register_character(self, source: CharacterSource) -> RegisteredCharacter:
        raise ProviderError(
            "invalid", "fal keeps no characters; characters travel as reference images."
        )

    def reference_label(self, kind: str, index: int) -> str:
        if kind != "image":
            raise ValueError("fal's hosted models take image references only.")
        return f"image {index}"

    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        # "Mina (image 1)": the label the pipeline gave the picture; plain-language models
        # read it as a description, "image n" models as the reference's number.
        return self._render(
            prompt, mentions, lambda character: f"{character.name} ({character.external_id})"
        )

    # --- Generation -----------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        row = self._row()
        if request.kind != "generate":
            raise ProviderError("invalid", f"{row.label} cannot {request.kind} a video.")
        shape = row.sizes.get(request.size)
        if shape is None:
            raise ProviderError(
                "invalid",
                f"{row.label} cannot make {request.size}; it makes {', '.join(row.sizes)}.",
            )
        payload = self._payload(row, request, shape)
        url = self._url(f"/{row.id}")
        params = {"fal_webhook": request.callback_url} if request.callback_url else None
        response = send_once(
            self.http, "POST", url, headers=self._headers(), json=payload, params=params
        )
        body = self._answer(response)
        request_id = str(body.get("request_id") or "")
        if not request_id:
            raise ProviderError(
                "unavailable",
                "fal accepted the request but sent no request_id.",
                maybe_accepted=True,
            )
        job = ProviderJob(
            provider_job_id=request_id,
            status="queued",
            poll_after=self.POLL_INTERVAL,
            prompt=request.prompt,
            raw=dict(body),
        )
        return job, self._recorded(row, payload)

    def _payload(
        self, row: HostedModel, request: GenerationRequest, shape: Mapping[str, str]
    ) -> dict[str, Any]:
        fields = row.fields
        payload: dict[str, Any] = {fields["prompt"]: request.prompt}
        if "duration" in fields:
            payload[fields["duration"]] = row.duration_value(request.seconds)
        for concept in ("aspect_ratio", "resolution"):
            if concept in fields and concept in shape:
                payload[fields[concept]] = shape[concept]
        if "generate_audio" in fields:
            payload[fields["generate_audio"]] = row.audio
        images = [self._image_url(r) for r in request.references if r.kind == "image"]
        if images and "images" in fields:
            payload[fields["images"]] = images
        elif images and "image" in fields:
            payload[fields["image"]] = images[0]
        elif images:
            raise ProviderError("invalid", f"{row.label} takes no reference images.")
        return payload

    @staticmethod
    def _image_url(reference: Reference) -> str:
        """An address fal fetches, or the bytes inline as a data URI (fal accepts both)."""
        if reference.url:
            return reference.url
        if reference.data is None:
            raise ProviderError("invalid", "A reference has neither a file nor an address.")
        content_type = reference.content_type or "application/octet-stream"
        return f"data:{content_type};base64,{base64.b64encode(reference.data).decode()}"

    @staticmethod
    def _recorded(row: HostedModel, payload: dict[str, Any]) -> dict[str, Any]:
        """The body as sent, inline images named by type and size instead of their bytes."""
        recorded = dict(payload)
        for concept in ("images", "image"):
            name = row.fields.get(concept)
            if name in recorded:
                value = recorded[name]
                recorded[name] = (
                    [_shortened(v) for v in value] if isinstance(value, list) else _shortened(value)
                )
        return recorded

    def _requests_url(self, request_id: str, tail: str = "") -> str:
        return self._url(f"/{self._row().app}/requests/{request_id}{tail}")

    def fetch(self, provider_job_id: str) -> ProviderJob:
        response = send_once(
            self.http,
            "GET",
            self._requests_url(provider_job_id, "/status"),
            headers=self._headers(),
            params={"logs": "1"},
            safe=True,
        )
        status = self._answer(response)
        state = str(status.get("status") or "")
        if state == "IN_QUEUE":
            return self._job(provider_job_id, "queued", status)
        if state == "IN_PROGRESS":
            return self._job(provider_job_id, "running", status)
        if state != "COMPLETED":
            return self._job(provider_job_id, "queued", status)  # a state fal adds later
        error_type = str(status.get("error_type") or "")
        if error_type in _CANCELLED_TYPES:
            return self._job(
                provider_job_id, "cancelled", status, message=str(status.get("error") or "")
            )
        return self._completed(provider_job_id, status)

    def _completed(self, request_id: str, status: Mapping[str, Any]) -> ProviderJob:
        """A finished request: its result is the video, or the model's error body."""
        response = send_once(
            self.http, "GET", self._requests_url(request_id), headers=self._headers(), safe=True
        )
        # 400/422 are the model's refusal; other errors say so in the status. An answer
        # about us (the key, a rate limit, an outage) is not the request's failure.
        transient = response.status_code in (401, 403, 429, 503)
        failed = response.status_code in (400, 422) or bool(status.get("error"))
        if response.status_code >= 400 and failed and not transient:
            code, message = _detail(response)
            code = code or str(status.get("error_type") or "") or f"http_{response.status_code}"
            if code == POLICY_ERROR:
                code = f"moderation:{code}"  # the pipeline recognises moderation by this word
            return self._job(
                request_id,
                "failed",
                status,
                code=code,
                message=message or str(status.get("error") or "The model failed."),
            )
        result = self._answer(response)
        video = result.get("video") if isinstance(result, dict) else None
        url = str(video.get("url") or "") if isinstance(video, dict) else ""
        if not url:
            return self._job(
                request_id,
                "failed",
                status,
                code="no_video",
                message="fal finished the request but its result holds no video.",
            )
        return ProviderJob(
            provider_job_id=request_id,
            status="succeeded",
            progress=100,
            poll_after=self.POLL_INTERVAL,
            video_url=url,
            raw={"status": dict(status), "result": dict(result)},
        )

    def _job(
        self,
        request_id: str,
        status: str,
        body: Mapping[str, Any],
        *,
        code: str = "",
        message: str = "",
    ) -> ProviderJob:
        # fal reports no percentage: a request is waiting, working or done.
        return ProviderJob(
            provider_job_id=request_id,
            status=status,  # type: ignore[arg-type]
            progress=0,
            error_code=code,
            error_message=message,
            poll_after=self.POLL_INTERVAL,
            raw=dict(body),
        )

    def stream_result(self, job: ProviderJob, variant: str = "video") -> Iterator[bytes]:
        if variant != "video":
            raise ProviderError(
                "not_found", f"fal has no {variant} for request {job.provider_job_id}."
            )
        url = job.video_url or self.fetch(job.provider_job_id).video_url
        if not url:
            raise ProviderError("not_found", f"fal has no video for request {job.provider_job_id}.")
        try:
            yield from self._stream(url)  # a public CDN link: the key does not go with it
        except ProviderError as error:
            if error.status_code not in (403, 404):
                raise
            raise ProviderError(
                "not_found",
                "fal's link to this video has expired or is gone.",
                status_code=error.status_code,
            ) from error

    def cancel(self, provider_job_id: str) -> bool:
        """Cancel a queued request. fal also signals a started one, but a hosted video model
        finishes (and bills) anyway: True only when the request really stopped."""
        response = send_once(
            self.http,
            "PUT",
            self._requests_url(provider_job_id, "/cancel"),
            headers=self._headers(),
            safe=True,
        )
        if response.status_code in (400, 404):  # ALREADY_COMPLETED, or no such request
            return False
        self._answer(response)
        return self.fetch(provider_job_id).status == "cancelled"

    # --- Errors ---------------------------------------------------------------------------

    def _answer(self, response: httpx.Response) -> dict:
        """classify_response, in fal's words: `detail` carries the reason, a content-policy
        type is moderation, and a locked account (exhausted balance) is out of quota."""
        try:
            return classify_response(response, provider=self.label)
        except ProviderError as error:
            code, message = _detail(response)
            kind = error.kind
            if code == POLICY_ERROR:
                kind = "moderation"
            elif response.status_code == 403 and "balance" in message.lower():
                kind = "quota"
            detail = message or error.message
            raise ProviderError(
                kind,
                f"fal: {detail}" if not detail.startswith("fal") else detail,
                retry_after=error.retry_after,
                status_code=error.status_code,
                code=code or error.code,
                maybe_accepted=error.maybe_accepted,
            ) from error

    # --- Webhooks -------------------------------------------------------------------------

    def jwks_url(self) -> str:
        """fal's published keys for the real queue; a stand-in (the emulator, a proxy)
        publishes its own at its origin."""
        parts = urlsplit(self.base_url)
        if parts.hostname == OFFICIAL_QUEUE_HOST:
            return OFFICIAL_JWKS_URL
        return f"{parts.scheme}://{parts.netloc}/.well-known/jwks.json"

    def _keys(self, *, refresh: bool) -> tuple[Ed25519PublicKey, ...]:
        url = self.jwks_url()
        with _jwks_lock:
            cached = _jwks.get(url)
        if cached and not refresh and time.monotonic() - cached[0] < JWKS_CACHE_SECONDS:
            return cached[1]
        try:
            response = send_once(self.http, "GET", url, safe=True)
            keys = _public_keys(classify_response(response, provider=self.label))
        except ProviderError as error:
            raise WebhookRejected(
                f"fal's webhook keys could not be read: {error.message}"
            ) from None
        with _jwks_lock:
            _jwks[url] = (time.monotonic(), keys)
        return keys

    def verify_webhook(
        self, *, headers: Mapping[str, str], body: bytes, secret: str
    ) -> WebhookNotice:
        lower = {k.lower(): v for k, v in headers.items()}
        request_id = lower.get("x-fal-webhook-request-id", "")
        user_id = lower.get("x-fal-webhook-user-id", "")
        stamp = lower.get("x-fal-webhook-timestamp", "")
        signature_hex = lower.get("x-fal-webhook-signature", "")
        if not (request_id and user_id and stamp and signature_hex):
            raise WebhookRejected("Missing fal webhook headers.")
        try:
            sent_at = int(stamp)
            signature = bytes.fromhex(signature_hex)
        except ValueError:
            raise WebhookRejected("Malformed fal webhook timestamp or signature.") from None
        if abs(time.time() - sent_at) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRejected("Webhook timestamp is too old or in the future.")
        message = "\n".join((request_id, user_id, stamp, hashlib.sha256(body).hexdigest())).encode()
        # A key we have not seen: fal may have rotated. Read the keys again, once.
        if not self._signed_by_any(
            self._keys(refresh=False), signature, message
        ) and not self._signed_by_any(self._keys(refresh=True), signature, message):
            raise WebhookRejected("Webhook signature does not match fal's keys.")
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRejected("Webhook body is not JSON.") from None
        if not isinstance(event, dict) or str(event.get("request_id") or "") != request_id:
            raise WebhookRejected("The webhook body is not about the signed request.")
        ok = event.get("status") == "OK"
        return WebhookNotice(
            # fal retries one delivery per request: its id is the request's.
            event_id=request_id,
            event_type="fal.completed" if ok else "fal.failed",
            provider_job_id=request_id,
            payload=event,
        )

    @staticmethod
    def _signed_by_any(
        keys: tuple[Ed25519PublicKey, ...], signature: bytes, message: bytes
    ) -> bool:
        for key in keys:
            try:
                key.verify(signature, message)
                return True
            except InvalidSignature:
                continue
        return False


def _detail(response: httpx.Response) -> tuple[str, str]:
    """(error type, message) from fal's `{detail: "..."}` or FastAPI-style
    `{detail: [{loc, msg, type}]}`; the type may also come as X-Fal-Error-Type."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = response.headers.get("x-fal-error-type", "")
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return code or str(body.get("error_type") or ""), detail
    if isinstance(detail, list) and detail:
        messages = []
        for item in detail:
            if not isinstance(item, dict):
                continue
            where = ".".join(str(p) for p in item.get("loc") or [] if p != "body")
            text = str(item.get("msg") or "")
            messages.append(f"{where}: {text}" if where else text)
            code = code or str(item.get("type") or "")
        return code, "; ".join(messages)
    return code, ""


def _shortened(url: Any) -> Any:
    """A data: URI as "<image/png, 1234 bytes>", so the stored payload stays small."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return url
    header, _, data = url.partition(",")
    content_type = header.removeprefix("data:").split(";")[0] or "application/octet-stream"
    return f"<{content_type}, {len(data) * 3 // 4 - data.count('=', -2)} bytes>"
