"""Reads for the studio's pages."""

from __future__ import annotations

from django.db.models import Case, Count, Prefetch, Q, QuerySet, When

from characters.models import Character, ReferenceAsset
from characters.selectors import characters_visible_to, share_offers_for
from studio.dashboard import work_of
from studio.models import Episode, Scene, Series, Workspace


def workspace_dashboard(*, workspace: Workspace) -> dict[str, object]:
    """The dashboard: the workspace's counts and recent series, and its work (studio.dashboard:
    in progress, awaiting review, failures, this month's spend, recent activity)."""
    series = (
        Series.objects.filter(workspace=workspace)
        .select_related("workspace")  # for each card's link
        .annotate(episode_count=Count("episodes"))
        .order_by("-updated_at")[:6]
    )
    return {
        "recent_series": list(series),
        "character_count": characters_visible_to(workspace=workspace).count(),
        "series_count": Series.objects.filter(workspace=workspace).count(),
        "scene_count": Scene.objects.filter(episode__series__workspace=workspace).count(),
        "member_count": workspace.memberships.count(),
        "offers_waiting": share_offers_for(workspace=workspace).count(),
        **work_of(workspace),
    }


def series_for_workspace(*, workspace: Workspace) -> QuerySet[Series]:
    return (
        Series.objects.filter(workspace=workspace)
        .annotate(episode_count=Count("episodes", distinct=True))
        .order_by("title")
    )


def episodes_of(*, series: Series) -> QuerySet[Episode]:
    return series.episodes.annotate(scene_count=Count("scenes")).order_by("number")


def scenes_of(*, episode: Episode) -> QuerySet[Scene]:
    return (
        Scene.objects.filter(episode=episode)
        .prefetch_related("mentions")
        .order_by("position", "pk")
    )


def mention_candidates(*, workspace: Workspace, query: str, limit: int = 8) -> list[Character]:
    """Characters for @-suggestions: handle or name starting with `query`, own ones first."""
    characters = characters_visible_to(workspace=workspace).select_related("workspace")
    if query:
        characters = characters.filter(Q(handle__startswith=query) | Q(name__istartswith=query))
    images = ReferenceAsset.current.filter(kind=ReferenceAsset.Kind.IMAGE).order_by(
        "created_at", "pk"
    )
    found = list(
        characters.prefetch_related(Prefetch("assets", queryset=images, to_attr="image_list"))
        .annotate(own=Case(When(workspace=workspace, then=0), default=1))
        .order_by("own", "handle")[:limit]
    )
    return found
