"""Reads of the character library."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max, Prefetch, Q, QuerySet

from characters.models import (
    Character,
    CharacterShare,
    CharacterVersion,
    ReferenceAsset,
    version_subject,
)
from jobs import engine
from jobs.compiled import Compiled
from jobs.models import JobState, ProviderAccount, Registration
from jobs.selectors import accounts_enabled
from studio.models import Role, Workspace


def characters_visible_to(*, workspace: Workspace) -> QuerySet[Character]:
    """Own characters plus those shared with the workspace and accepted by its owners."""
    return _visible_to(workspace.pk)


def _visible_to(workspace_id: int) -> QuerySet[Character]:
    shared_ids = CharacterShare.objects.filter(
        workspace_id=workspace_id, status=CharacterShare.Status.ACCEPTED
    ).values("character_id")
    return Character.objects.filter(Q(workspace_id=workspace_id) | Q(pk__in=shared_ids))


# Every quote and preflight resolves its prompt's handles: compiled once per process.
_visible_with_handles = Compiled(
    lambda workspace_id, handles: _visible_to(workspace_id).filter(handle__in=handles)
)


def character_library(*, workspace: Workspace) -> tuple[list[Character], list[Character]]:
    """(own, shared) characters ready for cards, in three queries whatever their number.

    Each character carries `asset_list` (its references, oldest first) and
    `registration_list` (its active registrations at this workspace's accounts).
    """
    first_assets = Prefetch(
        "assets", queryset=ReferenceAsset.current.order_by("created_at", "pk"), to_attr="asset_list"
    )
    characters = (
        characters_visible_to(workspace=workspace)
        .select_related("workspace")
        # Only this workspace's scenes: a shared character is also used elsewhere.
        .annotate(
            scene_count=Count(
                "scenes", filter=Q(scenes__episode__series__workspace=workspace), distinct=True
            ),
            version_number=Max("versions__number"),
        )
        .prefetch_related(first_assets)
        .order_by("name")
    )
    own, shared = [], []
    for character in characters:
        (own if character.workspace_id == workspace.pk else shared).append(character)
    _attach_registrations([*own, *shared], workspace=workspace)
    return own, shared


def _attach_registrations(characters: list[Character], *, workspace: Workspace) -> None:
    """Set `registration_list` on each character (annotated with `version_number`): its
    latest version's registrations, from one query whatever their number.

    Only this workspace's accounts count: another team's registrations of a shared
    character are theirs (and so are the names of their accounts).
    """
    by_subject: dict[str, list[Registration]] = {}
    for character in characters:
        character.version_number = character.version_number or 1
        character.latest_subject = version_subject(character.pk, character.version_number)
    if characters:
        registrations = (
            Registration.objects.filter(
                provider_account__workspace=workspace,
                status=Registration.Status.ACTIVE,
                subject__in=[character.latest_subject for character in characters],
            )
            .select_related("provider_account")
            .order_by("provider_account__name", "provider_account_id")
        )
        for registration in registrations:
            by_subject.setdefault(registration.subject, []).append(registration)
    for character in characters:
        character.registration_list = by_subject.get(character.latest_subject, [])


@dataclass(frozen=True)
class RegistrationStatus:
    """Where a character stands at one provider account, and how it travels there.

    "references": the provider keeps no characters (its adapter says so), so the
    character goes with every take as reference images (and a clip where one fits).
    """

    account: ProviderAccount
    state: str  # "active", "pending", "failed", "none" or "references"
    registration: Registration | None = None
    error: str = ""
    note: str = ""  # how it travels, in words, where the state alone does not say

    @property
    def summary(self) -> str:
        """One sentence for a message: what this account will do with the character."""
        name = self.account.name
        if self.state == "active":
            return f"{name} has it saved as a character."
        if self.state == "pending":
            return f"{name} is learning it now."
        if self.state == "references":
            return f"At {name} it {self.note}"
        if self.state == "failed":
            return f"{name} could not register it ({self.error}); the next take there tries again."
        return f"At {name} it {self.note}"


def _travel_note(account: ProviderAccount, assets: list[ReferenceAsset]) -> tuple[str, str]:
    """(state, note) for an account where the character is not registered: from the
    adapter's declared capabilities only, never from which provider it is."""
    caps = account.capabilities
    images = sum(1 for asset in assets if asset.kind == ReferenceAsset.Kind.IMAGE)
    clips = [a.duration_seconds or 0 for a in assets if a.kind == ReferenceAsset.Kind.CLIP]
    if not caps.native_characters:
        sent = min(images, caps.max_references)
        low, high = caps.reference_clip_seconds or (0.0, 0.0)
        clip = caps.max_reference_clips and any(low <= length <= high for length in clips)
        parts = [f"{sent} reference image{'s' if sent != 1 else ''}"] if sent else []
        if clip:
            parts.append("a clip")
        what = " and ".join(parts) or "nothing yet: add a reference image"
        return "references", (
            f"travels with each take as {what} (fewer when a scene has several characters): "
            "it keeps no characters, so consistency rests on the references."
        )
    low, high = caps.character_clip_seconds or (0.0, float("inf"))
    if caps.character_clip_seconds and not any(length >= low for length in clips):
        return "none", (
            f"needs a reference clip of at least {low:g} s before it can be registered there."
        )
    return "none", "is registered from its clip the first time a take there needs it."


def character_registrations(
    *, character: Character, workspace: Workspace
) -> list[RegistrationStatus]:
    """The character's standing at each enabled account of `workspace`, in four queries.

    Active: an active registration. Pending: a registration job still under way.
    Failed: the newest failure (a failed registration row or registration job) when
    there is neither. None: never registered there; the first take that needs it will.
    """
    accounts = [
        account
        for account in accounts_enabled(workspace_id=workspace.pk)
        if _makes_video(account)  # a speech account speaks for characters, never shows them
    ]
    if not accounts:
        return []
    assets = list(ReferenceAsset.current.filter(character=character))
    latest = character.versions.order_by("-number").first()
    subject = latest.subject if latest else character.registration_subject
    active: dict[int, Registration] = {}
    failures: dict[int, tuple[datetime, str]] = {}  # account id: (when, error message)
    registrations = Registration.objects.filter(provider_account__in=accounts, subject=subject)
    for registration in registrations.order_by("created_at", "pk"):
        if registration.status == Registration.Status.ACTIVE:
            active[registration.provider_account_id] = registration
        else:
            failures[registration.provider_account_id] = (
                registration.created_at,
                registration.error_message,
            )
    pending: set[int] = set()
    jobs = (
        engine.registration_jobs(subject=subject)
        .filter(provider_account__in=accounts)
        .exclude(state__in=(JobState.SUCCEEDED, JobState.CANCELLED))
        .only("provider_account_id", "state", "error_message", "created_at")
        .order_by("created_at", "pk")
    )
    for job in jobs:
        if job.state == JobState.FAILED:
            known = failures.get(job.provider_account_id)
            if known is None or known[0] <= job.created_at:
                failures[job.provider_account_id] = (job.created_at, job.error_message)
        else:
            pending.add(job.provider_account_id)
    statuses = []
    for account in accounts:
        if account.pk in active:
            statuses.append(RegistrationStatus(account, "active", active[account.pk]))
        elif account.pk in pending:
            statuses.append(RegistrationStatus(account, "pending"))
        elif account.pk in failures:
            statuses.append(RegistrationStatus(account, "failed", error=failures[account.pk][1]))
        else:
            state, note = _travel_note(account, assets)
            statuses.append(RegistrationStatus(account, state, note=note))
    return statuses


def _makes_video(account: ProviderAccount) -> bool:
    try:
        return account.capabilities.output != "speech"
    except KeyError:  # a kind this build has no adapter for: listed as it always was
        return True


def share_destinations(*, user: AbstractBaseUser, character: Character) -> QuerySet[Workspace]:
    """The user's other workspaces they may add to (owner or editor), with no offer waiting
    and no share in use there. A workspace that declined or removed it may be offered again."""
    in_use = CharacterShare.objects.filter(
        character=character,
        status__in=(CharacterShare.Status.OFFERED, CharacterShare.Status.ACCEPTED),
        workspace__isnull=False,  # a NULL in NOT IN would exclude every workspace
    ).values("workspace_id")
    return (
        Workspace.objects.filter(
            memberships__user=user, memberships__role__in=(Role.OWNER, Role.EDITOR)
        )
        .exclude(pk=character.workspace_id)
        .exclude(pk__in=in_use)
        .order_by("name")
    )


def shares_of(*, character: Character) -> QuerySet[CharacterShare]:
    """Every offer and share of the character, for its own workspace's page.

    The page names a workspace only once it has answered (`CharacterShare.answered`);
    until then it shows the slug that was typed.
    """
    return character.shares.select_related("workspace").order_by("created_at", "pk")


def share_offers_for(*, workspace: Workspace) -> QuerySet[CharacterShare]:
    """Offers waiting for the workspace's owners to accept or decline, oldest first.

    Each share carries `character.image_list` (its reference images, oldest first) once
    evaluated; `.count()` stays one query for a dashboard figure.
    """
    images = ReferenceAsset.current.filter(kind=ReferenceAsset.Kind.IMAGE).order_by(
        "created_at", "pk"
    )
    return (
        CharacterShare.objects.filter(workspace=workspace, status=CharacterShare.Status.OFFERED)
        .select_related("character__workspace")
        .prefetch_related(Prefetch("character__assets", queryset=images, to_attr="image_list"))
        .order_by("created_at", "pk")
    )


def share_received(*, character: Character, workspace: Workspace) -> CharacterShare | None:
    """The accepted share that puts another workspace's character in `workspace`'s library."""
    return CharacterShare.objects.filter(
        character=character, workspace=workspace, status=CharacterShare.Status.ACCEPTED
    ).first()


class HandleResolution:
    """The outcome of resolving handles: characters found, handles unknown or ambiguous."""

    def __init__(self) -> None:
        self.characters: dict[str, Character] = {}
        self.unknown: list[str] = []
        self.ambiguous: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.ambiguous


def characters_resolve_handles(*, workspace: Workspace, handles: list[str]) -> HandleResolution:
    """Map handles to characters: the workspace's own first, then shared ones.

    Two shared characters from different workspaces with the same handle (and no
    own one) make the handle ambiguous rather than picking one silently.
    """
    result = HandleResolution()
    if not handles:
        return result
    candidates: dict[str, list[Character]] = {}
    for character in _visible_with_handles(workspace_id=workspace.pk, handles=list(handles)):
        candidates.setdefault(character.handle, []).append(character)
    for handle in handles:
        found = candidates.get(handle, [])
        own = [c for c in found if c.workspace_id == workspace.pk]
        if own:
            result.characters[handle] = own[0]
        elif len(found) == 1:
            result.characters[handle] = found[0]
        elif found:
            result.ambiguous.append(handle)
        else:
            result.unknown.append(handle)
    return result


# --- Versions ---------------------------------------------------------------------------------


def character_versions(*, character: Character) -> list[CharacterVersion]:
    """The character's versions, newest first, each with `asset_list` (its references, oldest
    first), `take_count` and `series_count` (the series pinned to it, in any workspace)."""
    assets = Prefetch(
        "assets", queryset=ReferenceAsset.objects.order_by("created_at", "pk"), to_attr="asset_list"
    )
    return list(
        character.versions.select_related("created_by", "voice_account")
        .annotate(
            take_count=Count("takes", distinct=True),
            series_count=Count("series_pins", distinct=True),
        )
        .prefetch_related(assets)
        .order_by("-number")
    )


@dataclass(frozen=True)
class VersionChanges:
    """What moving from one version to another changes: for the pin preview."""

    old: CharacterVersion
    new: CharacterVersion
    description_changed: bool
    added: list[ReferenceAsset]
    removed: list[ReferenceAsset]
    kept: list[ReferenceAsset]

    @property
    def changed(self) -> bool:
        return self.description_changed or bool(self.added or self.removed)


def version_changes(*, old: CharacterVersion, new: CharacterVersion) -> VersionChanges:
    old_assets = list(old.assets.order_by("created_at", "pk"))
    new_assets = list(new.assets.order_by("created_at", "pk"))
    old_ids = {a.pk for a in old_assets}
    new_ids = {a.pk for a in new_assets}
    return VersionChanges(
        old=old,
        new=new,
        description_changed=old.description.strip() != new.description.strip(),
        added=[a for a in new_assets if a.pk not in old_ids],
        removed=[a for a in old_assets if a.pk not in new_ids],
        kept=[a for a in new_assets if a.pk in old_ids],
    )
