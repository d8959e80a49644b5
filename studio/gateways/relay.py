"""The Sora relay gateway: the relay's API (PROVIDERS.md section 2) at /gateway/relay/v1/.

A script written for a relay works here by changing its base URL and sending a Castboard
API token as its Bearer key. Its characters are library characters (`char_<id>`), its
tasks are takes in the token's Inbox (`task_<id>`, studio.gateways.inbox), routed by the
series' policy to whichever provider suits, so `@char_<id>` means the library character
at every provider, not an id only the relay knows.

Bodies, status names and errors are the relay's (jobs/emulators/sora_relay.py is our
reference): `{"error": {"message", "code"}}` with its status codes. The token, its rate
limit, Idempotency-Key and the call log are the API middleware's (studio.api.middleware).

A finished task's `video_url` is a signed link that expires (jobs.signing, like the files
providers fetch from us): relays hand out plain CDN links that a script (and Castboard's own
relay adapter) downloads with a bare GET, no Authorization header.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from functools import wraps
from pathlib import PurePosixPath
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from characters.fetch import FetchRefused, reference_fetch
from characters.models import Character, ReferenceAsset
from characters.reference_checks import MediaRejected, inspect_upload
from characters.selectors import characters_visible_to
from characters.services import asset_add, character_create
from jobs.engine import span_window
from jobs.models import Job, JobState
from jobs.signing import public_file_url
from studio import access, throttles
from studio.api.middleware import error, json_body
from studio.gateways import inbox
from studio.generation import OVER_BUDGET, character_from_take
from studio.models import ApiToken, Take
from studio.project.ratelimit import Refusal

log = logging.getLogger(__name__)

FAMILY = "relay"
MAX_NAME = 80  # the relay's limit on a character's name
MAX_DURATION = 60  # seconds, as a scene allows (studio.models.DURATION_VALIDATORS)
# The relay renders portrait only; a relay script expects what it always got.
SIZE = "720x1280"
MAX_TITLE = 80
_HANDLE_MAX = 40
# A handle must never read as a relay id: `@char_12` in a prompt means character 12.
_LOOKS_LIKE_ID = re.compile(r"^char_\d+$")

# JobState in the relay's four words. A take whose video is not stored yet is still
# "processing": `completed` promises a video_url.
_STATUS = {
    JobState.PENDING: "queued",
    JobState.SUBMITTING: "queued",
    JobState.UNKNOWN: "queued",
    JobState.QUEUED: "queued",
    JobState.RUNNING: "processing",
    JobState.DOWNLOADING: "processing",
    JobState.SUCCEEDED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "failed",
}
FAILED = "Video generation failed. Please try again."  # the relay's words when none are given
CANCELLED = "The take was cancelled in Castboard."


class RelayError(Exception):
    """A refusal to answer in the relay's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers


def _bad(message: str, code: str = "invalid_request") -> RelayError:
    return RelayError(400, message, code)


def relay_view(*methods: str) -> Callable:
    """A gateway view: CSRF-exempt (the bearer token is the credential), the given methods
    only, and every refusal (ours, a 404 from studio.access, a 403 from a role check) in
    the relay's error shape."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return error(
                    FAMILY,
                    405,
                    f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                    code="method_not_allowed",
                    headers={"Allow": ", ".join(methods)},
                )
            try:
                return view(request, *args, **kwargs)
            except RelayError as refusal:
                return error(
                    FAMILY,
                    refusal.status,
                    refusal.message,
                    code=refusal.code,
                    headers=refusal.headers,
                )
            except Http404:
                return error(FAMILY, 404, "Not found.", code="not_found")
            except PermissionDenied:
                return error(
                    FAMILY,
                    403,
                    "This token's role may only read; creating characters and videos needs "
                    "an editor or owner token.",
                    code="forbidden",
                )
            except Exception:  # a script gets JSON it can read, never an HTML error page
                log.exception("The relay gateway failed on %s %s", request.method, request.path)
                return error(FAMILY, 500, "Internal server error.", code="internal_error")

        return wrapped

    return decorate


# --- Parsing the relay's bodies -----------------------------------------------------------


def _body(request: HttpRequest) -> dict:
    try:
        return json_body(request)
    except ValueError:
        raise _bad("The body must be a JSON object.") from None


def parse_name(body: dict) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _bad(f"'name' is required (1 to {MAX_NAME} characters).")
    return name.strip()


def parse_description(body: dict) -> str:
    description = body.get("description", "")
    if description is None:
        return ""
    if not isinstance(description, str):
        raise _bad("'description' must be a string.")
    return description.strip()


def parse_text(body: dict, field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"'{field}' is required.")
    return value.strip()


def parse_duration(body: dict) -> int:
    """Seconds as a whole number. Any length a scene may have is taken, not only the
    relay's 5, 10 and 15: the provider the series routes to decides what it makes."""
    duration = body.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise _bad("'duration' must be a whole number of seconds.", "invalid_duration")
    if not 1 <= duration <= MAX_DURATION:
        raise _bad(f"'duration' must be 1 to {MAX_DURATION} seconds.", "invalid_duration")
    return duration


