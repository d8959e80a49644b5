"""Reads for the storyboard: an episode's scenes with their takes, in a constant number of queries.

Every card needs its selected take, its latest take, whether a take is in flight, what
the scene has cost so far, the drift score of the take it shows, the characters its
prompt mentions and its dialogue. Those come from four flat queries (takes with their
jobs and scores, mentions, the mentioned characters' first images, lines) read into small
frozen rows rather than model instances: a 300-scene, 900-take episode costs the same
handful of queries as a 3-scene one, and building thousands of model instances (and
converting columns no card shows) was most of its server time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import QuerySet

from characters.models import ReferenceAsset
from jobs.models import TERMINAL_STATES, JobState
from studio.models import DialogueLine, Episode, Scene, Take, TakeScore

_STATE_LABELS = dict(JobState.choices)


@dataclass(frozen=True, slots=True)
class CardJob:
    """What a card shows of a take's job."""

    state: str
    progress: int
    error_message: str
    cost_estimate: Decimal
    cost_actual: Decimal | None
    provider_name: str

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def state_label(self) -> str:
        return _STATE_LABELS.get(self.state, self.state)


@dataclass(frozen=True, slots=True)
class CardScore:
    """What a card shows of a take's drift score: its state, its axes (the worst character's,
    0-100), the threshold they were held to, and the flag in words ("" when not flagged)."""

    state: str
    face: float | None
    clothing: float | None
    style: float | None
    threshold: int | None
    flag_summary: str

    @property
    def axes(self) -> tuple[tuple[str, float | None], ...]:
        return (("Face", self.face), ("Clothing", self.clothing), ("Style", self.style))


def _card_score(
    state: str | None,
    face: float | None,
    clothing: float | None,
    style: float | None,
    threshold: int | None,
    flagged: bool | None,
    reasons: list | None,
) -> CardScore | None:
    if state is None:  # no score row (yet)
        return None
    summary = ""
    if flagged:
        # The model's wording, from an unsaved row: only flagged takes pay for building one.
        row = TakeScore(flagged=True, flag_reasons=reasons or [], threshold=threshold)
        summary = row.flag_summary
    return CardScore(state, face, clothing, style, threshold, summary)


@dataclass(frozen=True, slots=True)
class CardTake:
    """A take as a card shows it (read-only; the takes panel uses the real Take)."""

    pk: int
    is_selected: bool
    review_state: str
    job: CardJob
    score: CardScore | None = None


@dataclass(frozen=True, slots=True)
class CardImage:
    """The one thing a chip reads of a character's first image: its id."""

    pk: int


@dataclass(frozen=True, slots=True)
class CardCharacter:
    """A mentioned character as its chip shows it."""

    pk: int
    handle: str
    name: str
    image_list: list[CardImage] = field(default_factory=list)  # its first image, if any


@dataclass(frozen=True, slots=True)
class CardLine:
    """A line of the scene's dialogue as its card shows it ("" name: a voice off screen)."""

    name: str
    handle: str
    text: str
    start: float | None

    @property
    def start_text(self) -> str:
        return "" if self.start is None else f"{self.start:g} s"


@dataclass(frozen=True)
class Board:
    """What a scene's card shows about its takes."""

    selected: CardTake | None
    latest: CardTake | None
    in_flight: CardTake | None
    take_count: int
    spent: Decimal
    pictured: CardTake | None = None  # the take whose thumbnail the card shows

    @property
    def shown(self) -> CardTake | None:
        """The take whose picture and price the card shows."""
        return self.selected or self.latest

    @property
    def stopped(self) -> CardTake | None:
        """The latest take when it failed or was cancelled (and nothing newer is running)."""
        latest = self.latest
        stopped = latest is not None and latest.job.state in (JobState.FAILED, JobState.CANCELLED)
        return latest if stopped and self.in_flight is None else None

    @property
    def scoring(self) -> bool:
        """Whether the pictured take's drift score is being worked out (the card polls)."""
        score = self.pictured.score if self.pictured else None
        return score is not None and score.state == TakeScore.State.PENDING

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
    def of(cls, takes: Iterable[CardTake]) -> Board:
        """Takes newest first."""
        takes = list(takes)
        spent = Decimal("0")
        for take in takes:
            if take.job.cost_actual is not None:
                spent += take.job.cost_actual
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


