"""Characters (REST API): the library, each character's references and versions.

The library holds the workspace's own characters and those another workspace shared with
it (accepted). Shared ones are for reading and mentioning only: changing one is a 404,
as on the web, since it is not this workspace's to change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, File, Form, Path, Query, Router, Schema, Status, UploadedFile

from characters import services
from characters.models import Character, CharacterVersion, ReferenceAsset
from characters.selectors import characters_visible_to
from characters.uploads import rejected_upload_messages
from studio import access, generation, throttles
from studio.api.common import ID_MAX, problems, require, token_of
from studio.api.middleware import error
from studio.api.pagination import Page, paginate
from studio.http import serve_stored_file
from studio.models import ApiToken

router = Router(tags=["Characters"])

CharacterId = Annotated[int, Path(ge=1, le=ID_MAX)]
AssetId = Annotated[int, Path(ge=1, le=ID_MAX)]


# --- Schemas ----------------------------------------------------------------------------------


class ReferenceOut(Schema):
    """An image or short clip that shows what the character looks like."""

    id: int
    kind: Literal["image", "clip"]
    label: str = Field(description="For example: front, profile.")
    original_name: str = Field(description="The file's name as it was uploaded or imported.")
    content_type: str = Field(examples=["image/png"])
    size_bytes: int
    width: int
    height: int
    duration_seconds: float | None = Field(None, description="Clips only.")
    created_at: datetime
    file_url: str = Field(
        description="GET it with the same token for the file itself (ranges supported)."
    )
    thumbnail_url: str = Field(description="A small JPEG of it, with the same token.")


class CharacterIn(Schema):
    name: str = Field(max_length=120, examples=["Mina Park"])
    handle: str = Field(
        max_length=40,
        description="2 to 40 lowercase letters, digits or underscores; scenes say @handle.",
        examples=["mina"],
    )
    description: str = Field(
        "",
        description="Stable traits (look, outfit, style); it travels with every take.",
        examples=["Green coat, round glasses, short black hair."],
    )


class CharacterPatch(Schema):
    """Only the fields sent change. A new handle is written into the workspace's scenes
    that mention the old one; a new description makes a new version when one is in use."""

    name: str | None = Field(None, max_length=120)
    handle: str | None = Field(None, max_length=40)
    description: str | None = None


class CharacterOut(Schema):
    id: int
    name: str
    handle: str = Field(examples=["mina"])
    description: str
    shared: bool = Field(
        description="Another workspace's character shared with this one: read-only here."
    )
    owner_workspace: str = Field(description="The slug of the workspace that owns it.")
    version: int = Field(description="The number of its latest version.")
    created_at: datetime
    updated_at: datetime


class CharacterDetailOut(CharacterOut):
    references: list[ReferenceOut] = Field(description="Its current references, oldest first.")


class CharacterUpdatedOut(CharacterDetailOut):
    scenes_rewritten: int = Field(
        description="How many of this workspace's scene prompts now say the new @handle."
    )


class VersionOut(Schema):
    number: int
    description: str
    change: str = Field(description="What this version changed, in plain words.")
    reference_ids: list[int] = Field(description="The references this version shows.")
    take_count: int = Field(description="Takes made with this version.")
    created_at: datetime


class ImportIn(Schema):
    url: str = Field(
        max_length=2000,
        description="An image or clip on a public website; Castboard downloads and checks it. "
        "Private and loopback addresses are refused.",
        examples=["https://example.com/mina/front.png"],
    )
    label: str = Field("", max_length=80, examples=["front"])


class FromTakeIn(Schema):
    take_id: int = Field(ge=1, le=ID_MAX, description="A finished take of this workspace.")
    start: float = Field(ge=0, le=3600, description="Seconds into the take.", examples=[0.5])
    end: float = Field(ge=0, le=3600, description="Seconds into the take.", examples=[3.0])


class FromTakeOut(Schema):
    clip: ReferenceOut
    stills: list[ReferenceOut]
    registration_job_id: int | None = Field(
        None,
        description="Where the take's provider keeps characters: the job registering it there.",
    )


# --- Helpers ----------------------------------------------------------------------------------


def _library(token: ApiToken) -> QuerySet[Character]:
    return (
        characters_visible_to(workspace=token.workspace)
        .select_related("workspace")
        .annotate(version_number=Max("versions__number"))
    )


def _character(token: ApiToken, character_id: int, *, shared: bool = True) -> Character:
    """The character through studio.access, with its latest version number."""
    found = access.character_for(token, character_id, shared=shared)
    found.version_number = found.versions.aggregate(n=Max("number"))["n"]
    return found


def _changeable(request: HttpRequest, character_id: int) -> tuple[ApiToken, Character]:
    """An own character the token may change: 404 for shared or unknown ones, then 403."""
    token = token_of(request)
    character = access.character_for(token, character_id, shared=False)
    require(request, "edit")
    return token, character


def _reference(request: HttpRequest, asset: ReferenceAsset) -> ReferenceOut:
    args = {"character_id": asset.character_id, "asset_id": asset.pk}
    file_url = request.build_absolute_uri(reverse("api:character_reference_file", kwargs=args))
    return ReferenceOut(
        id=asset.pk,
        kind=asset.kind,
        label=asset.label,
        original_name=asset.original_name,
        content_type=asset.content_type,
        size_bytes=asset.size_bytes,
        width=asset.width,
        height=asset.height,
        duration_seconds=asset.duration_seconds,
        created_at=asset.created_at,
        file_url=file_url,
        thumbnail_url=f"{file_url}?variant=thumbnail",
    )


def _out(token: ApiToken, character: Character) -> dict:
    return {
        "id": character.pk,
        "name": character.name,
        "handle": character.handle,
        "description": character.description,
        "shared": character.workspace_id != token.workspace_id,
        "owner_workspace": character.workspace.slug,
        "version": character.version_number or 1,
        "created_at": character.created_at,
        "updated_at": character.updated_at,
    }


def _detail(request: HttpRequest, character: Character, **extra: object) -> dict:
    references = ReferenceAsset.current.filter(character=character).order_by("created_at", "pk")
    return {
        **_out(token_of(request), character),
        "references": [_reference(request, asset) for asset in references],
        **extra,
    }


# --- Characters -------------------------------------------------------------------------------


@router.get(
    "/characters",
    response={200: Page[CharacterOut], **problems(422)},
    summary="The character library",
    description="Own characters and those shared with this workspace, by name.",
)
def character_list(
    request,
    q: Annotated[str | None, Query(max_length=120, description="Part of a name or handle.")] = None,
    shared: Annotated[
        bool | None,
        Query(description="true: only shared ones; false: only this workspace's own."),
    ] = None,
    cursor: str | None = None,
    limit: int = 50,
):
    token = token_of(request)
    characters = _library(token)
    if q:
        needle = q.strip().lstrip("@")
        characters = characters.filter(Q(name__icontains=needle) | Q(handle__icontains=needle))
    if shared is True:
        characters = characters.exclude(workspace=token.workspace)
    elif shared is False:
        characters = characters.filter(workspace=token.workspace)
    rows, next_cursor = paginate(
        characters, cursor=cursor, limit=limit, field="name", descending=False
    )
    return {"items": [_out(token, c) for c in rows], "next_cursor": next_cursor}


@router.post(
    "/characters",
    response={201: CharacterDetailOut, **problems(403, 422)},
    summary="Add a character",
    description="Owners and editors. Add references afterwards (upload, import or from a take).",
)
def character_create(request, payload: CharacterIn):
    token = require(request, "edit")
    character = services.character_create(
        workspace=token.workspace,
        name=payload.name,
        handle=payload.handle,
        description=payload.description,
        created_by=token.user,
    )
    character.version_number = 1
    return Status(201, _detail(request, character))


@router.get(
    "/characters/{character_id}",
    response={200: CharacterDetailOut, **problems(404)},
    summary="One character, with its references",
)
def character_detail(request, character_id: CharacterId):
    return _detail(request, _character(token_of(request), character_id))


@router.patch(
    "/characters/{character_id}",
    response={200: CharacterUpdatedOut, **problems(403, 404, 422)},
    summary="Change a character",
    description="The workspace's own characters only (a shared one is 404 here).",
)
def character_update(request, payload: CharacterPatch, character_id: CharacterId):
    token, character = _changeable(request, character_id)
    changes = payload.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None:
            raise ValidationError({field: "Give a value, or leave the field out to keep it."})
    saved, rewritten = services.character_update(
        character=character,
        name=changes.get("name", character.name),
        handle=changes.get("handle", character.handle),
        description=changes.get("description", character.description),
        updated_by=token.user,
    )
    return _detail(request, _character(token, saved.pk, shared=False), scenes_rewritten=rewritten)


@router.delete(
    "/characters/{character_id}",
    response={204: None, **problems(403, 404)},
    summary="Delete a character",
    description="Scenes that mention it will need another character before they generate.",
)
def character_delete(request, character_id: CharacterId):
    _, character = _changeable(request, character_id)
    services.character_delete(character=character)
    return Status(204, None)


# --- References -------------------------------------------------------------------------------


@router.get(
    "/characters/{character_id}/references",
    response={200: Page[ReferenceOut], **problems(404, 422)},
    summary="A character's current references, oldest first",
)
def reference_list(
    request,
    character_id: CharacterId,
    kind: Literal["image", "clip"] | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    character = access.character_for(token_of(request), character_id)
    references = ReferenceAsset.current.filter(character=character)
    if kind:
        references = references.filter(kind=kind)
    rows, next_cursor = paginate(references, cursor=cursor, limit=limit, descending=False)
    return {"items": [_reference(request, a) for a in rows], "next_cursor": next_cursor}


@router.post(
    "/characters/{character_id}/references",
    response={201: ReferenceOut, **problems(403, 404, 422)},
    summary="Upload a reference",
    description="Multipart, the file in the field `file`: a JPEG, PNG or WebP image or an MP4, "
    "MOV or WebM clip, checked by its content (not its name) and its size.",
)
def reference_upload(
    request,
    character_id: CharacterId,
    file: Annotated[UploadedFile | None, File(description="The image or clip.")] = None,
    label: Annotated[
        str, Form(max_length=80, pattern=r"^[^\x00]*$", description="For example: front.")
    ] = "",
):
    token, character = _changeable(request, character_id)
    if refused := rejected_upload_messages(request, "file"):
        raise ValidationError({"file": refused})
    if file is None:
        raise ValidationError({"file": "Send the image or clip as the multipart field 'file'."})
    try:
        asset = services.asset_add(
            character=character, upload=file, label=label, created_by=token.user
        )
    except ValidationError as refused:
        raise ValidationError({"file": refused.messages}) from None
    return Status(201, _reference(request, asset))


@router.post(
    "/characters/{character_id}/references/import",
    response={201: ReferenceOut, **problems(403, 404, 422, 429)},
    summary="Import a reference from a web address",
    description="Castboard downloads the file (public addresses only) and checks it like an "
    "upload. Imports are rate limited per token owner and per workspace: over the limit is a "
    "429 with Retry-After, and nothing is fetched.",
)
def reference_import(request, payload: ImportIn, character_id: CharacterId):
    token, character = _changeable(request, character_id)
    if refusal := throttles.reference_import(request, token):
        return error(
            "api",
            429,
            throttles.import_refused_message(refusal),
            code="rate_limit_exceeded",
            headers={"Retry-After": refusal.retry_after_header},
        )
    try:
        fetched = services.asset_fetch(url=payload.url.strip())
    except ValidationError as refused:
        raise ValidationError({"url": refused.messages}) from None
    try:
        asset = services.asset_add(
            character=character, upload=fetched, label=payload.label, created_by=token.user
        )
    except ValidationError as refused:
        raise ValidationError({"url": refused.messages}) from None
    finally:
        fetched.close()
    return Status(201, _reference(request, asset))


@router.post(
    "/characters/{character_id}/references/from-take",
    response={201: FromTakeOut, **problems(403, 404, 422)},
    summary="Cut a span of a finished take into the character's references",
    description="The span becomes a clip and stills of the character; where the take's "
    "provider keeps characters it also learns this one (a registration job, which may cost).",
)
def reference_from_take(request, payload: FromTakeIn, character_id: CharacterId):
    token, character = _changeable(request, character_id)
    take = access.take_for(token, payload.take_id)
    if payload.end <= payload.start:
        raise ValidationError({"end": "The span must end after it starts."})
    made = generation.character_from_take(
        take=take,
        character=character,
        start=payload.start,
        end=payload.end,
        created_by=token.user,
    )
    return Status(
        201,
        {
            "clip": _reference(request, made.clip),
            "stills": [_reference(request, still) for still in made.stills],
            "registration_job_id": made.registration.pk if made.registration else None,
        },
    )


@router.get(
    "/characters/{character_id}/references/{asset_id}/file",
    url_name="character_reference_file",
    summary="A reference's file, or its thumbnail",
    description="The bytes, with the file's content type; `variant=thumbnail` for a small JPEG.",
    response={200: None, **problems(404)},
)
def reference_file(
    request,
    character_id: CharacterId,
    asset_id: AssetId,
    variant: Literal["original", "thumbnail"] = "original",
) -> HttpResponse:
    # Any reference, retired ones too: an older version still shows them (as on the web).
    asset = access.asset_for(access.character_for(token_of(request), character_id), asset_id)
    if variant == "thumbnail":
        return serve_stored_file(request, asset.thumbnail, content_type="image/jpeg")
    return serve_stored_file(request, asset.file, content_type=asset.content_type)


@router.delete(
    "/characters/{character_id}/references/{asset_id}",
    response={204: None, **problems(403, 404)},
    summary="Take a reference out of the character's look",
    description="A version in use keeps showing it (its file stays for that version).",
)
def reference_delete(request, character_id: CharacterId, asset_id: AssetId):
    token, character = _changeable(request, character_id)
    asset = access.asset_for(character, asset_id)
    if asset.retired_at is not None:  # kept for an older version only: nothing to remove
        raise Http404
    services.asset_delete(asset=asset, deleted_by=token.user)
    return Status(204, None)


# --- Versions ---------------------------------------------------------------------------------


@router.get(
    "/characters/{character_id}/versions",
    response={200: Page[VersionOut], **problems(404, 422)},
    summary="A character's versions, newest first",
    description="A version that a take or a series uses never changes: editing the character "
    "then makes the next one.",
)
def version_list(request, character_id: CharacterId, cursor: str | None = None, limit: int = 50):
    character = access.character_for(token_of(request), character_id)
    versions = CharacterVersion.objects.filter(character=character).annotate(
        take_count=Count("takes", distinct=True)
    )
    rows, next_cursor = paginate(versions, cursor=cursor, limit=limit, field="number")
    reference_ids: dict[int, list[int]] = {}
    links = CharacterVersion.assets.through.objects.filter(
        characterversion_id__in=[v.pk for v in rows]
    ).order_by("referenceasset_id")
    for link in links:
        reference_ids.setdefault(link.characterversion_id, []).append(link.referenceasset_id)
    items = [
        VersionOut(
            number=v.number,
            description=v.description,
            change=v.change,
            reference_ids=reference_ids.get(v.pk, []),
            take_count=v.take_count,
            created_at=v.created_at,
        )
        for v in rows
    ]
    return {"items": items, "next_cursor": next_cursor}
