"""Writes to the character library: characters, reference assets, shares."""

from __future__ import annotations

import re
import uuid
from pathlib import PurePath

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from characters.fetch import FetchRefused, reference_fetch
from characters.mentions import MENTION_RE
from characters.models import Character, CharacterShare, CharacterVersion, ReferenceAsset
from characters.reference_checks import MediaRejected, inspect_upload
from jobs.models import Registration
from studio.models import Membership, Role, Scene, Workspace

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
            CharacterVersion.objects.create(
                character=character,
                number=1,
                description=description,
                change="Created.",
                created_by=created_by,
            )
    except IntegrityError:  # a concurrent create took the handle between check and save
        raise ValidationError({"handle": f"@{handle} is already used in this workspace."}) from None
    return character


def character_update(
    *,
    character: Character,
    name: str,
    handle: str,
    description: str,
    updated_by: AbstractBaseUser | None = None,
) -> tuple[Character, int]:
    """Save the character; a new handle is also written into its workspace's scenes, and a
    new description is a new version (character_revise).

    Returns the character and how many scene prompts now say @new instead of @old
    (0 when the handle stayed). Both happen in one transaction, so a prompt never
    names a handle that no longer exists.
    """
    handle = handle.lower()
    if _handle_taken(workspace=character.workspace, handle=handle, exclude_pk=character.pk):
        raise ValidationError({"handle": f"@{handle} is already used in this workspace."})
    old_handle, old_description = Character.objects.values_list("handle", "description").get(
        pk=character.pk
    )
    character.name, character.handle, character.description = name, handle, description
    character.full_clean()
    try:
        with transaction.atomic():
            character.save()
            if description != old_description:
                character_revise(
                    character=character,
                    description=description,
                    change="Description edited.",
                    created_by=updated_by,
                )
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
        with transaction.atomic():
            asset.save()
            character_revise(
                character=character,
                add=[asset],
                change=f"Added {asset.get_kind_display().lower()} {asset.original_name}.",
                created_by=created_by,
            )
    except Exception:
        # Never leave orphaned files behind a row that does not exist.
        asset.file.delete(save=False)
        asset.thumbnail.delete(save=False)
        raise
    return asset


def asset_delete(*, asset: ReferenceAsset, deleted_by: AbstractBaseUser | None = None) -> None:
    """Take the reference out of the character's current look.

    A version that takes or series use keeps showing it, so then it is only retired
    (its files stay for that version); a reference no version keeps is deleted.
    """
    with transaction.atomic():
        character_revise(
            character=asset.character,
            retire=[asset],
            change=f"Removed {asset.get_kind_display().lower()} {asset.original_name}.",
            created_by=deleted_by,
        )
        if asset.versions.exists():
            ReferenceAsset.objects.filter(pk=asset.pk).update(retired_at=timezone.now())
            return
        files = [asset.file, asset.thumbnail]
        asset.delete()
    for stored in files:
        stored.delete(save=False)


# --- Versions ---------------------------------------------------------------------------------


def character_version_latest(character: Character) -> CharacterVersion:
    """The character's newest version (made at once for a character that has none)."""
    version = character.versions.order_by("-number").first()
    if version is None:  # a character made outside character_create (fixtures, admin)
        version = CharacterVersion.objects.create(
            character=character, number=1, description=character.description, change="Created."
        )
        version.assets.set(ReferenceAsset.current.filter(character=character))
    return version


def version_in_use(version: CharacterVersion) -> bool:
    """Whether anything rests on this version: a take made with it, a series pinned to it,
    or a registration at a provider. Such a version never changes again."""
    return (
        version.takes.exists()
        or version.series_pins.exists()
        or Registration.objects.filter(subject=version.subject).exists()
    )


def character_revise(
    *,
    character: Character,
    description: str | None = None,
    add: list[ReferenceAsset] | tuple = (),
    retire: list[ReferenceAsset] | tuple = (),
    change: str,
    created_by: AbstractBaseUser | None = None,
) -> CharacterVersion:
    """Change the character's current look: its description, references added or taken out.

    The newest version changes in place while nothing uses it yet (a character being set
    up does not pile up versions); once a take, a series pin or a registration rests on
    it, the change makes the next version and the old one stays as it was.
    """
    # One revision of a character at a time: two would both make "the next" version.
    Character.objects.select_for_update().filter(pk=character.pk).first()
    latest = character_version_latest(character)
    if version_in_use(latest):
        version = CharacterVersion.objects.create(
            character=character,
            number=latest.number + 1,
            description=latest.description if description is None else description,
            change=change,
            created_by=created_by,
            # A new look speaks as the old one did (the voice is not what versions track).
            voice_account_id=latest.voice_account_id,
            voice_id=latest.voice_id,
            voice_name=latest.voice_name,
            voice_sample=latest.voice_sample.name,
        )
        version.assets.set(latest.assets.all())
    else:
        version = latest
        if description is not None:
            version.description = description
        version.change = f"{version.change} {change}".strip()[-300:]
        version.save(update_fields=["description", "change"])
    if add:
        version.assets.add(*add)
    if retire:
        version.assets.remove(*retire)
    return version


