"""The OpenAI Videos API at /gateway/openai/v1/: a script written for OpenAI's Videos API
works against Castboard by changing its base URL and its key (a Castboard API token).

Each call answers as OpenAI's spec does (specs/openai-videos.openapi.yaml), field for
field, errors included (`{"error": {message, type, param, code}}`):

- `POST /videos` makes a scene in the Inbox episode of the token's series and a take of it
  (studio.gateways.inbox): the series' routing policy picks the provider, and the series'
  and the workspace's budgets apply (no room: 429 `insufficient_quota`; no provider can
  make it: 400). `seconds` and `size` left out are the series' defaults. `model` is taken
  for compatibility, but the routing policy chooses the provider; the answer's `model` says
  which one's. `input_reference` becomes the picture the scene starts from (so only a
  provider that starts videos from a picture can make it). The gateway convention
  `characters: [{"id": "char_…"}]` names library characters (their name in the prompt
  becomes their @handle). Takes count against the web's generation rate limits
  (studio.throttles).
- `GET /videos`, `GET /videos/{id}` list and read the workspace's takes (`video_<take id>`);
  an unfinished one's answer carries `openai-poll-after-ms`. `GET /videos/{id}/content`
  streams its video, thumbnail or spritesheet (404 until it is ready, as at OpenAI).
  Castboard keeps its files, so `expires_at` is null.
- `DELETE /videos/{id}` deletes the take as the web does (an unfinished one is cancelled
  first; what it cost stays on record). `POST /videos/{id}/remix` and
  `POST /videos/extensions` make a remix or an extension at the provider that made it.
  `POST /videos/edits` is refused: no provider Castboard speaks edits videos.
- `POST /videos/characters` adds a library character with the clip as its reference;
  `GET /videos/characters/{id}` reads one.

Reading needs any token; making, changing or deleting an editor's or an owner's (else 403).
Another workspace's id is a 404, like an unknown one.

Retries: the official SDK retries a POST by itself on 408/409/429/5xx and sends no
idempotency key, so a retried create could make (and pay for) a second video. Castboard
honours `Idempotency-Key` on every POST (studio.api.middleware: the first answer is
replayed, nothing runs twice): send one with each create, e.g.
`client.videos.create(..., extra_headers={"Idempotency-Key": str(uuid4())})`, or switch the
SDK's retries off (`max_retries=0`).
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from PIL import Image

from characters import services as characters
from characters.models import Character, ReferenceAsset
from jobs.models import JobKind, JobState
from studio import generation, throttles
from studio.gateways import inbox
from studio.gateways import openai_wire as wire
from studio.gateways.openai_wire import WireError, invalid
from studio.http import serve_stored_file
from studio.models import ApiToken, Take
from studio.project.ratelimit import Refusal

View = Callable[..., HttpResponse]

# Where a scene field a refusal names is in OpenAI's request.
PARAMS = {"prompt": "prompt", "duration": "seconds", "size": "size"}
GATEWAY_LABEL = "sent through the OpenAI gateway"


def endpoint(*methods: str) -> Callable[[View], View]:
    """A gateway view: CSRF-free (a bearer token authenticates it), these methods only, and
    every refusal in OpenAI's error shape."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def run(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if request.method not in methods:
                refused = WireError(
                    405,
                    f"{request.method} is not allowed on {request.path}; use "
                    f"{' or '.join(methods)}.",
                    code="method_not_allowed",
                    headers={"Allow": ", ".join(methods)},
                )
                return refused.response()
            try:
                return view(request, *args, **kwargs)
            except WireError as refused:
                return refused.response()
            except PermissionDenied:
                return _forbidden().response()
            except Http404:
                return WireError(404, "Not found.", code="not_found").response()

        return run

    return decorate


def _forbidden() -> WireError:
    return WireError(
        403,
        "This token may read videos and characters but not make, change or delete them: it "
        "has a viewer's or reviewer's role. An owner can make an editor token on the "
        "workspace's API page.",
        code="insufficient_permissions",
    )


