"""Reads of the character library."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from characters.models import Character, CharacterShare, ReferenceAsset
from studio.models import Workspace


def characters_visible_to(*, workspace: Workspace) -> QuerySet[Character]:
    """Own characters plus those shared with the workspace."""
    shared_ids = CharacterShare.objects.filter(workspace=workspace).values("character_id")
    return Character.objects.filter(Q(workspace=workspace) | Q(pk__in=shared_ids))


def character_library(*, workspace: Workspace) -> tuple[list[Character], list[Character]]:
    """(own, shared) characters with their first image ready for cards, in two queries."""
    first_assets = Prefetch(
        "assets", queryset=ReferenceAsset.objects.order_by("created_at", "pk"), to_attr="asset_list"
    )
    characters = (
        characters_visible_to(workspace=workspace)
        .select_related("workspace")
        # Only this workspace's scenes: a shared character is also used elsewhere.
        .annotate(
            scene_count=Count(
                "scenes", filter=Q(scenes__episode__series__workspace=workspace), distinct=True
            )
        )
        .prefetch_related(first_assets)
        .order_by("name")
    )
    own, shared = [], []
    for character in characters:
        (own if character.workspace_id == workspace.pk else shared).append(character)
    return own, shared


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
    for character in characters_visible_to(workspace=workspace).filter(handle__in=handles):
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
