"""The OpenAI Videos API's words, for the gateway (studio.gateways.openai): reading its
request bodies and writing its answers, field for field as in OpenAI's spec and as our
own emulator of it (jobs.emulators.openai) answers.

Nothing here changes anything: it turns a request into plain values (or a WireError that
says in OpenAI's shape what is wrong with it) and a take, a character or a page of takes
into OpenAI's JSON.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone

from characters.models import Character
from jobs.models import ErrorCode, Job, JobKind, JobState
from jobs.requests import JobRequest, RequestShapeError
from studio.api.middleware import error, json_body
from studio.gateways.inbox import character_id, video_id
from studio.models import Take

SECONDS = ("4", "8", "12")
# An extension's new segment (the spec's description lists these; its enum only the first three).
EXTENSION_SECONDS = ("4", "8", "12", "16", "20")
SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
VARIANTS = ("video", "thumbnail", "spritesheet")
ORDERS = ("asc", "desc")
MAX_PROMPT = 32_000
MAX_MODEL = 100
MAX_CHARACTER_NAME = 80
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
POLL_HEADER = "openai-poll-after-ms"
# How long a client waits between polls (ms): until Castboard's own next look at the
# provider, within these bounds; while a video is sent or downloaded (its due time is then a
# lease, not a look), the short wait.
POLL_AFTER_MS = (250, 5000)
SHORT_POLL_AFTER_MS = 500

STATUS = {
    JobState.PENDING: "queued",
    JobState.SUBMITTING: "queued",
    JobState.QUEUED: "queued",
    JobState.UNKNOWN: "queued",
    JobState.RUNNING: "in_progress",
    JobState.DOWNLOADING: "in_progress",
    JobState.SUCCEEDED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "failed",
}
# Castboard's reasons a job failed, as OpenAI names the ones it shares.
ERROR_CODES = {
    ErrorCode.MODERATION: "moderation_blocked",
    ErrorCode.GENERATION_FAILED: "video_generation_failed",
}


class WireError(Exception):
    """A request the gateway answers with an OpenAI-shaped error instead of doing it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.param, self.error_type, self.headers = param, error_type, headers

    def response(self) -> HttpResponse:
        answer = error("openai", self.status, self.message, code=self.code, headers=self.headers)
        if self.param is None and self.error_type is None:
            return answer
        # OpenAI's own fields, which the shared error shape leaves at their defaults.
        body = json.loads(answer.content)
        body["error"]["param"] = self.param
        body["error"]["type"] = self.error_type or body["error"]["type"]
        answer.content = json.dumps(body).encode()
        return answer


def invalid(message: str, param: str | None, code: str = "invalid_value") -> WireError:
    return WireError(400, message, code=code, param=param)


# --- Reading a body -------------------------------------------------------------------------

# `characters[][id]`, `video[id]`, `input_reference[image_url]`: how SDKs flatten nested values
# when they must send multipart.
_NESTED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")


def payload(request: HttpRequest) -> dict[str, Any]:
    """A JSON or form body as one dict (uploaded files as UploadedFile values); WireError for a
    body that is neither, or unreadable."""
    content_type = request.content_type or ""
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            fields = list(request.POST.lists())
            files = list(request.FILES.items())
        except MultiPartParserError as exc:
            raise invalid(f"The multipart body could not be read: {exc}", None) from exc
        for field_name, _, message in getattr(request, "rejected_uploads", []):
            raise invalid(message, field_name, "file_too_large")
        return {**unflatten(fields), **dict(files)}
    if content_type in ("", "application/json") or content_type.endswith("+json"):
        try:
            return json_body(request)
        except ValueError as exc:
            raise invalid(
                "We could not parse the JSON body of your request: it must be a JSON object.",
                None,
                "invalid_json",
            ) from exc
    raise invalid(
        f"Unsupported content type '{content_type}': send application/json or multipart/form-data.",
        None,
        "unsupported_content_type",
    )


