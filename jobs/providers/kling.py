"""Kling (Kuaishou) official API, model kling-v3-omni ("Kling O3"), on /v1/videos/omni-video.

DEFAULT_BASE is https://api-singapore.klingai.com (the global system; Beijing's is
https://api-beijing.klingai.com); paths carry their own /v1.

Auth: no static bearer key. The account's key is stored as "access_key:secret_key" and
every request carries a fresh JWT (HS256, `iss` = access key, `exp` = now + 1800, `nbf` =
now - 5) signed with the secret key. A key without ":" is used as both halves.

Characters are Kling "elements": registered once (POST /v1/general/advanced-custom-elements,
itself an asynchronous task that ends with an element_id), then sent by id in
`element_list` and named in the prompt as <<<element_N>>>, N being the element's place in
that list. An element is made from pictures (a frontal image plus 1-3 other views, as URLs
or bare base64) or from one 3-8 s 1080p clip, which Kling only takes by URL.

Every create carries `external_task_id`: "cb-" + the first 20 hex digits of
sha256(model, prompt, seconds, size) (what the pipeline records before sending) + "-" +
8 random hex digits. The stable part lets reconciliation recognise the task in Kling's list
(which does not echo the prompt); the random part keeps two identical takes apart, since
Kling refuses an external_task_id the account has used before.

Kling has no cancel: a task, once accepted, runs to its end and is charged. Kling does not
sign callbacks; the secret token in our callback URL authenticates the sender, and a
callback is only a nudge to read the task from Kling.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
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
    WebhookNotice,
    WebhookRejected,
    shown_briefly,
)
from jobs.providers.http import classify_response, send_once

DEFAULT_BASE = "https://api-singapore.klingai.com"
VIDEOS = "/v1/videos/omni-video"
ELEMENTS = "/v1/general/advanced-custom-elements"

# Our sizes as Kling's (mode, aspect_ratio): std renders 720p, pro 1080p.
SIZES: dict[str, tuple[str, str]] = {
    "1280x720": ("std", "16:9"),
    "720x1280": ("std", "9:16"),
    "960x960": ("std", "1:1"),
    "1920x1080": ("pro", "16:9"),
    "1080x1920": ("pro", "9:16"),
    "1440x1440": ("pro", "1:1"),
}
_STATUS = {
    "submitted": "queued",
    "processing": "running",
    "succeed": "succeeded",
    "failed": "failed",
}
MAX_PROMPT_CHARS = 2500
# Without a reference video, images + elements in one request are at most 7 [3P].
MAX_INPUTS = 7
# An image element: one frontal picture and 1-3 other views [3P].
ELEMENT_IMAGES = (2, 4)
ELEMENT_NAME_CHARS, ELEMENT_DESCRIPTION_CHARS = 20, 100
JWT_LIFETIME, JWT_LEEWAY = 1800, 5

# Kling's service codes [3P: Kling's "General Information" error table].
_AUTH = {1000, 1001, 1002, 1003, 1004, 1103, 1304}  # bad token, no permission, IP allow-list
_QUOTA = {1100, 1101, 1102}  # account exception, arrears, resource pack used up
_RATE = {1302, 1303}  # too fast; concurrency or QPS over the pack's limit
_INVALID = {1200, 1201, 1300}
_NOT_FOUND = {1202, 1203}
_MODERATION = {1301}  # the content security policy
# Words of a task failed by Kling's content checks ("Failure to pass the risk control system").
_MODERATION_WORDS = ("risk control", "content security", "sensitive", "风控", "安全")


def credentials(api_key: str) -> tuple[str, str]:
    """(access key, secret key) from "access:secret"; a key without ":" is both."""
    access, sep, secret = api_key.partition(":")
    return (access, secret) if sep else (api_key, api_key)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def api_token(access_key: str, secret_key: str, *, now: float | None = None) -> str:
    """Kling's API token: a JWT (RFC 7519) signed with HMAC-SHA256, from the standard library."""
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"iss": access_key, "exp": issued + JWT_LIFETIME, "nbf": issued - JWT_LEEWAY}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def request_digest(model: str, prompt: str, seconds: int, size: str) -> str:
    """The stable part of an external_task_id: what reconciliation can recompute."""
    text = json.dumps([model, prompt, int(seconds), size], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _element_prefix(name: str) -> str:
    """The stable start of an element task's external_task_id: a digest of its name."""
    return f"cb-el-{hashlib.sha256(name.encode()).hexdigest()[:16]}-"


def _is_moderation(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in _MODERATION_WORDS)


def _inline(reference: Reference) -> str:
    """A picture as Kling takes it: its address, or bare base64 (Kling wants no data: prefix)."""
    if reference.data is not None:
        return base64.b64encode(reference.data).decode("ascii")
    if reference.url:
        return reference.url
    raise ProviderError("invalid", "A picture has neither a file nor an address.")


def _shortened(value: Any) -> Any:
    """Bare base64 in a recorded payload as "<base64, N bytes>", so the record stays small."""
    if isinstance(value, str) and len(value) > 200 and not value.startswith(("http:", "https:")):
        return f"<base64, {len(value) * 3 // 4 - value.count('=', -2)} bytes>"
    if isinstance(value, dict):
        return {key: _shortened(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shortened(item) for item in value]
    return value


class KlingProvider(Provider):
    kind = "kling"
    official_base_url = DEFAULT_BASE
    capabilities = Capabilities(
        native_characters=True,
        mention_syntax="<<<element_n>>>",
        durations=tuple(range(3, 16)),
        sizes=tuple(SIZES),
        max_characters=MAX_INPUTS,  # elements and images share the limit (validate checks both)
        max_references=MAX_INPUTS,
        pricing_unit="second",
        # [3P] Kling's developer pricing as summarised by Atlas Cloud's "Kling AI API pricing"
        # guide (resource packs at $0.14 a unit): a 10 s 1080p clip with native audio is about
        # $1.68, i.e. $0.168 a second. We always ask for sound, and std (720p) costs less, so
        # this is the most a second costs here; the price book may say less per size.
        price=Decimal("0.168"),
        character_price=Decimal("0"),  # no published charge for creating an element
        webhooks=True,
        remix=False,
        extend_seconds=(),
        # A video element: one .mp4/.mov of 3-8 s, 1080p, 16:9 or 9:16 [3P].
        character_clip_seconds=(3.0, 8.0),
        character_images=ELEMENT_IMAGES[1],
        character_from_job=False,
        can_list_jobs=True,
        list_is_authoritative=False,  # no promise that a fresh task is listed at once
        can_cancel=False,
        result_variants=("video",),
        max_reference_clips=0,
        callback_per_request=True,
        audio=True,  # sound: "on" - Omni speaks the dialogue written in the prompt
    )
    DEFAULT_MODEL = "kling-v3-omni"
    POLL_INTERVAL = 3.0  # Kling sends no hint
    LIST_PAGE_SIZE = 500  # Kling's largest page
    LIST_MAX_PAGES = 4  # bounded: at most 2,000 recent tasks (or elements) are examined
    ELEMENT_WAIT_SECONDS = 60.0  # how long register_character waits for the element task

    @property
    def label(self) -> str:
        return "Kling"

    @property
    def model_name(self) -> str:
        return self.model or self.DEFAULT_MODEL

    def _headers(self) -> dict[str, str]:
        access, secret = credentials(self.api_key)
        return {"Authorization": f"Bearer {api_token(access, secret)}"}

    # --- Limits -------------------------------------------------------------------------------

    def validate(self, request: GenerationRequest) -> list[str]:
        problems = super().validate(request)
        if request.kind != "generate":
            problems.append(f"{self.label} cannot {request.kind} a video.")
        if len(request.prompt) > MAX_PROMPT_CHARS:
            problems.append(
                f"{self.label} reads prompts of at most {MAX_PROMPT_CHARS:,} characters; "
                f"this one has {len(request.prompt):,}."
            )
        images = sum(1 for r in request.references if r.kind == "image")
        if images + len(request.character_ids) > MAX_INPUTS:
            problems.append(
                f"{self.label} takes at most {MAX_INPUTS} characters and reference images "
                f"together; this request has {len(request.character_ids)} and {images}."
            )
        if any(r.kind == "audio" for r in request.references):
            problems.append(f"{self.label} takes no reference audio.")
        if any(r.url is None and r.data is None for r in request.references):
            problems.append("A reference has neither a file nor an address.")
        return problems

    # --- Characters ---------------------------------------------------------------------------

    def register_character(self, source: CharacterSource) -> RegisteredCharacter:
        """Create an element and wait (bounded) for its id.

        Pictures are preferred (the first one frontal); with fewer than two pictures the
        clip's address is used. A clip given only as bytes cannot be sent: Kling takes
        reference videos by URL alone.
        """
        name = source.name[:ELEMENT_NAME_CHARS]
        body: dict[str, Any] = {
            "element_name": name,
            # Required by Kling; the name stands in for a missing description.
            "element_description": (source.description or source.name)[:ELEMENT_DESCRIPTION_CHARS],
            # Lets find_character recognise the task before it has finished.
            "external_task_id": f"{_element_prefix(name)}{secrets.token_hex(4)}",
        }
        pictures = [r for r in source.images if r.kind == "image"][: ELEMENT_IMAGES[1]]
        if len(pictures) >= ELEMENT_IMAGES[0]:
            body["reference_type"] = "image_refer"
            body["element_image_list"] = {
                "frontal_image": _inline(pictures[0]),
                "refer_images": [{"image_url": _inline(p)} for p in pictures[1:]],
            }
        elif source.clip_url:
            body["reference_type"] = "video_refer"
            body["element_video_list"] = {"refer_videos": [{"video_url": source.clip_url}]}
        else:
            have = f"{len(pictures)} picture(s)" + (" and a clip file" if source.clip else "")
            raise ProviderError(
                "invalid",
                f"{self.label} makes a character from {ELEMENT_IMAGES[0]}-{ELEMENT_IMAGES[1]} "
                f"pictures or from a clip's public address; {source.name} has {have}.",
            )
        response = send_once(
            self.http, "POST", self._url(ELEMENTS), headers=self._headers(), json=body
        )
        task = self._answer(response)
        return self._await_element(str(task.get("task_id") or ""), name)

    def _await_element(self, task_id: str, name: str) -> RegisteredCharacter:
        if not task_id:
            raise ProviderError(
                "unavailable", f"{self.label} answered an element without a task id."
            )
        deadline = time.monotonic() + self.ELEMENT_WAIT_SECONDS
        delay = 0.1
        while True:
            task = self._element_task(task_id)
            status = str(task.get("task_status") or "")
            if status == "succeed":
                elements = (task.get("task_result") or {}).get("elements") or []
                if elements and elements[0].get("element_id") is not None:
                    first = elements[0]
                    return RegisteredCharacter(
                        external_id=str(first["element_id"]),
                        name=str(first.get("element_name") or name),
                    )
                raise ProviderError(
                    "unavailable", f"{self.label} finished element task {task_id} without an id."
                )
            if status == "failed":
                message = str(task.get("task_status_msg") or "The element could not be made.")
                kind = "moderation" if _is_moderation(message) else "invalid"
                raise ProviderError(kind, f"{self.label} refused the character: {message}")
            if time.monotonic() + delay > deadline:
                # It may still finish: the pipeline then looks for it by name.
                raise ProviderError(
                    "timeout",
                    f"{self.label} did not finish making the character within "
                    f"{self.ELEMENT_WAIT_SECONDS:g} s (element task {task_id}).",
                    maybe_accepted=True,
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _element_task(self, task_id: str) -> dict:
        response = send_once(
            self.http, "GET", self._url(f"{ELEMENTS}/{task_id}"), headers=self._headers(), safe=True
        )
        return self._answer(response)

    def find_character(self, *, name: str, since: int) -> RegisteredCharacter | None:
        """The newest element task named `name` created since `since`, waited for if unfinished."""
        wanted = name[:ELEMENT_NAME_CHARS]
        for task in self._pages(ELEMENTS):
            if int(task.get("created_at") or 0) // 1000 < since:
                return None
            elements = (task.get("task_result") or {}).get("elements") or []
            names = {str(e.get("element_name") or "") for e in elements}
            external = str((task.get("task_info") or {}).get("external_task_id") or "")
            if wanted not in names and not external.startswith(_element_prefix(wanted)):
                continue
            if task.get("task_status") == "failed":
                continue
            return self._await_element(str(task.get("task_id") or ""), wanted)
        return None

    def render_mentions(self, prompt: str, mentions: Mapping[str, RegisteredCharacter]) -> str:
        """Each character as <<<element_N>>>, N its place among the request's character_ids
        (which the pipeline lists in the order of `mentions`)."""
        order: list[str] = []
        for character in mentions.values():
            if character.external_id not in order:
                order.append(character.external_id)
        return self._render(
            prompt,
            mentions,
            lambda character: f"<<<element_{order.index(character.external_id) + 1}>>>",
        )

    def reference_label(self, kind: str, index: int) -> str:
        """Omni names its inputs <<<image_1>>> (and <<<video_1>>>, which we do not send)."""
        if kind != "image":
            raise ValueError(f"{self.label} takes no {kind} references here.")
        return f"<<<image_{index}>>>"

    # --- Generation ---------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> tuple[ProviderJob, dict]:
        problems = self.validate(request)
        if problems:
            raise ProviderError("invalid", " ".join(problems))
        mode, ratio = SIZES[request.size]
        model = self.model_name
        payload: dict[str, Any] = {
            "model_name": model,
            "prompt": request.prompt,
            "mode": mode,
            "aspect_ratio": ratio,
            "duration": str(request.seconds),  # Kling takes the length as a string
            "sound": "on",
            "external_task_id": (
                f"cb-{request_digest(model, request.prompt, request.seconds, request.size)}"
                f"-{secrets.token_hex(4)}"
            ),
        }
        if request.character_ids:
            payload["element_list"] = [
                {"element_id": int(cid) if cid.isdigit() else cid} for cid in request.character_ids
            ]
        images = [r for r in request.references if r.kind == "image"]
        if images:
            payload["image_list"] = [{"image_url": _inline(image)} for image in images]
        if request.callback_url:
            payload["callback_url"] = request.callback_url
        response = send_once(
            self.http, "POST", self._url(VIDEOS), headers=self._headers(), json=payload
        )
        job = self._job(self._answer(response))
        return dataclasses.replace(job, prompt=request.prompt), _shortened(payload)

    @classmethod
    def describe_sent(cls, payload: Mapping[str, Any]) -> SentRequest:
        """The prompt, then each element and image as the prompt names it, then the rest."""
        if "model_name" not in payload:  # the record made just before sending
            return super().describe_sent(payload)
        inputs = [
            f"<<<element_{n}>>>: element {item.get('element_id')}"
            for n, item in enumerate(payload.get("element_list") or [], start=1)
        ]
        inputs += [
            f"<<<image_{n}>>>: {shown_briefly(str(item.get('image_url') or ''), 90)}"
            for n, item in enumerate(payload.get("image_list") or [], start=1)
        ]
        inputs += [
            f"{key}: {shown_briefly(value)}"
            for key, value in payload.items()
            if key not in ("prompt", "element_list", "image_list")
        ]
        return SentRequest(prompt=str(payload.get("prompt") or ""), inputs=tuple(inputs))

    def fetch(self, provider_job_id: str) -> ProviderJob:
        response = send_once(
            self.http,
            "GET",
            self._url(f"{VIDEOS}/{provider_job_id}"),
            headers=self._headers(),
            safe=True,
        )
        return self._job(self._answer(response))

    def _job(self, task: Mapping[str, Any]) -> ProviderJob:
        raw_status = str(task.get("task_status") or "")
        status = _STATUS.get(raw_status, "queued")
        code = message = ""
        if status == "failed":
            message = str(task.get("task_status_msg") or "Kling could not make the video.")
            # Kling gives no code for a failed task: its words say whether it was moderated.
            code = "moderation:risk_control" if _is_moderation(message) else "failed"
        videos = (task.get("task_result") or {}).get("videos") or []
        url = str(videos[0].get("url") or "") if status == "succeeded" and videos else ""
        created = task.get("created_at")
        return ProviderJob(
            provider_job_id=str(task.get("task_id") or ""),
            status=status,
            # Kling reports no percentage: a task is waiting, working or done.
            progress=100 if status == "succeeded" else 0,
            error_code=code,
            error_message=message,
            poll_after=self.POLL_INTERVAL,
            video_url=url,
            created_at=int(created) // 1000 if created is not None else None,  # Kling: ms
            raw=dict(task),
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
            yield from self._stream(url)  # a signed CDN link: no token goes with it
        except ProviderError as error:
            if error.status_code not in (403, 404):
                raise
            raise ProviderError(
                "not_found",
                f"{self.label}'s link to this video has expired or is gone "
                "(Kling keeps results for 30 days).",
                status_code=error.status_code,
            ) from error

    def is_sent_job(self, candidate: ProviderJob, sent: Mapping[str, Any]) -> bool:
        """Kling's tasks do not echo the prompt, but they echo our external_task_id, whose
        middle part is the digest of what was recorded before sending."""
        external = str((candidate.raw.get("task_info") or {}).get("external_task_id") or "")
        try:
            digest = request_digest(
                self.model_name,
                str(sent.get("prompt") or ""),
                int(sent.get("seconds") or 0),
                str(sent.get("size") or ""),
            )
        except (TypeError, ValueError):
            return False
        return external.startswith(f"cb-{digest}-")

    def list_recent(self, *, since: int) -> list[ProviderJob]:
        """Tasks created since `since`, newest first (Kling lists its newest first)."""
        found: list[ProviderJob] = []
        for task in self._pages(VIDEOS):
            if int(task.get("created_at") or 0) // 1000 < since:
                break
            found.append(self._job(task))
        return found

    def _pages(self, path: str) -> Iterator[dict]:
        for page in range(1, self.LIST_MAX_PAGES + 1):
            response = send_once(
                self.http,
                "GET",
                self._url(path),
                headers=self._headers(),
                params={"pageNum": page, "pageSize": self.LIST_PAGE_SIZE},
                safe=True,
            )
            items = self._answer(response) or []
            if not isinstance(items, list):
                raise ProviderError("unavailable", f"{self.label} answered a list that is not one.")
            yield from items
            if len(items) < self.LIST_PAGE_SIZE:
                return

    # --- Callbacks ----------------------------------------------------------------------------

    def verify_webhook(
        self, *, headers: Mapping[str, str], body: bytes, secret: str
    ) -> WebhookNotice:
        """Kling POSTs the task itself, unsigned; the URL's token has already said who sent it.

        The notice never ends in ".completed": the engine reads the task from Kling before
        it believes a callback.
        """
        try:
            task = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRejected("The callback body is not JSON.") from None
        if not isinstance(task, dict):
            raise WebhookRejected("The callback body is not a Kling task.")
        task_id, status = task.get("task_id"), task.get("task_status")
        if not isinstance(task_id, str) or not task_id or status not in _STATUS:
            raise WebhookRejected("The callback body is not a Kling task (task_id, task_status).")
        return WebhookNotice(
            event_id=f"{task_id}:{status}:{task.get('updated_at', '')}",
            event_type="kling.task.updated",
            provider_job_id=task_id,
            payload=task,
        )

    # --- Errors -------------------------------------------------------------------------------

    def _answer(self, response) -> Any:
        """The `data` of Kling's envelope {code, message, request_id, data}, or a ProviderError
        whose kind Kling's service code decides."""
        try:
            body = classify_response(response, provider=self.label)
        except ProviderError as error:
            raise self._kling_error(error, response) from error
        if not isinstance(body, dict) or "data" not in body:
            raise ProviderError("unavailable", f"{self.label} answered without its envelope.")
        if body.get("code") not in (0, None):  # an error inside a 200
            error = ProviderError("invalid", str(body.get("message") or ""), code=str(body["code"]))
            raise self._kling_error(error, response)
        return body["data"]

    def _kling_error(self, error: ProviderError, response) -> ProviderError:
        try:
            service = int(error.code)
        except ValueError:
            return error  # not Kling's envelope (a gateway's page): the HTTP status decided
        try:
            detail = str(response.json().get("message") or "")
        except (ValueError, AttributeError):
            detail = ""
        detail = detail or error.message
        creating = response.request.method == "POST"
        if service in _AUTH:
            kind, words = "auth", "refused the key"
        elif service in _QUOTA:
            kind, words = "quota", "out of quota"
        elif service in _RATE:
            kind, words = "rate_limit", "rate limited"
        elif service in _MODERATION:
            kind, words = "moderation", "refused the content"
        elif service in _NOT_FOUND and not creating:
            kind, words = "not_found", "not found"
        elif service >= 5000:
            kind, words = "unavailable", "is having trouble"
        else:
            kind, words = "invalid", "refused the request"
        return ProviderError(
            kind,  # type: ignore[arg-type]
            f"{self.label} {words}: {detail} (code {service})",
            retry_after=error.retry_after,
            status_code=error.status_code,
            code=str(service),
            maybe_accepted=error.maybe_accepted,
        )
