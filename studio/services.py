"""Writes that span rows: workspaces and members, series, episodes and scenes, and the
writes on takes that are not generation (select, review, delete; making takes is
studio.generation's)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import PurePath

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from characters.mentions import parse_mentions
from characters.models import Character, CharacterVersion
from characters.reference_checks import MediaRejected, inspect_upload
from characters.selectors import HandleResolution, characters_resolve_handles
from jobs import services as jobs
from jobs.models import JobState
from studio import webhooks
from studio.models import (
    DialogueLine,
    Episode,
    Membership,
    ReviewReason,
    Role,
    Scene,
    SceneFrame,
    Series,
    SeriesCharacter,
    Take,
    Workspace,
)

# --- Workspaces and members -------------------------------------------------


def workspace_create(*, name: str, slug: str, owner: AbstractBaseUser) -> Workspace:
    workspace = Workspace(name=name, slug=slug)
    workspace.full_clean()
    with transaction.atomic():
        workspace.save()
        Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


def member_add(*, workspace: Workspace, username_or_email: str, role: str) -> Membership:
    """Add an existing user, found by username or e-mail, with a role."""
    User = get_user_model()
    needle = username_or_email.strip()
    users = list(User.objects.filter(Q(username__iexact=needle) | Q(email__iexact=needle))[:2])
    if not users:
        raise ValidationError(f"No user has the username or e-mail “{needle}”.")
    if len(users) > 1:
        raise ValidationError(f"More than one user matches “{needle}”; use the username.")
    user = users[0]
    if Membership.objects.filter(workspace=workspace, user=user).exists():
        raise ValidationError(f"{user.get_username()} is already a member of {workspace.name}.")
    return Membership.objects.create(workspace=workspace, user=user, role=Role(role))


def _lock_owners(workspace: Workspace) -> int:
    """Lock the workspace's owner rows and count them (two removals cannot race)."""
    return len(
        list(
            Membership.objects.select_for_update()
            .filter(workspace=workspace, role=Role.OWNER)
            .values_list("pk", flat=True)
        )
    )


def member_change_role(*, membership: Membership, role: str) -> Membership:
    with transaction.atomic():
        owners = _lock_owners(membership.workspace)
        membership.refresh_from_db()
        if membership.role == Role.OWNER and role != Role.OWNER and owners <= 1:
            raise ValidationError("A workspace needs at least one owner: add another owner first.")
        membership.role = Role(role)
        membership.save(update_fields=["role"])
    return membership


def member_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        owners = _lock_owners(membership.workspace)
        membership.refresh_from_db()
        if membership.role == Role.OWNER and owners <= 1:
            raise ValidationError("The last owner cannot be removed: add another owner first.")
        membership.delete()


# --- Series and episodes ----------------------------------------------------


def series_create(
    *, workspace: Workspace, created_by: AbstractBaseUser | None = None, **fields: object
) -> Series:
    series = Series(workspace=workspace, created_by=created_by, **fields)
    series.full_clean()
    series.save()
    return series


def episode_create(*, series: Series, title: str, number: int | None = None) -> Episode:
    """Create an episode; without a number it becomes the series' next one."""
    with transaction.atomic():
        Series.objects.select_for_update().filter(pk=series.pk).first()
        if number is None:
            number = (series.episodes.aggregate(n=Max("number"))["n"] or 0) + 1
        elif series.episodes.filter(number=number).exists():
            raise ValidationError({"number": f"Episode {number} already exists in this series."})
        episode = Episode(series=series, number=number, title=title)
        episode.full_clean()
        episode.save()
    return episode


def series_update(*, series: Series, **fields: object) -> Series:
    """Change some of the series' fields, checked as when it was made."""
    for name, value in fields.items():
        setattr(series, name, value)
    series.full_clean()
    series.save(update_fields=[*fields, "updated_at"])
    return series