def character_delete(*, character: Character) -> None:
    assets = list(character.assets.all())
    # Versions share one voice sample file by name: each is deleted once, with the character.
    samples = set(
        character.versions.exclude(voice_sample="").values_list("voice_sample", flat=True)
    )
    character.delete()
    for asset in assets:
        asset.file.delete(save=False)
        asset.thumbnail.delete(save=False)
    for name in samples:
        default_storage.delete(name)


Status = CharacterShare.Status
_IN_USE = (Status.OFFERED, Status.ACCEPTED)


def character_share(
    *, character: Character, workspace_slug: str, offered_by: AbstractBaseUser | None = None
) -> CharacterShare:
    """Offer the character to the workspace with that slug; its owners accept or decline.

    The answer never tells whether the slug names a workspace: an offer to a slug no
    workspace has is recorded like any other and simply never gets an answer. When
    `offered_by` owns the destination too, they are its receiving owner and the share
    is accepted at once. A declined or removed share may be offered again.
    """
    slug = workspace_slug.strip().lower()
    if slug == character.workspace.slug:
        raise ValidationError("A character is already available in its own workspace.")
    target = Workspace.objects.filter(slug=slug).first()
    receives_at_once = (
        target is not None
        and offered_by is not None
        and Membership.objects.filter(workspace=target, user=offered_by, role=Role.OWNER).exists()
    )
    try:
        with transaction.atomic():
            share = (
                CharacterShare.objects.select_for_update(of=("self",))
                .select_related("workspace")
                .filter(character=character, offered_slug=slug)
                .first()
            )
            if share is not None and share.status in _IN_USE:
                raise _already_shared(share)
            share = share or CharacterShare(character=character, offered_slug=slug)
            share.workspace, share.created_by = target, offered_by
            share.created_at = timezone.now()
            share.status = Status.ACCEPTED if receives_at_once else Status.OFFERED
            share.answered_by = offered_by if receives_at_once else None
            share.answered_at = share.created_at if receives_at_once else None
            share.save()
    except IntegrityError:  # a concurrent offer of the same character to the same slug
        raise _already_offered(character, slug) from None
    return share


def _already_shared(share: CharacterShare) -> ValidationError:
    if share.status == CharacterShare.Status.ACCEPTED:  # answered: naming them tells nothing new
        return ValidationError(
            f"{share.character.name} is already shared with {share.workspace.name}."
        )
    return _already_offered(share.character, share.offered_slug)


def _already_offered(character: Character, slug: str) -> ValidationError:
    return ValidationError(
        f"{character.name} is already offered to “{slug}”: waiting for its owners to accept."
    )


def character_unshare(*, share: CharacterShare) -> None:
    """The offering side withdraws an offer, revokes a share, or clears an answer."""
    share.delete()


def _answer(
    *, share: CharacterShare, expected: str, status: str, answered_by: AbstractBaseUser
) -> None:
    """Move the share on from `expected` with one conditional update.

    The sender may withdraw at any moment, and two owners may answer at once: only
    the first change counts, and a late one is told plainly.
    """
    now = timezone.now()
    changed = CharacterShare.objects.filter(pk=share.pk, status=expected).update(
        status=status, answered_by=answered_by, answered_at=now
    )
    if not changed:
        raise ValidationError(
            f"{share.character.name} is no longer waiting for an answer here: "
            "the offer was withdrawn or already answered."
            if expected == CharacterShare.Status.OFFERED
            else f"{share.character.name} is no longer shared with this workspace."
        )
    share.status, share.answered_by, share.answered_at = status, answered_by, now


def share_accept(*, share: CharacterShare, accepted_by: AbstractBaseUser) -> None:
    """A receiving owner takes the offered character into their library."""
    _answer(
        share=share,
        expected=CharacterShare.Status.OFFERED,
        status=CharacterShare.Status.ACCEPTED,
        answered_by=accepted_by,
    )


def share_decline(*, share: CharacterShare, declined_by: AbstractBaseUser) -> None:
    """A receiving owner turns the offer down; the sender sees it and may offer again."""
    _answer(
        share=share,
        expected=CharacterShare.Status.OFFERED,
        status=CharacterShare.Status.DECLINED,
        answered_by=declined_by,
    )


def share_remove(*, share: CharacterShare, removed_by: AbstractBaseUser) -> None:
    """A receiving owner takes an accepted character out of their library."""
    _answer(
        share=share,
        expected=CharacterShare.Status.ACCEPTED,
        status=CharacterShare.Status.REMOVED,
        answered_by=removed_by,
    )
