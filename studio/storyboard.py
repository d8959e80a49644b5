"""Reads for the storyboard: an episode's scenes with their takes, in a constant number of queries.

Every card needs its selected take, its latest take, whether a take is in flight, what
the scene has cost so far, the drift score of the take it shows, the characters its
prompt mentions and its dialogue. Those come from four flat queries (takes with their
jobs and scores, mentions, the mentioned characters' first images, lines) read into small
frozen rows rather than model instances: a 300-scene, 900-take episode costs the same
handful of queries as a 3-scene one, and building thousands of model instances (and
converting columns no card shows) was most of its server time.

A long episode is read a slice at a time (`storyboard_slice`): scenes by position with a
keyset (`position > after`, limit N), so a slice deep in a 3,000-scene episode costs what
the first one does, and the page's header counts come from aggregate queries
(`storyboard_counts`) rather than from every scene's takes.

The timeline view (`storyboard_timeline`) shows every scene at once, so it reads only what a
strip block shows (length, number, chosen take) in one query, whatever the episode's length.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import FilteredRelation, Q, QuerySet
from django.utils.safestring import SafeString

from characters.models import ReferenceAsset
from jobs.compiled import Compiled
from jobs.models import TERMINAL_STATES, Job, JobState
from studio.models import DialogueLine, Episode, Membership, Scene, Take, TakeScore

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
    # For an estimated progress where the provider reports none (jobs.estimates).
    provider_account_id: int | None = None
    submitted_at: datetime | None = None

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
    # Why a reviewer rejected it (a chosen take that was rejected says so on its card).
    review_codes: tuple[str, ...] = ()
    review_reason: str = ""


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
    rows = _takes_of_scenes(ids=scene_ids)
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
        account_id,
        submitted_at,
        codes,
        reason,
        *score,
    ) in rows:
        job = CardJob(state, progress, error, estimate, actual, name, account_id, submitted_at)
        card = CardTake(pk, selected, review, job, _card_score(*score), tuple(codes or ()), reason)
        takes[scene_id].append(card)
    return takes


# What a card shows of its takes (newest first), compiled once per process (jobs.compiled):
# every page, slice and live change reads it.
_takes_of_scenes = Compiled(
    lambda ids: (
        Take.objects.filter(scene_id__in=ids)
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
            "job__provider_account_id",
            "job__submitted_at",
            "review_codes",
            "review_reason",
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
)


def _card_mentions(scene_ids: list[int]) -> dict[int, list[CardCharacter]]:
    """Each scene's mentioned characters with their first image, in two queries."""
    links = _mentions_of_scenes(ids=scene_ids)
    character_ids = list({character_id: None for _, character_id, _, _ in links})
    first_image: dict[int, int] = {}
    images = _images_of_characters(ids=character_ids)
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


_mentions_of_scenes = Compiled(
    lambda ids: (
        Scene.mentions.through.objects.filter(scene_id__in=ids)
        .order_by("pk")
        .values_list("scene_id", "character_id", "character__handle", "character__name")
    )
)
_images_of_characters = Compiled(
    lambda ids: (
        ReferenceAsset.current.filter(character_id__in=ids, kind=ReferenceAsset.Kind.IMAGE)
        .order_by("character_id", "created_at", "pk")
        .values_list("character_id", "pk")
    )
)


def _card_lines(scene_ids: list[int]) -> dict[int, list[CardLine]]:
    """Each scene's dialogue in order, with its speakers' names, in one query."""
    rows = _lines_of_scenes(ids=scene_ids)
    lines: dict[int, list[CardLine]] = defaultdict(list)
    for scene_id, name, handle, text, start in rows:
        lines[scene_id].append(CardLine(name or "", handle or "", text, start))
    return lines


_lines_of_scenes = Compiled(
    lambda ids: (
        DialogueLine.objects.filter(scene_id__in=ids)
        .order_by("scene_id", "position")
        .values_list("scene_id", "character__name", "character__handle", "text", "start")
    )
)


def storyboard_scenes(*, episode: Episode, scene_ids: Iterable[int] | None = None) -> list[Scene]:
    """The episode's scenes in order, each with `.board`, `.take_list`, `.mention_list` and
    `.line_list` (its dialogue)."""
    scenes: QuerySet[Scene] = Scene.objects.filter(episode=episode)
    if scene_ids is not None:
        scenes = scenes.filter(pk__in=list(scene_ids))
    return _load_cards(episode, list(scenes.order_by("position", "pk")))


def _load_cards(episode: Episode, result: list[Scene]) -> list[Scene]:
    """The scenes (in order) with what their cards show, in a constant number of queries."""
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


def storyboard_status(*, scene: Scene) -> Scene:
    """The scene with what its status block shows (its takes' board), in one query: the
    block shows no chips nor dialogue, and it is what a generating card asks for most."""
    takes = _card_takes([scene.pk]).get(scene.pk, [])
    scene.take_list, scene.mention_list, scene.line_list = takes, [], []
    scene.board = Board.of(takes)
    return scene