def episode_update(
    *, episode: Episode, title: str | None = None, number: int | None = None
) -> Episode:
    """Rename or renumber an episode (None keeps the field); a number another episode of the
    series has is refused, checked under the series lock episode_create takes."""
    with transaction.atomic():
        Series.objects.select_for_update().filter(pk=episode.series_id).first()
        if number is not None and number != episode.number:
            if episode.series.episodes.filter(number=number).exclude(pk=episode.pk).exists():
                raise ValidationError(
                    {"number": f"Episode {number} already exists in this series."}
                )
            episode.number = number
        if title is not None:
            episode.title = title
        episode.full_clean()
        episode.save()
    return episode


# --- Scenes -----------------------------------------------------------------


def scene_resolve_mentions(
    *, workspace: Workspace, prompt: str, resolution: HandleResolution | None = None
) -> list[Character]:
    """The characters a prompt names, or a ValidationError naming each bad handle.

    With `resolution` (the handles of many prompts resolved at once), no query is made."""
    handles = parse_mentions(prompt)
    if resolution is None:
        resolution = characters_resolve_handles(workspace=workspace, handles=handles)
    unknown, ambiguous = set(resolution.unknown), set(resolution.ambiguous)
    problems = [
        f"@{handle} is not a character in this workspace or shared with it."
        for handle in handles
        if handle in unknown
    ] + [
        f"@{handle} names characters shared from several workspaces; ask for one to be renamed."
        for handle in handles
        if handle in ambiguous
    ]
    if problems:
        raise ValidationError({"prompt": problems})
    return [resolution.characters[h] for h in handles if h in resolution.characters]


def _lock_episode(episode: Episode) -> None:
    """Lock the episode row.

    Every write that changes positions takes this lock first, so concurrent
    reorders, inserts and deletes of one episode run one after another, and each reads
    positions another has finished writing.
    """
    Episode.objects.select_for_update().filter(pk=episode.pk).first()


def _shift(episode: Episode, *, start: int, stop: int | None = None, by: int) -> None:
    """Move every scene at a position in [start, stop) by `by`, in one UPDATE: positions
    stay dense without reading the episode's scenes (3,000 of them on a long board)."""
    scenes = Scene.objects.filter(episode=episode, position__gte=start)
    if stop is not None:
        scenes = scenes.filter(position__lt=stop)
    scenes.update(position=F("position") + by)


def _position_of(scene: Scene) -> int | None:
    """The scene's position as it is now (under the episode lock), None if it was deleted."""
    return Scene.objects.filter(pk=scene.pk).values_list("position", flat=True).first()


def scene_create(
    *,
    episode: Episode,
    prompt: str,
    title: str = "",
    duration: int | None = None,
    size: str | None = None,
    notes: str = "",
    after: Scene | None = None,
    routing_policy: str = "",
    pinned_account: object = None,
) -> Scene:
    """Add a scene at the end of the episode, or right after `after`."""
    series = episode.series
    characters = scene_resolve_mentions(workspace=series.workspace, prompt=prompt)
    scene = Scene(
        episode=episode,
        title=title,
        prompt=prompt,
        duration=duration or series.default_duration,
        size=size or series.default_size,
        notes=notes,
        routing_policy=routing_policy,
        pinned_account=pinned_account,
        position=0,
    )
    scene.full_clean(exclude=["position"])
    with transaction.atomic():
        _lock_episode(episode)
        count = Scene.objects.filter(episode=episode).count()
        after_at = _position_of(after) if after is not None else None
        # At the end (an Inbox grows by a scene a call), or right after `after` (at the
        # end too if it was deleted meanwhile), the later scenes moving down one.
        scene.position = count if after_at is None else after_at + 1
        _shift(episode, start=scene.position, by=1)
        scene.save()
        scene.mentions.set(characters)
    return scene


def scene_update(*, scene: Scene, **fields: object) -> Scene:
    workspace = scene.episode.series.workspace
    for name, value in fields.items():
        setattr(scene, name, value)
    characters = scene_resolve_mentions(workspace=workspace, prompt=scene.prompt)
    scene.full_clean(exclude=["position"])
    with transaction.atomic():
        scene.save(update_fields=[*fields, "updated_at"])
        scene.mentions.set(characters)
    return scene