def unflatten(fields: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """Form fields as nested values: `video[id]` → {"video": {"id": …}}, `characters[][id]`
    (repeated) → {"characters": [{"id": …}, …]}, `a[]` → a list, `a[0][id]` by position."""
    out: dict[str, Any] = {}
    for key, values in fields:
        match = _NESTED.match(key)
        if match is None:
            out[key] = values[-1]
            continue
        name, parts = match.group(1), _BRACKET.findall(match.group(2))
        if parts == [""]:
            out[name] = list(values)
        elif parts[0] == "" and len(parts) == 2:
            items = out.setdefault(name, [])
            if not isinstance(items, list):
                raise invalid(f"The field '{key}' conflicts with another.", name)
            while len(items) < len(values):
                items.append({})
            for item, value in zip(items, values, strict=False):
                if not isinstance(item, dict):
                    raise invalid(f"The field '{key}' conflicts with another.", name)
                item[parts[1]] = value
        elif len(parts) == 1 or (len(parts) == 2 and parts[0].isdigit()):
            *index, leaf = parts
            container: Any = out.setdefault(name, [] if index else {})
            if index:
                if not isinstance(container, list):
                    raise invalid(f"The field '{key}' conflicts with another.", name)
                position = int(index[0])
                while len(container) <= position:
                    container.append({})
                container = container[position]
            if not isinstance(container, dict):
                raise invalid(f"The field '{key}' conflicts with another.", name)
            container[leaf] = values[-1]
        else:
            raise invalid(f"The field '{key}' is nested deeper than this API reads.", name)
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, UploadedFile):
        return "a file"
    return "null" if value is None else "a string"


def reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    for name in body:
        if name not in allowed:
            raise invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")


def text(body: dict[str, Any], name: str, *, max_length: int, required: bool = True) -> str | None:
    """A string field of 1 to max_length characters."""
    if name not in body:
        if required:
            raise invalid(
                f"Missing required parameter: '{name}'.", name, "missing_required_parameter"
            )
        return None
    value = body[name]
    if not isinstance(value, str):
        raise invalid(
            f"Invalid type for '{name}': expected a string, but got {_json_type(value)} instead.",
            name,
            "invalid_type",
        )
    if not value:
        raise invalid(
            f"Invalid '{name}': empty string. Expected a string with minimum length 1, but got "
            "an empty string instead.",
            name,
            "empty_string",
        )
    if len(value) > max_length:
        raise invalid(
            f"Invalid '{name}': string too long. Expected a string with maximum length "
            f"{max_length}, but got a string with length {len(value)} instead.",
            name,
            "string_above_max_length",
        )
    return value


def choice(body: dict[str, Any], name: str, options: tuple[str, ...]) -> str | None:
    """One of `options` as a string (None when the field is absent)."""
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, str):
        raise invalid(
            f"Invalid type for '{name}': expected one of {', '.join(options)} as a string, but "
            f"got {_json_type(value)} instead.",
            name,
            "invalid_type",
        )
    if value not in options:
        listed = ", ".join(f"'{option}'" for option in options[:-1])
        raise invalid(
            f"Invalid value: '{value}'. Supported values are: {listed} and '{options[-1]}'.",
            name,
        )
    return value


def nested(body: dict[str, Any], name: str) -> Any:
    """A nested value; a form may also carry it as a JSON string."""
    value = body.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise invalid(
                f"Invalid '{name}': expected JSON, a file or bracketed form fields.",
                name,
                "invalid_type",
            ) from exc
    return value


# --- What each request asks for -------------------------------------------------------------


@dataclass(frozen=True)
class ImageReference:
    """An input_reference given as an object: exactly one of an address or a file id."""

    image_url: str = ""
    file_id: str = ""


@dataclass(frozen=True)
class VideoCreate:
    prompt: str
    model: str | None = None
    seconds: int | None = None  # None: the series' default length
    size: str | None = None  # None: the series' default size
    input_reference: UploadedFile | ImageReference | None = None
    character_ids: list[str] = field(default_factory=list)


def video_create(body: dict[str, Any]) -> VideoCreate:
    reject_unknown(body, {"prompt", "model", "seconds", "size", "input_reference", "characters"})
    prompt = text(body, "prompt", max_length=MAX_PROMPT) or ""
    model = text(body, "model", max_length=MAX_MODEL, required=False)
    seconds = choice(body, "seconds", SECONDS)
    return VideoCreate(
        prompt=prompt,
        model=model,
        seconds=int(seconds) if seconds else None,
        size=choice(body, "size", SIZES),
        input_reference=_input_reference(body),
        character_ids=_character_ids(body),
    )


