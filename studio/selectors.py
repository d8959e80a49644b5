"""Reads for the studio's pages."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from characters.selectors import characters_visible_to
from studio.models import Episode, Scene, Series, Workspace


def workspace_dashboard(*, workspace: Workspace) -> dict[str, object]:
    series = (
        Series.objects.filter(workspace=workspace)
        .annotate(episode_count=Count("episodes"))
        .order_by("-updated_at")[:6]
    )
    return {
        "recent_series": list(series),
        "character_count": characters_visible_to(workspace=workspace).count(),
        "series_count": Series.objects.filter(workspace=workspace).count(),
        "scene_count": Scene.objects.filter(episode__series__workspace=workspace).count(),
        "member_count": workspace.memberships.count(),
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