def handle_from(name: str) -> str:
    """A handle made from a name: "Mina Park" is mina_park (ASCII letters, digits and
    underscores, 2 to 40 of them); a name with none of those gives "character". It never
    reads as a relay id (char_12), alone or with the _2 that makes it unique."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    handle = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:_HANDLE_MAX].strip("_")
    if len(handle) < 2:
        handle = "character"
    if handle == "char" or _LOOKS_LIKE_ID.match(handle):  # nor may char_2, its second
        handle = f"{handle}_character"
    return handle


def _title(prompt: str) -> str:
    line = prompt.strip().splitlines()[0] if prompt.strip() else ""
    return line if len(line) <= MAX_TITLE else f"{line[: MAX_TITLE - 1]}…"


# --- Answers -------------------------------------------------------------------------------


def character_resource(character: Character) -> dict:
    return {
        "character_id": inbox.character_id(character),
        "name": character.name,
        "description": character.description,
        "created_at": int(character.created_at.timestamp()),
    }


def task_status(job: Job) -> str:
    status = _STATUS.get(job.state, "queued")
    if status == "completed" and not job.video:
        return "processing"
    return status


def task_resource(take: Take) -> dict:
    """A take as the relay shows a task; always the same five fields, as the relay sends."""
    job = take.job
    status = task_status(job)
    failed = job.error_message or (CANCELLED if job.state == JobState.CANCELLED else FAILED)
    return {
        "task_id": inbox.task_id(take),
        "status": status,
        "progress": 100 if status == "completed" else job.progress,
        "video_url": public_file_url(job.video.name) if status == "completed" else None,
        "error": failed if status == "failed" else None,
    }


# --- Making characters --------------------------------------------------------------------


def _too_many(refusal: Refusal, message: str) -> RelayError:
    return RelayError(
        429, message, "rate_limited", headers={"Retry-After": refusal.retry_after_header}
    )


def _editor(request: HttpRequest) -> ApiToken:
    token: ApiToken = request.api_token
    access.require(token, "edit")
    return token


def character_named(token: ApiToken, *, name: str, description: str) -> Character:
    """A new library character of the token's workspace, its handle made from its name and
    made unique there (mina, mina_2, …). Call inside a transaction with what fills it."""
    base = handle_from(name)
    taken = set(
        Character.objects.filter(
            workspace=token.workspace, handle__startswith=base[: _HANDLE_MAX - 4]
        ).values_list("handle", flat=True)
    )
    for number in range(1, 1000):
        suffix = "" if number == 1 else f"_{number}"
        handle = f"{base[: _HANDLE_MAX - len(suffix)]}{suffix}"
        if handle in taken:
            continue
        try:
            with transaction.atomic():
                return character_create(
                    workspace=token.workspace,
                    name=name,
                    handle=handle,
                    description=description,
                    created_by=token.user,
                )
        except ValidationError as refused:
            if "handle" not in getattr(refused, "error_dict", {}):
                raise
            taken.add(handle)  # taken since we looked: try the next
    raise _bad(f"Too many characters are called {name}; choose another name.")


def character_from_url(
    token: ApiToken, *, video_url: str, name: str, description: str
) -> Character:
    """A library character whose reference is the clip at `video_url`, fetched by the guarded
    fetcher (public addresses only) and checked by its content, as an upload is."""
    try:
        upload = reference_fetch(video_url)
    except FetchRefused as refused:
        raise _bad(f"Could not fetch video_url: {refused.message}", "invalid_video_url") from None
    try:
        try:
            media = inspect_upload(upload, name=PurePosixPath(upload.name or "video_url").name)
        except MediaRejected as rejected:
            raise _bad(str(rejected), "invalid_video") from None
        if media.kind != ReferenceAsset.Kind.CLIP:
            raise _bad(
                "video_url points to a picture; a character is made from a video clip.",
                "invalid_video",
            )
        try:
            with transaction.atomic():
                character = character_named(token, name=name, description=description)
                asset_add(
                    character=character,
                    upload=upload,
                    label="from the relay gateway",
                    created_by=token.user,
                )
        except ValidationError as refused:
            raise _bad(" ".join(refused.messages), "invalid_video") from None
    finally:
        upload.close()
    return character


def character_from_task(token: ApiToken, *, take: Take, name: str, description: str) -> Character:
    """A library character from a finished take, as the relay's extract does: the take's
    first seconds (as long as its provider registers characters from) become its clip and
    stills, and the take's provider learns it (studio.generation.character_from_take)."""
    job = take.job
    status = task_status(job)
    if status != "completed":
        raise _bad(
            f"Task {inbox.task_id(take)} is {status}; a character comes only from a completed "
            "task.",
            "task_not_completed",
        )
    low, high = span_window(job.provider_account)
    seconds = float(job.result.get("duration") or job.job_request.request.seconds)
    if seconds < low:
        raise _bad(
            f"Task {inbox.task_id(take)} lasts {seconds:.1f} s; a character needs at least "
            f"{low:g} s of video.",
            "invalid_video",
        )
    try:
        with transaction.atomic():
            character = character_named(token, name=name, description=description)
            character_from_take(
                take=take,
                character=character,
                start=0.0,
                end=min(seconds, high),
                created_by=token.user,
            )
    except ValidationError as refused:
        raise _bad(" ".join(refused.messages), "invalid_video") from None
    return character