def _token(request: HttpRequest) -> ApiToken:
    return request.api_token  # set by studio.api.middleware, which refuses calls without one


def _editor(request: HttpRequest) -> ApiToken:
    """The token, if its role may make and change things (else 403)."""
    token = _token(request)
    if not token.can_edit:
        raise _forbidden()
    return token


def _take(token: ApiToken, public_id: str) -> Take:
    try:
        return inbox.take_by_id(token, public_id)
    except Http404:
        raise WireError(
            404,
            f"Video with id '{public_id}' not found.",
            code="video_not_found",
        ) from None


def _character(token: ApiToken, public_id: str, *, param: str | None = None) -> Character:
    """A library character by its `char_…` id: 404, or 400 naming `param` where a request
    body refers to it."""
    try:
        return inbox.character_by_id(token, public_id)
    except Http404:
        message = f"Character '{public_id}' not found."
        if param:
            raise invalid(message, param, "character_not_found") from None
        raise WireError(404, message, code="character_not_found") from None


def _throttled(request: HttpRequest, token: ApiToken) -> None:
    """Count a request that makes a take, as the web counts one (per workspace and per the
    person the token acts for)."""
    if refusal := throttles.generate(request, token):
        raise _too_many(
            refusal, "That is more videos than this workspace or token may start in a short while"
        )


def _too_many(refusal: Refusal, what: str) -> WireError:
    return WireError(
        429,
        f"{what}; nothing was made or charged. Try again in {refusal.wait_in_words}.",
        code="rate_limit_exceeded",
        headers={"Retry-After": refusal.retry_after_header},
    )


def _refused(error: ValidationError) -> WireError:
    """A service's refusal: a budget with no room is OpenAI's insufficient_quota (429), any
    other reason (no provider can make it, a bad field) a 400 that says why."""
    message = " ".join(error.messages)
    if any(e.code == generation.OVER_BUDGET for e in getattr(error, "error_list", [])):
        return WireError(429, message, code="insufficient_quota", error_type="insufficient_quota")
    fields = list(getattr(error, "error_dict", {}))
    return invalid(message, PARAMS.get(fields[0]) if fields else None, "invalid_request")


def _video(take: Take) -> JsonResponse:
    """The take as a Video, with the poll hint while it is unfinished."""
    response = JsonResponse(wire.video_resource(take))
    wait = wire.poll_after_ms(take.job)
    if wait is not None:
        response[wire.POLL_HEADER] = str(wait)
    return response


# --- Videos -----------------------------------------------------------------------------------


@endpoint("GET", "POST")
def videos(request: HttpRequest) -> HttpResponse:
    """GET: the workspace's takes, newest first unless `order=asc`. POST: make one."""
    if request.method == "POST":
        return _video_create(request)
    query = wire.list_query(request.GET.dict())
    token = _token(request)
    takes = Take.objects.filter(scene__episode__series__workspace=token.workspace).select_related(
        "job__provider_account", "scene", "parent__job"
    )
    descending = query.order == "desc"
    if query.after is not None:  # a cursor: what comes after that take in this order
        takes = takes.filter(pk__lt=query.after) if descending else takes.filter(pk__gt=query.after)
    ordered = takes.order_by("-pk" if descending else "pk")
    page = list(ordered[: query.limit + 1])
    return JsonResponse(wire.video_list(page[: query.limit], has_more=len(page) > query.limit))


def _video_create(request: HttpRequest) -> HttpResponse:
    token = _editor(request)
    asked = wire.video_create(wire.payload(request))
    cast = [_character(token, public_id, param="characters") for public_id in asked.character_ids]
    prompt = inbox.mention_characters(asked.prompt, cast) if cast else asked.prompt
    _throttled(request, token)
    first_frame = _first_frame(request, token, asked.input_reference)
    try:
        take = inbox.inbox_take(
            token,
            prompt=prompt,
            seconds=asked.seconds,
            size=asked.size,
            title=_title(asked.prompt),
            first_frame=first_frame,
        )
    except ValidationError as error:
        raise _refused(error) from None
    finally:
        if first_frame is not None:
            first_frame.close()
    return _video(take)


