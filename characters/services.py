"""Writes to the character library: characters, reference assets, shares."""

from __future__ import annotations

import re
import uuid
from pathlib import PurePath

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from characters.fetch import FetchRefused, reference_fetch
from characters.media import MediaRejected, inspect_upload
from characters.mentions import MENTION_RE
from characters.models import Character, CharacterShare, ReferenceAsset
from studio.models import Scene, Workspace

_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}


def _handle_taken(*, workspace: Workspace, handle: str, exclude_pk: int | None = None) -> bool:
    return (
        Character.objects.filter(workspace=workspace, handle=handle).exclude(pk=exclude_pk).exists()
    )


def character_create(
    *,
    workspace: Workspace,
    name: str,
    handle: str,
    description: str = "",
    created_by: AbstractBaseUser | None = None,
) -> Character:
    handle = handle.lower()
    if _handle_taken(workspace=workspace, handle=handle):
        raise ValidationError({"handle": f"@{handle} is already used in this workspace."})
    character = Character(
        workspace=workspace,
        name=name,
        handle=handle,
        description=description,
        created_by=created_by,
    )
    character.full_clean()
    try:
        with transaction.atomic():
            character.save()
    except IntegrityError:  # a concurrent create took the handle between check and save
        raise ValidationError({"handle": f"@{handle} is already used in this workspace."}) from None
    return character


def character_update(
    *, character: Character, name: str, handle: str, description: str
) -> tuple[Character, int]:
    """Save the character; a new handle is also written into its workspace's scenes.

    Returns the character and how many scene prompts now say @new instead of @old
    (0 when the handle stayed). Both happen in one transaction, so a prompt never
    names a handle that no longer exists.
    """
    handle = handle.lower()
    if _handle_taken(workspace=character.workspace, handle=handle, exclude_pk=character.pk):
        raise ValidationError({"handle": f"@{handle} is already used in this workspace."})
    old_handle = Character.objects.values_list("handle", flat=True).get(pk=character.pk)
    character.name, character.handle, character.description = name, handle, description
    character.full_clean()
    try:
        with transaction.atomic():
            character.save()
            rewritten = (
                _rewrite_mentions(character=character, old=old_handle, new=handle)
                if handle != old_handle
                else 0
            )
    except IntegrityError:  # a concurrent save took the handle between check and save
        raise ValidationError({"handle": f"@{handle} is already used in this workspace."}) from None
    return character, rewritten


def _rewrite_mentions(*, character: Character, old: str, new: str) -> int:
    """Replace whole @old mentions with @new in the owning workspace's scenes that mention it.

    Scenes of workspaces the character is shared with are theirs to edit and are left as
    they are.
    """
    scenes = (
        Scene.objects.select_for_update(of=("self",))
        .filter(episode__series__workspace_id=character.workspace_id, mentions=character)
        .order_by("pk")
    )

    def rename(match: re.Match[str]) -> str:
        return f"@{new}" if match.group(1).lower() == old else match.group(0)

    now = timezone.now()
    changed = []
    for scene in scenes:
        prompt = MENTION_RE.sub(rename, scene.prompt)
        if prompt != scene.prompt:
            scene.prompt, scene.updated_at = prompt, now
            changed.append(scene)
    Scene.objects.bulk_update(changed, ["prompt", "updated_at"])
    return len(changed)


def asset_check(*, upload: UploadedFile) -> None:
    """Raise a ValidationError naming the file unless it is an acceptable reference."""
    try:
        inspect_upload(upload, name=PurePath(upload.name or "upload").name)
    except MediaRejected as rejected:
        raise ValidationError(str(rejected)) from None


def asset_fetch(*, url: str) -> UploadedFile:
    """Download a reference from a public web address and check it like an upload.

    Raises ValidationError with a plain message when the address, the download or the
    file's content is refused. The caller closes the file once it is stored.
    """
    try:
        upload = reference_fetch(url)
    except FetchRefused as refused:
        raise ValidationError(refused.message) from None
    try:
        asset_check(upload=upload)
    except ValidationError:
        upload.close()
        raise
    return upload


def asset_add(
    *,
    character: Character,
    upload: UploadedFile,
    label: str = "",
    created_by: AbstractBaseUser | None = None,
) -> ReferenceAsset:
    """Check an uploaded file by its content and store it with a thumbnail.

    Raises ValidationError with a plain message naming the file when it is refused.
    """
    name = PurePath(upload.name or "upload").name
    try:
        media = inspect_upload(upload, name=name)
    except MediaRejected as rejected:
        raise ValidationError(str(rejected)) from None
    stem = uuid.uuid4().hex
    asset = ReferenceAsset(
        character=character,
        kind=media.kind,
        label=label,
        original_name=name[:255],
        content_type=media.content_type,
        size_bytes=upload.size or 0,
        width=media.width,
        height=media.height,
        duration_seconds=media.duration_seconds,
        codec=media.codec,
        dominant_color=media.dominant_color,
        created_by=created_by,
    )
    asset.file.save(f"{stem}.{_EXTENSIONS[media.content_type]}", upload, save=False)
    asset.thumbnail.save(f"{stem}-thumb.jpg", ContentFile(media.thumbnail), save=False)
    try:
        asset.save()
    except Exception:
        # Never leave orphaned files behind a row that does not exist.
        asset.file.delete(save=False)
        asset.thumbnail.delete(save=False)
        raise
    return asset


def asset_delete(*, asset: ReferenceAsset) -> None:
    files = [asset.file, asset.thumbnail]
    asset.delete()
    for stored in files:
        stored.delete(save=False)


def character_delete(*, character: Character) -> None:
    assets = list(character.assets.all())
    character.delete()
    for asset in assets:
        asset.file.delete(save=False)
        asset.thumbnail.delete(save=False)


def character_share(
    *, character: Character, workspace_slug: str, created_by: AbstractBaseUser | None = None
) -> CharacterShare:
    """Let another workspace mention (not change) the character."""
    try:
        target = Workspace.objects.get(slug=workspace_slug.strip().lower())
    except Workspace.DoesNotExist:
        raise ValidationError(f"No workspace is called “{workspace_slug}”.") from None
    if target.pk == character.workspace_id:
        raise ValidationError("A character is already available in its own workspace.")
    share, created = CharacterShare.objects.get_or_create(
        character=character, workspace=target, defaults={"created_by": created_by}
    )
    if not created:
        raise ValidationError(f"{character.name} is already shared with {target.name}.")
    return share


def character_unshare(*, share: CharacterShare) -> None:
    share.delete()
