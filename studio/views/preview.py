"""The episode preview: the chosen takes of an episode's scenes played one after another in
the browser, scene by scene, with nothing assembled (a cut, studio/cuts.py, makes one file)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from jobs.models import JobState
from studio.access import episode_for, membership_for
from studio.http import HtmxHttpRequest
from studio.models import Episode, Scene, Take

NO_TAKE = "no take chosen"
NO_VIDEO = "its chosen take has no video"


def clock(seconds: float) -> str:
    """A running time as the player shows it: 0:08, 12:40, 1:02:05."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


@dataclass(frozen=True, slots=True)
class PreviewScene:
    """A scene as the preview lists it: what plays for it, or why nothing does."""

    pk: int
    number: int
    title: str
    seconds: float
    take_id: int | None = None  # the chosen take, when it has a video to play
    has_poster: bool = False
    rejected: bool = False  # chosen, yet turned down in review: it plays, with a warning
    skipped: str = ""  # why nothing plays for the scene ("" when its take does)

    @property
    def heading(self) -> str:
        return f"Scene {self.number}: {self.title}" if self.title else f"Scene {self.number}"

    @property
    def clock(self) -> str:
        return clock(self.seconds)


def preview_scenes(*, episode: Episode) -> list[PreviewScene]:
    """The episode's scenes in order, each with its chosen take's video, in two queries
    whatever the episode's length (plain rows: no model instances, no job per scene)."""
    chosen = {
        scene_id: rest
        for scene_id, *rest in Take.objects.filter(
            scene__episode=episode, is_selected=True
        ).values_list(
            "scene_id",
            "pk",
            "review_state",
            "job__state",
            "job__video",
            "job__thumbnail",
            "job__result",
        )
    }
    scenes = []
    for pk, position, title, duration in (
        Scene.objects.filter(episode=episode)
        .order_by("position")
        .values_list("pk", "position", "title", "duration")
    ):
        scene = {"pk": pk, "number": position + 1, "title": title, "seconds": float(duration)}
        if pk not in chosen:
            scenes.append(PreviewScene(**scene, skipped=NO_TAKE))
            continue
        take_id, review, state, video, thumbnail, result = chosen[pk]
        if state != JobState.SUCCEEDED or not video:
            scenes.append(PreviewScene(**scene, skipped=NO_VIDEO))
            continue
        # What the provider delivered, which may differ from what the scene asked for.
        scene["seconds"] = float((result or {}).get("duration") or duration)
        scenes.append(
            PreviewScene(
                **scene,
                take_id=take_id,
                has_poster=bool(thumbnail),
                rejected=review == Take.Review.REJECTED,
            )
        )
    return scenes


def _playlist(slug: str, scenes: list[PreviewScene]) -> list[dict]:
    """What static/js/preview.js plays, in order: the scenes that have a video."""
    return [
        {
            "scene": scene.pk,
            "number": scene.number,
            "title": scene.title,
            "duration": scene.seconds,
            "take": scene.take_id,
            "video": reverse("take_media", args=[slug, scene.take_id, "video"]),
            "poster": (
                reverse("take_media", args=[slug, scene.take_id, "thumbnail"])
                if scene.has_poster
                else ""
            ),
        }
        for scene in scenes
        if scene.take_id is not None
    ]


@login_required
@require_GET
def episode_preview(request: HtmxHttpRequest, slug: str, episode_id: int) -> HttpResponse:
    """Any member may watch; `?scene=<id>` starts at that scene (how the scene list's links
    work without JavaScript)."""
    membership = membership_for(request.user, slug)
    episode = episode_for(membership, episode_id)
    scenes = preview_scenes(episode=episode)
    playlist = _playlist(slug, scenes)
    wanted = request.GET.get("scene", "")
    start = next(
        (n for n, track in enumerate(playlist) if str(track["scene"]) == wanted),
        0,
    )
    context = {
        "membership": membership,
        "episode": episode,
        "scenes": scenes,
        "playlist": playlist,
        "start": start,
        "first": playlist[start] if playlist else None,
        "skipped": sum(bool(scene.skipped) for scene in scenes),
        "running_time": clock(sum(track["duration"] for track in playlist)),
    }
    return render(request, "studio/preview/episode_preview.html", context)
