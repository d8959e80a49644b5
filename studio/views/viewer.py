"""The large take viewer and side-by-side compare: one take as wide as the page, with keys
for the scene's other takes and the episode's other scenes; two or more finished takes of a
scene played in step, to choose between. Both work without JavaScript (links and forms);
static/js/viewer.js adds the keys, frame stepping and the shared transport."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from jobs.models import JobState
from studio.access import membership_for, scene_for, take_for
from studio.http import HtmxHttpRequest
from studio.models import Membership, Scene, Take
from studio.review import DEFAULT_FPS


@dataclass(frozen=True)
class SceneStop:
    """Where ↑/↓ go: a neighbouring scene's take in the viewer, or its page when it has no
    finished take to show."""

    scene: Scene
    url: str
    take: Take | None


def _is_finished(take: Take) -> bool:
    return take.job.state == JobState.SUCCEEDED


def _scene_takes(scene: Scene) -> list[Take]:
    """The scene's takes, oldest first, with their jobs and providers; each has `fps` and
    `seconds` (what the player steps frames by and shows)."""
    takes = list(scene.takes.select_related("job__provider_account").order_by("created_at", "pk"))
    for take in takes:
        take.fps = take.job.result.get("fps") or DEFAULT_FPS
        take.seconds = take.job.result.get("duration")
    return takes


def _default_pair(finished: list[Take]) -> list[Take]:
    """What compare shows unasked: the chosen take and the newest other, else the two newest
    (in the scene's order, oldest first)."""
    chosen = next((t for t in finished if t.is_selected), None)
    if chosen is None:
        return finished[-2:]
    other = next(t for t in reversed(finished) if t.pk != chosen.pk)
    return [t for t in finished if t.pk in (chosen.pk, other.pk)]


def _compare_url(slug: str, scene: Scene, takes: list[Take]) -> str:
    query = urlencode([("takes", take.pk) for take in takes])
    return f"{reverse('take_compare', args=[slug, scene.pk])}?{query}"


def _viewer_url(slug: str, take: Take) -> str:
    return reverse("take_viewer", args=[slug, take.pk])


def _scene_stops(slug: str, scene: Scene) -> tuple[SceneStop | None, SceneStop | None]:
    """The scenes before and after `scene` in its episode, each with the take the viewer
    opens there: its chosen take, else its newest finished one (two queries)."""
    siblings = Scene.objects.filter(episode_id=scene.episode_id).select_related(
        "episode__series__workspace"
    )
    before = siblings.filter(position__lt=scene.position).order_by("-position").first()
    after = siblings.filter(position__gt=scene.position).order_by("position").first()
    neighbours = [s for s in (before, after) if s is not None]
    best: dict[int, Take] = {}
    finished = Take.objects.filter(scene__in=neighbours, job__state=JobState.SUCCEEDED).order_by(
        "-is_selected", "-created_at", "-pk"
    )
    for take in finished if neighbours else []:
        best.setdefault(take.scene_id, take)

    def stop(neighbour: Scene | None) -> SceneStop | None:
        if neighbour is None:
            return None
        take = best.get(neighbour.pk)
        url = _viewer_url(slug, take) if take else neighbour.get_absolute_url()
        return SceneStop(scene=neighbour, url=url, take=take)

    return stop(before), stop(after)


def _storyboard_url(scene: Scene) -> str:
    return f"{scene.episode.get_absolute_url()}#scene-{scene.pk}"


@login_required
@require_GET
def take_viewer(request: HtmxHttpRequest, slug: str, take_id: int) -> HttpResponse:
    """One take as large as the page allows, its facts, and the scene's other finished takes
    in a strip: ←/→ step through them, ↑/↓ go to the episode's neighbouring scenes."""
    membership = membership_for(request.user, slug)
    take = take_for(membership, take_id)
    scene = take.scene
    scene.episode.series.workspace = membership.workspace  # for its URLs, without a query
    takes = _scene_takes(scene)
    current = next(t for t in takes if t.pk == take.pk)
    finished = [t for t in takes if _is_finished(t)]
    # The strip and ←/→: the finished takes, and this one wherever it stands.
    strip = [t for t in takes if _is_finished(t) or t.pk == take.pk]
    index = strip.index(current)
    previous_scene, next_scene = _scene_stops(slug, scene)
    compare_url = ""
    if len(finished) >= 2:
        pair = _default_pair(finished)
        if _is_finished(current):
            # This take beside the chosen one, or (chosen itself) beside the newest other.
            chosen = next((t for t in finished if t.is_selected and t.pk != current.pk), None)
            other = chosen or next(t for t in reversed(finished) if t.pk != current.pk)
            pair = [t for t in finished if t.pk in (current.pk, other.pk)]
        compare_url = _compare_url(slug, scene, pair)
    context = {
        "membership": membership,
        "take": current,
        "scene": scene,
        "episode": scene.episode,
        "strip": strip,
        "previous_take": strip[index - 1] if index > 0 else None,
        "next_take": strip[index + 1] if index + 1 < len(strip) else None,
        "previous_scene": previous_scene,
        "next_scene": next_scene,
        "compare_url": compare_url,
        "storyboard_url": _storyboard_url(scene),
        "can_select": membership.can_edit and _is_finished(current) and not current.is_selected,
    }
    return render(request, "studio/viewer/take.html", context)


def _asked_takes(request: HtmxHttpRequest, finished: list[Take]) -> list[Take]:
    """The finished takes named by `takes` in the query, in the scene's order. A name that is
    not one of this scene's finished takes (another scene's, another workspace's) is a 404."""
    by_id = {take.pk: take for take in finished}
    asked: set[int] = set()
    for value in request.GET.getlist("takes"):
        if not value.isdigit() or int(value) not in by_id:
            raise Http404
        asked.add(int(value))
    return [take for take in finished if take.pk in asked]


def _compare_context(
    request: HtmxHttpRequest, membership: Membership, scene: Scene
) -> dict[str, object]:
    slug = membership.workspace.slug
    takes = _scene_takes(scene)
    finished = [t for t in takes if _is_finished(t)]
    shown = _asked_takes(request, finished)
    problem = ""
    if len(finished) >= 2 and len(shown) < 2:
        if request.GET.getlist("takes"):
            problem = "Tick two or more takes to compare them; these are the usual two."
        shown = _default_pair(finished)
    return {
        "membership": membership,
        "scene": scene,
        "episode": scene.episode,
        "finished": finished,
        "shown": shown,
        "shown_ids": {take.pk for take in shown},
        "chosen": next((t for t in takes if t.is_selected), None),
        "problem": problem,
        "here": _compare_url(slug, scene, shown) if len(shown) >= 2 else "",
        "storyboard_url": _storyboard_url(scene),
    }


@login_required
@require_GET
def take_compare(request: HtmxHttpRequest, slug: str, scene_id: int) -> HttpResponse:
    """Two or more finished takes of a scene side by side under one transport, each with
    "Choose this take" (owners and editors): `?takes=<id>&takes=<id>…`, else the chosen take
    and the newest other (or the two newest)."""
    membership = membership_for(request.user, slug)
    scene = scene_for(membership, scene_id)
    scene.episode.series.workspace = membership.workspace  # for its URLs, without a query
    context = _compare_context(request, membership, scene)
    return render(request, "studio/viewer/compare.html", context)
