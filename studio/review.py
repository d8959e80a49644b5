"""Reads for the review board: the finished takes of an episode or of a character, in order,
with their review state and automatic flag; the references of the take in the player; and
the workspace's queue by episode and by character."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet

from characters.models import Character, CharacterVersion, ReferenceAsset
from characters.selectors import characters_visible_to
from jobs.models import JobState
from studio.models import CharacterScore, Episode, Take, TakeScore, Workspace

# What the board shows, by the `show` parameter; the first is the default.
FILTERS = {
    "awaiting": "Awaiting review",
    "flagged": "Flagged",
    "all": "All",
}
DEFAULT_FILTER = "awaiting"
# A player without the video's frame rate steps at this many frames a second.
DEFAULT_FPS = 24


def _awaiting(take: Take) -> bool:
    return take.review_state == Take.Review.PENDING


def _flagged(take: Take) -> bool:
    """Flagged by the automatic check and still awaiting a reviewer."""
    return _awaiting(take) and take.automatic is not None and take.automatic.flagged


SHOWS = {"awaiting": _awaiting, "flagged": _flagged, "all": lambda take: True}


@dataclass
class SceneGroup:
    """The shown takes of one scene, under a heading."""

    heading: str
    takes: list[Take] = field(default_factory=list)


@dataclass
class Board:
    """An episode's or a character's finished takes as the review board shows them."""

    takes: list[Take]  # every finished take on the board, in board order
    show: str
    current: Take | None
    counts: dict[str, int]

    @property
    def shown(self) -> list[Take]:
        return [take for take in self.takes if SHOWS[self.show](take)]

    @property
    def groups(self) -> list[SceneGroup]:
        groups: list[SceneGroup] = []
        for take in self.shown:
            if not groups or groups[-1].heading != take.group_heading:
                groups.append(SceneGroup(take.group_heading))
            groups[-1].takes.append(take)
        return groups

    @property
    def filters(self) -> list[tuple[str, str, int]]:
        """(value, label, count) of each filter, for the tabs."""
        return [(value, label, self.counts[value]) for value, label in FILTERS.items()]

    @property
    def previous(self) -> Take | None:
        """The shown take before the current one (by board order)."""
        if self.current is None:
            return None
        before = [t for t in self.shown if t.board_index < self.current.board_index]
        return before[-1] if before else None

    @property
    def next(self) -> Take | None:
        """The shown take after the current one (by board order)."""
        if self.current is None:
            return None
        return next((t for t in self.shown if t.board_index > self.current.board_index), None)

    def next_awaiting(self, after: Take | None) -> Take | None:
        """The first take after `after` (wrapping round) that awaits review and that the
        filter shows: where the board goes once a take is decided."""
        waiting = [t for t in self.takes if _awaiting(t) and SHOWS[self.show](t)]
        if not waiting:
            return None
        if after is None:
            return waiting[0]
        return next((t for t in waiting if t.board_index > after.board_index), waiting[0])


def episode_scope(*, episode: Episode) -> QuerySet[Take]:
    """Every take of the episode, finished or not (what a POST may name)."""
    return Take.objects.filter(scene__episode=episode)


def character_scope(*, character: Character, workspace: Workspace) -> QuerySet[Take]:
    """The workspace's takes made with a version of the character (a shared character is
    used by other workspaces too: their takes are not ours to see)."""
    made_with = Take.objects.filter(character_versions__character=character).values("pk")
    return Take.objects.filter(scene__episode__series__workspace=workspace, pk__in=made_with)


def review_board(
    *, scope: QuerySet[Take], show: str, current_id: int | None, by_episode: bool = False
) -> Board:
    """The finished takes of `scope` in board order (series, episode, scene, oldest take
    first), each with `board_index`, `automatic` (its TakeScore or None), `flag` (the flag
    in words, or "") and `group_heading`; the current take is `current_id` when it is on the
    board, else the first the filter shows. A fixed number of queries, whatever the number of
    takes."""
    takes = list(
        scope.filter(job__state=JobState.SUCCEEDED)
        .select_related("job__provider_account", "scene__episode__series", "score")
        .order_by(
            "scene__episode__series__title",
            "scene__episode__number",
            "scene__position",
            "created_at",
            "pk",
        )
    )
    for index, take in enumerate(takes):
        take.board_index = index
        take.automatic = _score_of(take)
        take.flag = take.automatic.flag_summary if take.automatic is not None else ""
        scene = take.scene
        label = f"Scene {scene.number}" + (f" · {scene.title}" if scene.title else "")
        if not by_episode:
            episode = scene.episode
            label = f"{episode.series.title} · Episode {episode.number} · {label}"
        take.group_heading = label
    show = show if show in FILTERS else DEFAULT_FILTER
    counts = {value: sum(1 for t in takes if SHOWS[value](t)) for value in FILTERS}
    board = Board(takes=takes, show=show, current=None, counts=counts)
    board.current = next((t for t in takes if t.pk == current_id), None) or next(
        iter(board.shown), None
    )
    return board


def _score_of(take: Take) -> TakeScore | None:
    try:
        return take.score
    except TakeScore.DoesNotExist:
        return None


def take_references(*, take: Take, character: Character | None = None) -> list[CharacterVersion]:
    """The character versions the take was made with (only `character`'s when given), each
    with `asset_list` (its references, oldest first), `automatic` (that character's
    CharacterScore in the take's score, or None) and `fallback` (True when the take records
    no version of `character`, so its newest version stands in)."""
    assets = Prefetch(
        "assets", queryset=ReferenceAsset.objects.order_by("created_at", "pk"), to_attr="asset_list"
    )
    versions = take.character_versions.select_related("character__workspace").prefetch_related(
        assets
    )
    if character is not None:
        versions = versions.filter(character=character)
    found = list(versions.order_by("character__name", "number"))
    for version in found:
        version.fallback = False
    if character is not None and not found:
        newest = (
            character.versions.select_related("character__workspace")
            .prefetch_related(assets)
            .order_by("-number")
            .first()
        )
        if newest is not None:
            newest.fallback = True
            found = [newest]
    scores = {}
    if take.automatic is not None:
        scores = {
            score.character_id: score
            for score in CharacterScore.objects.filter(take_score=take.automatic)
        }
    for version in found:
        version.automatic = scores.get(version.character_id)
    return found


def _queue_counts(path: str, *, within: Q | None = None) -> dict[str, Count]:
    """Finished, awaiting review and flagged-and-awaiting takes, counted through `path`
    (the takes' relation from the annotated model), among those `within` allows."""
    finished = Q(**{f"{path}__job__state": JobState.SUCCEEDED}) & (within or Q())
    awaiting = finished & Q(**{f"{path}__review_state": Take.Review.PENDING})
    flagged = awaiting & Q(**{f"{path}__score__flagged": True})
    return {
        "finished": Count(path, filter=finished, distinct=True),
        "awaiting": Count(path, filter=awaiting, distinct=True),
        "flagged": Count(path, filter=flagged, distinct=True),
    }


def review_queue(*, workspace: Workspace) -> dict[str, list]:
    """The workspace's episodes and characters that have finished takes, each with
    `finished`, `awaiting` and `flagged` counts (flagged: awaiting review too)."""
    episodes = (
        Episode.objects.filter(series__workspace=workspace)
        .select_related("series")
        .annotate(**_queue_counts("scenes__takes"))
        .filter(finished__gt=0)
        .order_by("series__title", "number")
    )
    # A shared character's takes in other workspaces are theirs: count only ours.
    ours = Q(versions__takes__scene__episode__series__workspace=workspace)
    characters = (
        characters_visible_to(workspace=workspace)
        .select_related("workspace")
        .annotate(**_queue_counts("versions__takes", within=ours))
        .filter(finished__gt=0)
        .order_by("name")
    )
    return {"episodes": list(episodes), "characters": list(characters)}