def scene_duplicate(*, scene: Scene) -> Scene:
    """A copy of the scene right after it, with its start and end pictures (the same files)
    and its dialogue."""
    with transaction.atomic():
        copy = scene_create(
            episode=scene.episode,
            prompt=scene.prompt,
            title=f"{scene.title} (copy)" if scene.title else "",
            duration=scene.duration,
            size=scene.size,
            notes=scene.notes,
            after=scene,
            routing_policy=scene.routing_policy,
            pinned_account=scene.pinned_account,
        )
        SceneFrame.objects.bulk_create(
            SceneFrame(
                scene=copy,
                position=frame.position,
                file=frame.file.name,
                thumbnail=frame.thumbnail.name,
                content_type=frame.content_type,
                width=frame.width,
                height=frame.height,
            )
            for frame in scene.frames.all()
        )
        DialogueLine.objects.bulk_create(
            DialogueLine(
                scene=copy,
                position=line.position,
                character_id=line.character_id,
                text=line.text,
                start=line.start,
            )
            for line in scene.lines.all()
        )
    return copy


def scene_delete(*, scene: Scene) -> None:
    with transaction.atomic():
        _lock_episode(scene.episode)
        position = _position_of(scene)
        Scene.objects.filter(pk=scene.pk).delete()
        if position is not None:
            _shift(scene.episode, start=position + 1, by=-1)


def scene_move(*, scene: Scene, to_position: int) -> Scene:
    """Move a scene to `to_position` (0-based, clamped) and keep positions dense.

    Positions are read under the episode lock, so two people reordering at once
    both see and write a consistent order: the later move wins, nothing is lost
    or duplicated.
    """
    with transaction.atomic():
        _lock_episode(scene.episode)
        now = _position_of(scene)
        if now is None:  # deleted meanwhile
            raise Scene.DoesNotExist
        last = Scene.objects.filter(episode=scene.episode).count() - 1
        to_position = max(0, min(to_position, last))
        if to_position < now:  # the scenes in between move down one
            _shift(scene.episode, start=to_position, stop=now, by=1)
        elif to_position > now:  # ...or up one
            _shift(scene.episode, start=now + 1, stop=to_position + 1, by=-1)
        Scene.objects.filter(pk=scene.pk).update(position=to_position)
    scene.position = to_position
    return scene


# --- The versions of characters a series is made with -------------------------


def series_pin_set(
    *,
    series: Series,
    version: CharacterVersion,
    pinned_by: AbstractBaseUser | None = None,
) -> SeriesCharacter:
    """Make the series' next takes of the version's character use that version.

    The character must be one the series' workspace can use (its own or shared with it).
    Takes made before keep the version they were made with.
    """
    character = version.character
    visible = (
        character.workspace_id == series.workspace_id
        or character.shares.filter(workspace_id=series.workspace_id, status="accepted").exists()
    )
    if not visible:
        raise ValidationError("That character is not in this workspace's library.")
    pin, _ = SeriesCharacter.objects.update_or_create(
        series=series,
        character=character,
        defaults={"version": version, "pinned_by": pinned_by},
    )
    return pin


# --- Takes ------------------------------------------------------------------


def take_select(*, take: Take) -> Take:
    """Make a finished take the one its scene uses (one per scene, under the scene's takes lock)."""
    if take.job.state != JobState.SUCCEEDED:
        raise ValidationError("Only a finished take can be selected.")
    with transaction.atomic():
        Take.objects.filter(scene_id=take.scene_id, is_selected=True).exclude(pk=take.pk).update(
            is_selected=False
        )
        Take.objects.filter(pk=take.pk).update(is_selected=True)
        webhooks.takes_event(event_type="take.selected", take_ids=[take.pk])  # sent on commit
    take.is_selected = True
    return take


REVIEW_AXES = ("face", "clothing", "style")


def _review_codes(codes: Iterable[str]) -> list[str]:
    """The reason codes in the order given, each once; an unknown code is refused."""
    known = set(ReviewReason.values)
    chosen: list[str] = []
    for code in codes:
        if code not in known:
            raise ValidationError(f"“{code}” is not a reason a take can be rejected for.")
        if code not in chosen:
            chosen.append(code)
    return chosen