# --- Views ---------------------------------------------------------------------------------


@relay_view("GET", "POST")
def characters(request: HttpRequest) -> HttpResponse:
    """GET: the workspace's library (own and shared). POST: a character from a video URL."""
    if request.method == "GET":
        token: ApiToken = request.api_token
        library = characters_visible_to(workspace=token.workspace).order_by("pk")
        return JsonResponse({"characters": [character_resource(c) for c in library]})
    token = _editor(request)
    body = _body(request)
    name, description = parse_name(body), parse_description(body)
    video_url = parse_text(body, "video_url")
    if refusal := throttles.reference_import(request, token):
        raise _too_many(refusal, throttles.import_refused_message(refusal))
    character = character_from_url(token, video_url=video_url, name=name, description=description)
    return JsonResponse(character_resource(character))


@relay_view("POST")
def extract(request: HttpRequest) -> HttpResponse:
    """A character from an earlier task of this workspace."""
    token = _editor(request)
    body = _body(request)
    name, description = parse_name(body), parse_description(body)
    take = _task(token, parse_text(body, "task_id"))
    character = character_from_task(token, take=take, name=name, description=description)
    return JsonResponse(character_resource(character))


@relay_view("POST")
def generate(request: HttpRequest) -> HttpResponse:
    """A take in the token's Inbox, its `@char_<id>` mentions as the library's characters."""
    token = _editor(request)
    body = _body(request)
    prompt = parse_text(body, "prompt")
    duration = parse_duration(body)
    prompt = _with_handles(token, prompt)
    if refusal := throttles.generate(request, token):
        raise _too_many(
            refusal,
            "Too many videos started in a short while; nothing was made or charged. "
            f"Try again in {refusal.wait_in_words}.",
        )
    try:
        take = inbox.inbox_take(
            token, prompt=prompt, seconds=duration, size=SIZE, title=_title(prompt)
        )
    except ValidationError as refused:
        message = " ".join(refused.messages)
        if _over_budget(refused):  # the relay's "balance exhausted"
            raise RelayError(429, message, "quota_exceeded") from None
        raise _bad(message) from None
    return JsonResponse({"task_id": inbox.task_id(take), "status": task_status(take.job)})


@relay_view("GET")
def task(request: HttpRequest, task_id: str) -> HttpResponse:
    return JsonResponse(task_resource(_task(request.api_token, task_id)))


@relay_view("GET", "POST", "PUT", "PATCH", "DELETE")
def unknown(request: HttpRequest, rest: str) -> HttpResponse:
    raise RelayError(404, "Not found.", "not_found")


def _task(token: ApiToken, public_id: str) -> Take:
    try:
        return inbox.take_by_id(token, public_id, prefix=inbox.TASK_PREFIX)
    except Http404:
        raise RelayError(404, f"Task {public_id} not found.", "task_not_found") from None


def _over_budget(refused: ValidationError) -> bool:
    return any(e.code == OVER_BUDGET for e in getattr(refused, "error_list", ()))


def _with_handles(token: ApiToken, prompt: str) -> str:
    """The prompt with each `@char_<id>` as the library's `@handle`; an id this workspace
    cannot see is a 404 naming it, and nothing is made."""
    try:
        return inbox.resolve_relay_mentions(token, prompt)
    except Http404:
        for public_id in inbox.CHARACTER_MENTION.findall(prompt):
            try:
                inbox.character_by_id(token, public_id)
            except Http404:
                raise RelayError(
                    404, f"Unknown character @{public_id}.", "character_not_found"
                ) from None
        raise


urlpatterns = [
    path("sora/characters", characters, name="relay_characters"),
    path("sora/characters/extract", extract, name="relay_extract"),
    path("sora/generate", generate, name="relay_generate"),
    path("sora/tasks/<str:task_id>", task, name="relay_task"),
    re_path(r"^(?P<rest>.*)$", unknown),
]