def storyboard_statuses(*, episode: Episode, scene_ids: Iterable[int]) -> list[Scene]:
    """The scenes (in order) with what their status blocks show, in two queries: the live
    streams' reads, which need neither chips nor dialogue."""
    scenes = _scenes_of_episode(episode_id=episode.pk, ids=list(scene_ids))
    takes = _card_takes([scene.pk for scene in scenes]) if scenes else {}
    for scene in scenes:
        scene.episode = episode
        scene.take_list, scene.mention_list, scene.line_list = takes.get(scene.pk, []), [], []
        scene.board = Board.of(scene.take_list)
    return scenes


_scenes_of_episode = Compiled(
    lambda episode_id, ids: Scene.objects.filter(episode_id=episode_id, pk__in=ids).order_by(
        "position", "pk"
    )
)


def storyboard_scene(*, scene: Scene) -> Scene:
    """One scene loaded as the storyboard loads it (for a card or its status fragment)."""
    return storyboard_scenes(episode=scene.episode, scene_ids=[scene.pk])[0]


def slice_size() -> int:
    """Cards a storyboard renders at a time (STORYBOARD_SLICE)."""
    return max(1, settings.STORYBOARD_SLICE)


@dataclass(frozen=True)
class Slice:
    """A run of consecutive scenes, loaded as the storyboard loads them, and whether the
    episode has scenes before and after it (what the loaders at either end need)."""

    scenes: list[Scene]
    earlier: bool
    later: bool

    @property
    def first(self) -> int | None:
        """The position of its first scene."""
        return self.scenes[0].position if self.scenes else None

    @property
    def last(self) -> int | None:
        """The position of its last scene."""
        return self.scenes[-1].position if self.scenes else None


def storyboard_slice(
    *,
    episode: Episode,
    after: int | None = None,
    before: int | None = None,
    limit: int | None = None,
) -> Slice:
    """At most `limit` scenes right after position `after` (from the start when None), or
    right before position `before`, loaded for their cards.

    A keyset on (position, pk), not an offset: the database walks the episode's index from
    the given position, so the cost does not grow with how far into the episode it is.
    """
    limit = limit or slice_size()
    if before is not None:
        rows = _scenes_before(episode_id=episode.pk, position=before, limit=limit + 1)
        more, rows = len(rows) > limit, rows[:limit][::-1]
        earlier, later = more, True
    else:
        if after is not None:
            rows = _scenes_after(episode_id=episode.pk, position=after, limit=limit + 1)
        else:
            rows = _scenes_from_start(episode_id=episode.pk, limit=limit + 1)
        more, rows = len(rows) > limit, rows[:limit]
        earlier = rows[0].position > 0 if rows else after is not None
        later = more
    return Slice(_load_cards(episode, rows), earlier=earlier, later=later)


# A slice's scenes: from the start, after a position or before one (a keyset each).
_scenes_from_start = Compiled(
    lambda episode_id, limit: Scene.objects.filter(episode_id=episode_id).order_by(
        "position", "pk"
    )[:limit],
    fixed=("limit",),
)
_scenes_after = Compiled(
    lambda episode_id, position, limit: Scene.objects.filter(
        episode_id=episode_id, position__gt=position
    ).order_by("position", "pk")[:limit],
    fixed=("limit",),
)
_scenes_before = Compiled(
    lambda episode_id, position, limit: Scene.objects.filter(
        episode_id=episode_id, position__lt=position
    ).order_by("-position", "-pk")[:limit],
    fixed=("limit",),
)