def _review_scores(scores: dict[str, int | None]) -> dict[str, int | None]:
    """The reviewer's scores by axis (None clears one), each a whole number from 0 to 100."""
    checked: dict[str, int | None] = {}
    for axis, value in scores.items():
        if axis not in REVIEW_AXES:
            raise ValidationError(f"Reviewers score face, clothing and style, not “{axis}”.")
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100
        ):
            raise ValidationError(f"A {axis} score is a whole number from 0 to 100, not {value}.")
        checked[axis] = value
    return checked


def take_review(
    *,
    takes: Iterable[Take],
    state: str,
    reason: str = "",
    codes: Iterable[str] = (),
    notes: str | None = None,
    scores: dict[str, int | None] | None = None,
    reviewer: AbstractBaseUser | None = None,
) -> int:
    """Approve or reject finished takes (unfinished ones are skipped). Returns how many changed.

    A rejection needs a reason: one or more ReviewReason codes, or a reason in words.
    Approving clears the codes and the reason. `notes` and the reviewer's `scores` (axis to
    0-100, None to clear one) are written when given and left as they were when not, so a
    bulk approval keeps what reviewers wrote on each take.
    """
    state = Take.Review(state)
    reason = reason.strip()
    codes = _review_codes(codes)
    scores = _review_scores(scores or {})
    if state == Take.Review.REJECTED and not (codes or reason):
        raise ValidationError(
            "Say why the take is rejected (tick at least one reason), so whoever retries it knows."
        )
    ids = [t.pk for t in takes if t.job.state == JobState.SUCCEEDED]
    if not ids:
        return 0
    rejected = state == Take.Review.REJECTED
    fields: dict[str, object] = {
        "review_state": state,
        "review_reason": reason if rejected else "",
        "review_codes": codes if rejected else [],
        "reviewed_by": reviewer,
        "reviewed_at": timezone.now(),
    }
    if notes is not None:
        fields["review_notes"] = notes.strip()
    fields |= {f"review_{axis}": value for axis, value in scores.items()}
    with transaction.atomic():
        changed = Take.objects.filter(pk__in=ids).update(**fields)
        webhooks.takes_event(event_type="take.reviewed", take_ids=ids)  # sent on commit
    return changed


def take_delete(*, take: Take) -> None:
    """Remove a take from its scene; an unfinished job is cancelled first. The job itself stays,
    since what was paid must remain on record; its result files go (studio.storage_cleanup)."""
    if not take.job.is_terminal:
        jobs.job_cancel(job=take.job)
    take.delete()


# --- The pictures a scene starts from and ends on ------------------------------------------

_FRAME_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def scene_frame_set(*, scene: Scene, position: str, upload: UploadedFile) -> SceneFrame:
    """Keep `upload` as the picture the scene starts from (first) or ends on (last),
    replacing the one there. Checked by content and size like a reference image; a clip or
    anything else is refused with a plain reason (ValidationError)."""
    name = PurePath(upload.name or "frame").name
    try:
        media = inspect_upload(upload, name=name)
    except MediaRejected as rejected:
        raise ValidationError(str(rejected)) from None
    if media.kind != "image":
        raise ValidationError(f"{name} is a clip; a scene starts from and ends on a picture.")
    frame = SceneFrame(
        scene=scene,
        position=position,
        content_type=media.content_type,
        width=media.width,
        height=media.height,
    )
    stem = uuid.uuid4().hex
    frame.file.save(f"{stem}.{_FRAME_EXTENSIONS[media.content_type]}", upload, save=False)
    frame.thumbnail.save(f"{stem}-thumb.jpg", ContentFile(media.thumbnail), save=False)
    with transaction.atomic():
        # The replaced picture's files stay in storage: a take waiting to be sent names them.
        SceneFrame.objects.filter(scene=scene, position=position).delete()
        frame.save()
    return frame


def scene_frame_remove(*, scene: Scene, position: str) -> bool:
    """Forget the scene's picture at `position` (its files stay for takes that name it)."""
    removed, _ = SceneFrame.objects.filter(scene=scene, position=position).delete()
    return bool(removed)