def _title(prompt: str) -> str:
    """The scene's title on the storyboard: the prompt's first line, shortened."""
    line = prompt.strip().splitlines()[0] if prompt.strip() else ""
    return line if len(line) <= 80 else f"{line[:79].rstrip()}…"


def _first_frame(
    request: HttpRequest, token: ApiToken, reference: UploadedFile | wire.ImageReference | None
) -> UploadedFile | None:
    """The picture an `input_reference` gives, as an upload the scene starts from: the file
    sent, a data URL's picture, or one fetched from a public address (by the guarded
    fetcher, counted like the web's imports)."""
    if reference is None or isinstance(reference, UploadedFile):
        return reference
    if reference.file_id:
        raise invalid(
            "Castboard has no Files API, so 'input_reference.file_id' names nothing here: send "
            "the picture itself, or 'input_reference.image_url'.",
            "input_reference",
        )
    url = reference.image_url
    if url.startswith("data:"):
        return _from_data_url(url)
    if not url.startswith(("https://", "http://")):
        raise invalid(
            "Invalid 'input_reference.image_url': expected an http(s) address or a base64 data "
            "URL.",
            "input_reference",
        )
    if refusal := throttles.reference_import(request, token):
        raise _too_many(refusal, "Too many pictures fetched from web addresses in a short while")
    try:
        return characters.asset_fetch(url=url)
    except ValidationError as error:
        raise invalid(" ".join(error.messages), "input_reference") from None


def _from_data_url(url: str) -> UploadedFile:
    header, _, data = url.partition(",")
    content_type = header.removeprefix("data:").removesuffix(";base64")
    if not header.endswith(";base64") or not data:
        raise invalid(
            "Invalid 'input_reference.image_url': only base64 data URLs are supported.",
            "input_reference",
        )
    try:
        picture = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise invalid(
            "Invalid 'input_reference.image_url': the data URL is not valid base64.",
            "input_reference",
        ) from None
    extension = content_type.rsplit("/", 1)[-1] or "png"
    return SimpleUploadedFile(f"input_reference.{extension}", picture, content_type)


@endpoint("GET", "DELETE")
def video(request: HttpRequest, video_id: str) -> HttpResponse:
    token = _token(request)
    take = _take(token, video_id)
    if request.method == "GET":
        return _video(take)
    if not token.can_edit:
        raise _forbidden()
    inbox.inbox_take_delete(take)
    return JsonResponse(wire.video_deleted(video_id))


@endpoint("GET")
def video_content(request: HttpRequest, video_id: str) -> HttpResponse:
    """The video's MP4, or its thumbnail or spritesheet as WebP (as OpenAI sends them;
    Castboard keeps them as JPEG), once it is made; 404 before."""
    variant = wire.choice(request.GET.dict(), "variant", wire.VARIANTS) or "video"
    take = _take(_token(request), video_id)
    job = take.job
    if job.state != JobState.SUCCEEDED:
        detail = "failed and has no content" if job.is_terminal else "not ready yet"
        raise WireError(
            404,
            f"Video '{video_id}' is {detail}; its content is available once the status is "
            "completed.",
            code="video_not_ready",
        )
    stored: FieldFile = getattr(job, variant)
    if not stored:
        raise WireError(404, f"Video '{video_id}' has no {variant}.", code="variant_not_available")
    if variant == "video":
        return serve_stored_file(request, stored, content_type="video/mp4")
    response = HttpResponse(_as_webp(stored), content_type="image/webp")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _as_webp(stored: FieldFile) -> bytes:
    with stored.open("rb") as source, Image.open(source) as picture:
        out = io.BytesIO()
        picture.save(out, "WEBP", quality=85)
    return out.getvalue()


@endpoint("POST")
def video_remix(request: HttpRequest, video_id: str) -> HttpResponse:
    token = _editor(request)
    prompt = wire.video_remix(wire.payload(request))
    return _derive(request, token, _take(token, video_id), JobKind.REMIX, prompt)


