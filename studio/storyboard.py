"""Reads for the storyboard: an episode's scenes with their takes, in a constant number of queries.

Every card needs its selected take, its latest take, whether a take is in flight and
what the scene has cost so far. All of it comes from one prefetch of the episode's
takes (their jobs joined, the large JSON columns left behind), so a 300-scene episode
costs the same handful of queries as a 3-scene one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from characters.models import Character, ReferenceAsset
from jobs.models import JobState
from studio.models import Episode, Scene, Take

# Columns of Job the cards never read; they can be large (payloads, provider results).
_HEAVY_JOB_FIELDS = ("job__request", "job__sent_payload", "job__result")


@dataclass(frozen=True)
class Board:
    """What a scene's card shows about its takes."""

    selected: Take | None
    latest: Take | None
    in_flight: Take | None
    take_count: int
    spent: Decimal
    pictured: Take | None = None  # the take whose thumbnail the card shows

    @property
    def shown(self) -> Take | None:
        """The take whose picture and price the card shows."""
        return self.selected or self.latest

    @property
    def stopped(self) -> Take | None:
        """The latest take when it failed or was cancelled (and nothing newer is running)."""
        latest = self.latest
        stopped = latest is not None and latest.job.state in (JobState.FAILED, JobState.CANCELLED)
        return latest if stopped and self.in_flight is None else None

    @property
    def status(self) -> str:
        """A short word for the card's badge: in-flight state, selected, failed, ready, none."""
        if self.in_flight is not None:
            return "in-flight"
        if self.selected is not None:
            return "selected"
        if self.latest is None:
            return "empty"
        if self.latest.job.state == JobState.SUCCEEDED:
            return "ready"
        return self.latest.job.state

    @classmethod
    def of(cls, takes: Iterable[Take]) -> Board:
        """Takes newest first."""
        takes = list(takes)
        spent = Decimal("0")
        for take in takes:
            job = take.job
            if job.cost_actual is not None:
                spent += job.cost_actual
        selected = next((t for t in takes if t.is_selected), None)
        finished = next((t for t in takes if t.job.state == JobState.SUCCEEDED), None)
        return cls(
            pictured=selected or finished,
            selected=selected,
            latest=takes[0] if takes else None,
            in_flight=next((t for t in takes if not t.job.is_terminal), None),
            take_count=len(takes),
            spent=spent,
        )


def _takes() -> Prefetch:
    return Prefetch(
        "takes",
        queryset=Take.objects.select_related("job__provider_account")
        .defer(*_HEAVY_JOB_FIELDS)
        .order_by("-created_at", "-pk"),
        to_attr="take_list",
    )


def _mentions() -> Prefetch:
    images = ReferenceAsset.objects.filter(kind=ReferenceAsset.Kind.IMAGE).order_by(
        "created_at", "pk"
    )
    return Prefetch(
        "mentions",
        queryset=Character.objects.prefetch_related(
            Prefetch("assets", queryset=images, to_attr="image_list")
        ),
        to_attr="mention_list",
    )


def storyboard_scenes(*, episode: Episode, scene_ids: Iterable[int] | None = None) -> list[Scene]:
    """The episode's scenes in order, each with `.board`, `.take_list` and `.mention_list`."""
    scenes: QuerySet[Scene] = Scene.objects.filter(episode=episode)
    if scene_ids is not None:
        scenes = scenes.filter(pk__in=list(scene_ids))
    result = list(scenes.prefetch_related(_takes(), _mentions()).order_by("position", "pk"))
    for scene in result:
        scene.episode = episode  # one episode for all; avoids a query per card
        scene.board = Board.of(scene.take_list)
    return result


def storyboard_scene(*, scene: Scene) -> Scene:
    """One scene loaded as the storyboard loads it (for a card or its status fragment)."""
    return storyboard_scenes(episode=scene.episode, scene_ids=[scene.pk])[0]