def storyboard_counts(*, episode: Episode) -> dict[str, int]:
    """The episode's header figures, each scene counted by the badge its card shows:
    generating (a take in flight), ready to choose (its latest take is done and none is
    chosen), failed (its latest take failed and nothing runs), and those without a chosen
    take (none chosen and none generating).

    One query: the episode's takes grouped by scene (each take read once; a probe of the
    takes per scene cost fifty times as much at 3,000 scenes), counted over, and the scenes.
    A scene's latest take is the one made last. Written in SQL: the same query through the
    ORM spent three times as long being compiled as being run, on every page and every
    live change of the header."""
    take, job, scene = Take._meta.db_table, Job._meta.db_table, Scene._meta.db_table
    terminal = ", ".join(["%s"] * len(TERMINAL_STATES))
    sql = f"""
        SELECT
            COALESCE(SUM(CASE WHEN flying > 0 THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN flying > 0 OR chosen > 0 THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN flying = 0 AND chosen = 0 AND last_done = last
                         THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN flying = 0 AND last_failed = last THEN 1 ELSE 0 END), 0),
            (SELECT COUNT(*) FROM {scene} WHERE episode_id = %s)
        FROM (
            SELECT
                SUM(CASE WHEN j.state NOT IN ({terminal}) THEN 1 ELSE 0 END) AS flying,
                SUM(CASE WHEN t.is_selected THEN 1 ELSE 0 END) AS chosen,
                MAX(t.created_at) AS last,
                MAX(CASE WHEN j.state = %s THEN t.created_at END) AS last_done,
                MAX(CASE WHEN j.state = %s THEN t.created_at END) AS last_failed
            FROM {take} t
            JOIN {job} j ON j.id = t.job_id
            JOIN {scene} s ON s.id = t.scene_id
            WHERE s.episode_id = %s
            GROUP BY t.scene_id
        ) per_scene
    """  # noqa: S608 - table names from the models; every value is a parameter
    params = [episode.pk, *TERMINAL_STATES, JobState.SUCCEEDED, JobState.FAILED, episode.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        in_flight, covered, ready, failed, scene_count = cursor.fetchone()
    return {
        "scene_count": scene_count,
        "in_flight": in_flight,
        "ready": ready,
        "failed": failed,
        "missing": scene_count - covered,
    }


def running_time(seconds: int) -> str:
    """Seconds as m:ss (h:mm:ss from an hour on)."""
    minutes, secs = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TimelineShot(NamedTuple):
    """A scene as a block of the timeline strip: its length, and the take chosen for it.
    (A tuple: thousands are made per page, each several times cheaper than a frozen class.)"""

    pk: int
    position: int
    title: str
    duration: int  # seconds: the block's width
    start: int  # seconds from the episode's start
    chosen: int | None  # the chosen take's id; None is a gap
    chosen_rejected: bool  # the chosen take was rejected in review

    @property
    def number(self) -> int:
        return self.position + 1

    @property
    def label(self) -> str:
        """What the block says on hover: "Scene 3: Dusk · 8 s from 0:20 · no take chosen"."""
        title = f": {self.title}" if self.title else ""
        take = (
            " · no take chosen"
            if self.chosen is None
            else " · its chosen take was rejected"
            if self.chosen_rejected
            else ""
        )
        return (
            f"Scene {self.number}{title} · {self.duration} s from {running_time(self.start)}{take}"
        )


@dataclass(frozen=True)
class Timeline:
    """Every scene of an episode in order, with the running time and the gaps in it."""

    shots: list[TimelineShot]

    @property
    def total(self) -> int:
        return sum(shot.duration for shot in self.shots)

    @property
    def total_text(self) -> str:
        return running_time(self.total)

    @property
    def gaps(self) -> list[TimelineShot]:
        return [shot for shot in self.shots if shot.chosen is None]

    @property
    def gap_text(self) -> str:
        return running_time(sum(shot.duration for shot in self.gaps))

    def blocks(self, thumbnail: Callable[[int], str]) -> SafeString:
        """The strip's blocks (<li>s), `thumbnail` giving a take's picture URL (escaped).

        Built here rather than in the template: at 3,000 scenes a template's eight escaped
        expressions a block took longer than the rest of the page; here only the label,
        which holds the scene's title, needs escaping (the rest are numbers and a URL)."""
        parts = []
        for shot in self.shots:
            pk = shot.pk
            if shot.chosen is None:
                kind, inside = " gap", '<span class="no-take">no take</span>'
            else:
                kind = " rejected" if shot.chosen_rejected else ""
                inside = f'<img src="{thumbnail(shot.chosen)}" alt="" loading="lazy">'
            parts.append(
                f'<li class="shot tl-d{shot.duration}{kind}" data-scene="{pk}">'
                f'<a href="?at={pk}#scene-{pk}" title="{html.escape(shot.label)}">{inside}'
                f'<span class="shot-number">{shot.position + 1}</span></a></li>'
            )
        return SafeString("\n".join(parts))


def storyboard_timeline(*, episode: Episode) -> Timeline:
    """The episode's scenes as timeline blocks, in one query: each scene with its chosen take
    through a LEFT JOIN (a scene has at most one, the `one_selected_take` constraint)."""
    rows = (
        Scene.objects.filter(episode=episode)
        .annotate(chosen=FilteredRelation("takes", condition=Q(takes__is_selected=True)))
        .order_by("position", "pk")
        .values_list("pk", "position", "title", "duration", "chosen__pk", "chosen__review_state")
    )
    shots, start = [], 0
    for pk, position, title, duration, chosen, review in rows:
        rejected = review == Take.Review.REJECTED if chosen else False
        shots.append(TimelineShot(pk, position, title, duration, start, chosen, rejected))
        start += duration
    return Timeline(shots)


def card_template(membership: Membership) -> str:
    """The Jinja template of one storyboard card in the member's view: a change answered
    with a single card (an edit saved, a take retried) keeps the look of the cards around it."""
    if membership.storyboard_view == Membership.StoryboardView.GRID:
        return "studio/storyboard/grid_card.html"
    return "studio/storyboard/scene_card.html"