def _card_takes(scene_ids: list[int]) -> dict[int, list[CardTake]]:
    """Each scene's takes, newest first, in one query."""
    rows = (
        Take.objects.filter(scene_id__in=scene_ids)
        .order_by("-created_at", "-pk")
        .values_list(
            "scene_id",
            "pk",
            "is_selected",
            "review_state",
            "job__state",
            "job__progress",
            "job__error_message",
            "job__cost_estimate",
            "job__cost_actual",
            "job__provider_account__name",
            # The drift score, through a LEFT JOIN: no query of its own.
            "score__state",
            "score__face",
            "score__clothing",
            "score__style",
            "score__threshold",
            "score__flagged",
            "score__flag_reasons",
        )
    )
    takes: dict[int, list[CardTake]] = defaultdict(list)
    for (
        scene_id,
        pk,
        selected,
        review,
        state,
        progress,
        error,
        estimate,
        actual,
        name,
        *score,
    ) in rows:
        job = CardJob(state, progress, error, estimate, actual, name)
        takes[scene_id].append(CardTake(pk, selected, review, job, _card_score(*score)))
    return takes


def _card_mentions(scene_ids: list[int]) -> dict[int, list[CardCharacter]]:
    """Each scene's mentioned characters with their first image, in two queries."""
    through = Scene.mentions.through
    links = list(
        through.objects.filter(scene_id__in=scene_ids)
        .order_by("pk")
        .values_list("scene_id", "character_id", "character__handle", "character__name")
    )
    character_ids = {character_id for _, character_id, _, _ in links}
    first_image: dict[int, int] = {}
    images = (
        ReferenceAsset.current.filter(
            character_id__in=character_ids, kind=ReferenceAsset.Kind.IMAGE
        )
        .order_by("character_id", "created_at", "pk")
        .values_list("character_id", "pk")
    )
    for character_id, pk in images:
        first_image.setdefault(character_id, pk)
    characters: dict[int, CardCharacter] = {}
    mentions: dict[int, list[CardCharacter]] = defaultdict(list)
    for scene_id, character_id, handle, name in links:
        character = characters.get(character_id)
        if character is None:
            image = first_image.get(character_id)
            character = CardCharacter(
                character_id, handle, name, [CardImage(image)] if image else []
            )
            characters[character_id] = character
        mentions[scene_id].append(character)
    return mentions


def _card_lines(scene_ids: list[int]) -> dict[int, list[CardLine]]:
    """Each scene's dialogue in order, with its speakers' names, in one query."""
    rows = (
        DialogueLine.objects.filter(scene_id__in=scene_ids)
        .order_by("scene_id", "position")
        .values_list("scene_id", "character__name", "character__handle", "text", "start")
    )
    lines: dict[int, list[CardLine]] = defaultdict(list)
    for scene_id, name, handle, text, start in rows:
        lines[scene_id].append(CardLine(name or "", handle or "", text, start))
    return lines


def storyboard_scenes(*, episode: Episode, scene_ids: Iterable[int] | None = None) -> list[Scene]:
    """The episode's scenes in order, each with `.board`, `.take_list`, `.mention_list` and
    `.line_list` (its dialogue)."""
    scenes: QuerySet[Scene] = Scene.objects.filter(episode=episode)
    if scene_ids is not None:
        scenes = scenes.filter(pk__in=list(scene_ids))
    result = list(scenes.order_by("position", "pk"))
    ids = [scene.pk for scene in result]
    takes = _card_takes(ids) if ids else {}
    mentions = _card_mentions(ids) if ids else {}
    lines = _card_lines(ids) if ids else {}
    for scene in result:
        scene.episode = episode  # one episode for all; avoids a query per card
        scene.take_list = takes.get(scene.pk, [])
        scene.mention_list = mentions.get(scene.pk, [])
        scene.line_list = lines.get(scene.pk, [])
        scene.board = Board.of(scene.take_list)
    return result


def storyboard_scene(*, scene: Scene) -> Scene:
    """One scene loaded as the storyboard loads it (for a card or its status fragment)."""
    return storyboard_scenes(episode=scene.episode, scene_ids=[scene.pk])[0]