def _input_reference(body: dict[str, Any]) -> UploadedFile | ImageReference | None:
    value = nested(body, "input_reference")
    if value is None or isinstance(value, UploadedFile):
        return value
    if (
        isinstance(value, dict)
        and set(value) in ({"image_url"}, {"file_id"})
        and isinstance(next(iter(value.values())), str)
        and next(iter(value.values()))
    ):
        return ImageReference(**value)
    raise invalid(
        "Invalid 'input_reference': expected an image file, or an object with exactly one of "
        "'image_url' or 'file_id'.",
        "input_reference",
        "invalid_type",
    )


def _character_ids(body: dict[str, Any]) -> list[str]:
    """The gateway convention `characters: [{"id": "char_…"}]` (not in OpenAI's spec)."""
    refs = nested(body, "characters")
    if refs is None:
        return []
    if not isinstance(refs, list) or not all(
        isinstance(ref, dict) and set(ref) == {"id"} and isinstance(ref["id"], str) for ref in refs
    ):
        raise invalid(
            'Invalid \'characters\': expected an array of objects like {"id": "char_…"}.',
            "characters",
            "invalid_type",
        )
    return [ref["id"] for ref in refs]


def video_remix(body: dict[str, Any]) -> str:
    """The remix's prompt."""
    reject_unknown(body, {"prompt"})
    return text(body, "prompt", max_length=MAX_PROMPT) or ""


@dataclass(frozen=True)
class VideoExtension:
    video_id: str
    prompt: str
    seconds: int  # the new segment's length


def video_extension(body: dict[str, Any]) -> VideoExtension:
    reject_unknown(body, {"prompt", "seconds", "video"})
    prompt = text(body, "prompt", max_length=MAX_PROMPT) or ""
    if "seconds" not in body:
        raise invalid(
            "Missing required parameter: 'seconds'.", "seconds", "missing_required_parameter"
        )
    seconds = int(choice(body, "seconds", EXTENSION_SECONDS) or 0)
    return VideoExtension(
        video_id=source_video_id(body, "extended"), prompt=prompt, seconds=seconds
    )


def source_video_id(body: dict[str, Any], verb: str) -> str:
    """The id in `video: {"id": …}`; an uploaded file is refused (Castboard changes only the
    videos it made, where their provider keeps them)."""
    value = nested(body, "video")
    if value is None:
        raise invalid("Missing required parameter: 'video'.", "video", "missing_required_parameter")
    if isinstance(value, UploadedFile):
        raise invalid(
            f"Castboard can only have its own videos {verb}: send 'video' as "
            '{"id": "video_…"}, not a file.',
            "video",
            "invalid_type",
        )
    if not isinstance(value, dict) or set(value) != {"id"} or not isinstance(value["id"], str):
        raise invalid(
            "Invalid 'video': expected an object with exactly an 'id'.", "video", "invalid_type"
        )
    return value["id"]


@dataclass(frozen=True)
class CharacterCreate:
    name: str
    video: UploadedFile


def character_create(body: dict[str, Any]) -> CharacterCreate:
    reject_unknown(body, {"name", "video"})
    name = text(body, "name", max_length=MAX_CHARACTER_NAME) or ""
    video = body.get("video")
    if video is None:
        raise invalid("Missing required parameter: 'video'.", "video", "missing_required_parameter")
    if not isinstance(video, UploadedFile):
        raise invalid(
            f"Invalid type for 'video': expected a file, but got {_json_type(video)} instead.",
            "video",
            "invalid_type",
        )
    return CharacterCreate(name=name, video=video)


@dataclass(frozen=True)
class ListQuery:
    after: int | None  # the pk of the last take of the previous page
    limit: int
    order: str


