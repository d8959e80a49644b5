"""Access helpers: one per kind of object, each scoped to the user's workspaces.

An object outside the user's workspaces is a 404 (we do not confirm it exists);
an object the user may see but their role may not change is a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from characters.models import Character, CharacterShare, ReferenceAsset
from jobs.compiled import Compiled
from jobs.models import Budget
from studio.models import (
    ApiToken,
    Cut,
    Episode,
    Membership,
    Scene,
    Series,
    Take,
    WebhookDelivery,
    WebhookEndpoint,
)

User = AbstractBaseUser | AnonymousUser
T = TypeVar("T")


# Every page reads these: compiled once per process (jobs.compiled). Each is unique, so the
# first row is the one.
_membership = Compiled(
    lambda user_id, slug: Membership.objects.select_related("workspace").filter(
        workspace__slug=slug, user_id=user_id
    )[:1]
)
_episode = Compiled(
    lambda pk, workspace_id: Episode.objects.select_related("series").filter(
        pk=pk, series__workspace_id=workspace_id
    )[:1]
)
_scene = Compiled(
    lambda pk, workspace_id: Scene.objects.select_related("episode__series").filter(
        pk=pk, episode__series__workspace_id=workspace_id
    )[:1]
)


def _found(row: T | None) -> T:
    if row is None:
        raise Http404
    return row


def membership_for(user: User, workspace_slug: str) -> Membership:
    """The user's membership in the workspace named by slug, or 404."""
    if not user.is_authenticated:
        raise Http404
    return _found(_membership.first(user_id=user.pk, slug=str(workspace_slug)))


def require(membership: Membership, permission: Callable[[Membership], bool] | str) -> None:
    """403 unless the membership's role grants `permission` ("edit", "review", "manage")."""
    allowed = (
        getattr(membership, f"can_{permission}") if isinstance(permission, str) else permission
    )
    if not allowed:
        raise PermissionDenied


def series_for(membership: Membership, series_id: int) -> Series:
    try:
        series = Series.objects.get(pk=series_id, workspace=membership.workspace)
    except Series.DoesNotExist:
        raise Http404 from None
    series.workspace = membership.workspace  # the same row: no query for its links
    return series


def episode_for(membership: Membership, episode_id: int) -> Episode:
    episode = _found(_episode.first(pk=int(episode_id), workspace_id=membership.workspace_id))
    episode.series.workspace = membership.workspace  # the same row: no query for its links
    return episode


def scene_for(membership: Membership, scene_id: int) -> Scene:
    scene = _found(_scene.first(pk=int(scene_id), workspace_id=membership.workspace_id))
    scene.episode.series.workspace = membership.workspace  # the same row: no query for it
    return scene


def character_for(membership: Membership, character_id: int, *, shared: bool = True) -> Character:
    """A character owned by the workspace, or (with `shared`) shared with it.

    Shared characters are for reading and mentioning only: pass shared=False
    when the caller is about to change the character.
    """
    visible = Q(workspace=membership.workspace)
    if shared:
        visible |= Q(
            # Accepted shares only: an offer (or one declined) opens nothing.
            pk__in=CharacterShare.objects.filter(
                workspace=membership.workspace, status=CharacterShare.Status.ACCEPTED
            ).values("character_id")
        )
    try:
        return Character.objects.select_related("workspace").get(visible, pk=character_id)
    except Character.DoesNotExist:
        raise Http404 from None


def asset_for(character: Character, asset_id: int) -> ReferenceAsset:
    """An asset of a character the caller already resolved through character_for."""
    try:
        return character.assets.get(pk=asset_id)
    except ReferenceAsset.DoesNotExist:
        raise Http404 from None


def member_for(membership: Membership, member_id: int) -> Membership:
    """Another membership of the same workspace."""
    try:
        return Membership.objects.select_related("user").get(
            pk=member_id, workspace=membership.workspace
        )
    except Membership.DoesNotExist:
        raise Http404 from None


def take_for(membership: Membership, take_id: int) -> Take:
    try:
        return Take.objects.select_related("job__provider_account", "scene__episode__series").get(
            pk=take_id, scene__episode__series__workspace=membership.workspace
        )
    except Take.DoesNotExist:
        raise Http404 from None


def budget_for(membership: Membership, budget_id: int) -> Budget:
    """A budget of the member's workspace; another team's is a 404."""
    try:
        return Budget.objects.get(pk=budget_id, workspace=membership.workspace)
    except Budget.DoesNotExist:
        raise Http404 from None


def cut_for(membership: Membership, cut_id: int) -> Cut:
    """A cut of an episode of the member's workspace, by its id; another team's is a 404."""
    try:
        return Cut.objects.select_related("episode__series__workspace", "created_by").get(
            pk=cut_id, episode__series__workspace=membership.workspace
        )
    except Cut.DoesNotExist:
        raise Http404 from None


def api_token_for(membership: Membership, token_id: int) -> ApiToken:
    """An API token of the member's workspace (revoked ones too); another team's is a 404."""
    try:
        return ApiToken.objects.select_related("series", "created_by").get(
            pk=token_id, workspace=membership.workspace
        )
    except ApiToken.DoesNotExist:
        raise Http404 from None


def webhook_endpoint_for(membership: Membership, endpoint_id: int) -> WebhookEndpoint:
    """A webhook endpoint of the member's workspace; another team's is a 404."""
    try:
        return WebhookEndpoint.objects.get(pk=endpoint_id, workspace=membership.workspace)
    except WebhookEndpoint.DoesNotExist:
        raise Http404 from None


def webhook_delivery_for(endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    """A delivery of an endpoint the caller already resolved through webhook_endpoint_for."""
    try:
        return endpoint.deliveries.select_related("endpoint").get(pk=delivery_id)
    except WebhookDelivery.DoesNotExist:
        raise Http404 from None