@endpoint("POST")
def video_extensions(request: HttpRequest) -> HttpResponse:
    token = _editor(request)
    asked = wire.video_extension(wire.payload(request))
    try:
        source = inbox.take_by_id(token, asked.video_id)
    except Http404:
        raise invalid(
            f"Video with id '{asked.video_id}' not found.", "video", "video_not_found"
        ) from None
    return _derive(request, token, source, JobKind.EXTEND, asked.prompt, seconds=asked.seconds)


def _derive(
    request: HttpRequest,
    token: ApiToken,
    source: Take,
    kind: str,
    prompt: str,
    *,
    seconds: int | None = None,
) -> HttpResponse:
    _throttled(request, token)
    try:
        take = generation.take_derive(
            parent=source, kind=kind, prompt=prompt, seconds=seconds, created_by=token.created_by
        )
    except ValidationError as error:
        raise _refused(error) from None
    return _video(take)


@endpoint("POST")
def video_edits(request: HttpRequest) -> HttpResponse:
    _editor(request)
    raise invalid(
        "Castboard cannot edit videos: none of the providers it works with offers edits. "
        "Remix the video (POST /videos/{video_id}/remix) or extend it (POST /videos/extensions) "
        "instead.",
        None,
        "unsupported_operation",
    )


# --- Characters -------------------------------------------------------------------------------


@endpoint("POST")
def character_create(request: HttpRequest) -> HttpResponse:
    """A library character with the clip sent as its reference."""
    token = _editor(request)
    if request.content_type != "multipart/form-data":
        raise invalid(
            "This endpoint takes multipart/form-data with 'name' and a 'video' file.",
            None,
            "invalid_content_type",
        )
    asked = wire.character_create(wire.payload(request))
    try:
        with transaction.atomic():
            character = _new_character(token, asked.name)
            clip = characters.asset_add(
                character=character,
                upload=asked.video,
                label=GATEWAY_LABEL,
                created_by=token.created_by,
            )
            if clip.kind != ReferenceAsset.Kind.CLIP:
                clip.file.delete(save=False)
                clip.thumbnail.delete(save=False)
                raise invalid(
                    f"{clip.original_name} is a picture; a character is made from a video clip.",
                    "video",
                    "invalid_video",
                )
    except ValidationError as error:
        raise invalid(" ".join(error.messages), "video", "invalid_video") from None
    return JsonResponse(wire.character_resource(character))


def _new_character(token: ApiToken, name: str) -> Character:
    """A character named `name` with a handle made from it (numbered when it is taken)."""
    base = wire.handle_for(name)
    for n in range(1, 50):
        handle = base if n == 1 else f"{base[:36]}_{n}"
        if Character.objects.filter(workspace=token.workspace, handle=handle).exists():
            continue
        try:
            return characters.character_create(
                workspace=token.workspace, name=name, handle=handle, created_by=token.created_by
            )
        except ValidationError as error:
            if "handle" not in getattr(error, "error_dict", {}):
                raise invalid(" ".join(error.messages), "name") from None
    raise invalid(f"Every handle made from '{name}' is taken; choose another name.", "name")


@endpoint("GET")
def character(request: HttpRequest, character_id: str) -> HttpResponse:
    return JsonResponse(wire.character_resource(_character(_token(request), character_id)))


@csrf_exempt
def unknown(request: HttpRequest) -> HttpResponse:
    return WireError(
        404, f"Invalid URL ({request.method} {request.path})", code="unknown_url"
    ).response()


urlpatterns = [
    path("videos", videos, name="openai_videos"),
    path("videos/characters", character_create, name="openai_character_create"),
    path("videos/characters/<str:character_id>", character, name="openai_character"),
    path("videos/edits", video_edits, name="openai_video_edits"),
    path("videos/extensions", video_extensions, name="openai_video_extensions"),
    path("videos/<str:video_id>", video, name="openai_video"),
    path("videos/<str:video_id>/content", video_content, name="openai_video_content"),
    path("videos/<str:video_id>/remix", video_remix, name="openai_video_remix"),
    re_path(r"^", unknown),
]