def list_query(query: dict[str, str]) -> ListQuery:
    order = choice(query, "order", ORDERS) or "desc"
    limit_text = query.get("limit", str(DEFAULT_LIMIT))
    if not limit_text.isdigit() or int(limit_text) > MAX_LIMIT:
        raise invalid(
            f"Invalid 'limit': expected an integer between 0 and {MAX_LIMIT}, got '{limit_text}'.",
            "limit",
        )
    after = query.get("after") or None
    if after is not None and not re.fullmatch(r"video_\d+", after):
        raise invalid(
            f"Invalid 'after': expected the id of a video from the previous page (like "
            f"video_123), got '{after}'.",
            "after",
        )
    return ListQuery(
        after=int(after.removeprefix("video_")) if after else None,
        limit=int(limit_text),
        order=order,
    )


def handle_for(name: str) -> str:
    """A library handle made from a character's name: "Captain Mina!" → "captain_mina"."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    handle = re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")[:40].strip("_")
    return handle if len(handle) >= 2 else "character"


# --- Answers --------------------------------------------------------------------------------


def _unix(moment) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def _requested(job: Job) -> JobRequest | None:
    try:
        return job.job_request.request
    except RequestShapeError:
        return None


def video_seconds(take: Take) -> int:
    """How long the take's video is (asked for): an extension's is the stitched total."""
    job = take.job
    requested = _requested(job)
    if requested is None:
        return take.scene.duration
    if job.kind != JobKind.EXTEND:
        return requested.seconds
    if take.parent is not None:
        return video_seconds(take.parent) + requested.seconds
    made = job.result.get("duration")
    return round(made) if isinstance(made, int | float) else requested.seconds


def video_prompt(take: Take) -> str:
    """The words the video was asked for with: a remix's or an extension's own, else its
    scene's prompt (where the characters a script named appear as their @handles)."""
    requested = _requested(take.job)
    if take.job.kind in (JobKind.REMIX, JobKind.EXTEND) and requested is not None:
        return requested.prompt
    return take.scene.prompt


def video_error(job: Job) -> dict[str, str]:
    if job.state == JobState.CANCELLED:
        return {
            "code": "cancelled",
            "message": job.error_message
            or "This video was cancelled in Castboard before it was finished.",
        }
    return {
        "code": ERROR_CODES.get(job.error_code, job.error_code or "video_generation_failed"),
        "message": job.error_message or "The video could not be made.",
    }


def video_resource(take: Take) -> dict[str, Any]:
    """A take as OpenAI's Video object. Castboard keeps its files, so nothing expires."""
    job = take.job
    account = job.provider_account
    status = STATUS[job.state]
    requested = _requested(job)
    return {
        "id": video_id(take),
        "object": "video",
        "model": account.model or account.kind,
        "status": status,
        "progress": 100 if status == "completed" else job.progress,
        "created_at": _unix(take.created_at),
        "completed_at": _unix(job.finished_at) if job.is_terminal else None,
        "expires_at": None,
        "prompt": video_prompt(take),
        "size": requested.size if requested is not None else take.scene.size,
        "seconds": str(video_seconds(take)),
        "remixed_from_video_id": (
            f"video_{take.parent_id}" if job.kind == JobKind.REMIX and take.parent_id else None
        ),
        "error": video_error(job) if status == "failed" else None,
    }


def poll_after_ms(job: Job) -> int | None:
    """When a client should ask again about an unfinished video (None once it is finished):
    while it is at its provider, once Castboard has looked at it there again; while it is
    being sent or downloaded, shortly."""
    if job.is_terminal:
        return None
    if job.state not in (JobState.QUEUED, JobState.RUNNING) or job.next_poll_at is None:
        return SHORT_POLL_AFTER_MS
    wait = (job.next_poll_at - timezone.now()).total_seconds() * 1000 + 100
    low, high = POLL_AFTER_MS
    return int(min(max(wait, low), high))


def video_list(takes: list[Take], *, has_more: bool) -> dict[str, Any]:
    data = [video_resource(take) for take in takes]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def video_deleted(public_id: str) -> dict[str, Any]:
    return {"id": public_id, "object": "video.deleted", "deleted": True}


def character_resource(character: Character) -> dict[str, Any]:
    return {
        "id": character_id(character),
        "name": character.name,
        "created_at": _unix(character.created_at),
    }
