"""Reads of drift scores: the consistency report (per character, provider account and way of
sending characters) and one take's scores in detail.

The report reads one query whatever the number of takes: one row per scored character of
a take, narrow tuples rather than model instances, folded in one pass. Folding in Python
rather than with GROUP BY lets the "All characters" lines count each take once, whatever
the number of its characters: a take with two characters sent the same way is one take
with one cost, not two.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    FloatField,
    Q,
    QuerySet,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from characters.models import Character
from studio.consistency.scoring import AXES
from studio.models import CharacterScore, Series, Take, TakeScore, Workspace

CENT = Decimal("0.01")
# A character counts as recognised in a take when the scorer found it in at least half of
# the frames it sampled (CharacterScore.persistence).
RECOGNISED = 0.5
METHOD_LABELS = dict(CharacterScore.Method.choices)


@dataclass(frozen=True)
class ReportFilters:
    """What the report is narrowed to (None: everything)."""

    series: Series | None = None
    character: Character | None = None
    since: datetime.date | None = None  # takes made on or after this day
    until: datetime.date | None = None  # takes made on or before this day

    @property
    def any(self) -> bool:
        return any(
            value is not None for value in (self.series, self.character, self.since, self.until)
        )


@dataclass(frozen=True)
class ReportLine:
    """One group of the report: a character (None on an "All characters" line) at one provider
    account, sent one way. Scores are means, 0-100; shares are percents; None: nothing to
    average (no reviewed take, no approved second, an axis never scored)."""

    character_id: int | None
    character_name: str
    account_id: int
    account_name: str
    account_kind: str
    method: str
    takes: int
    face: float | None
    clothing: float | None
    style: float | None
    review_face: float | None
    review_clothing: float | None
    review_style: float | None
    persistence: float | None
    reviewed: int
    approved: int
    approval_rate: float | None
    cost: Decimal
    approved_seconds: float
    cost_per_approved_second: Decimal | None
    flagged: int
    flagged_share: float | None

    @property
    def method_label(self) -> str:
        return METHOD_LABELS.get(self.method, self.method)

    @property
    def route(self) -> str:
        """The provider account and the way of sending, in words: "Sora · Reference clip"."""
        return f"{self.account_name} · {self.method_label}"

    def automatic(self, axis: str) -> float | None:
        return getattr(self, axis)

    def reviewer(self, axis: str) -> float | None:
        return getattr(self, f"review_{axis}")


@dataclass(frozen=True)
class Report:
    """The report: one line per character, account and method; one per account and method
    for all characters together; and how many scored takes it covers."""

    lines: list[ReportLine]
    totals: list[ReportLine]
    takes: int
    threshold: int


@dataclass
class _Tally:
    """What one group has added up so far (see ReportLine for what each becomes)."""

    appearances: int = 0
    recognised: int = 0
    axis_sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(AXES, 0.0))
    axis_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AXES, 0))
    takes: set[int] = field(default_factory=set)
    flagged: set[int] = field(default_factory=set)
    reviewed: int = 0
    approved: int = 0
    review_sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(AXES, 0.0))
    review_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AXES, 0))
    cost: Decimal = Decimal(0)
    approved_seconds: float = 0.0

    def add(self, row: _Row) -> None:
        self.appearances += 1
        if row.persistence >= RECOGNISED:
            self.recognised += 1
        for axis, value in zip(AXES, row.scores, strict=True):
            if value is not None:
                self.axis_sums[axis] += value
                self.axis_counts[axis] += 1
        if row.below_threshold:
            self.flagged.add(row.take_id)
        if row.take_id in self.takes:
            return  # what belongs to the take itself counts once per group
        self.takes.add(row.take_id)
        self.cost += row.cost
        if row.review_state != Take.Review.PENDING:
            self.reviewed += 1
        if row.review_state == Take.Review.APPROVED:
            self.approved += 1
            self.approved_seconds += row.seconds
        for axis, value in zip(AXES, row.review_scores, strict=True):
            if value is not None:
                self.review_sums[axis] += value
                self.review_counts[axis] += 1

    def line(self, key: tuple, names: dict) -> ReportLine:
        character_id, account_id, method = key
        takes = len(self.takes)
        seconds = round(self.approved_seconds, 1)
        cost = self.cost.quantize(CENT, rounding=ROUND_HALF_UP)
        return ReportLine(
            character_id=character_id,
            character_name=names["character"].get(character_id, "All characters"),
            account_id=account_id,
            account_name=names["account"][account_id][0],
            account_kind=names["account"][account_id][1],
            method=method,
            takes=takes,
            **{axis: _mean(self.axis_sums[axis], self.axis_counts[axis]) for axis in AXES},
            **{
                f"review_{axis}": _mean(self.review_sums[axis], self.review_counts[axis])
                for axis in AXES
            },
            persistence=_percent(self.recognised, self.appearances),
            reviewed=self.reviewed,
            approved=self.approved,
            approval_rate=_percent(self.approved, self.reviewed),
            cost=cost,
            approved_seconds=seconds,
            cost_per_approved_second=(
                # Through str: a float's binary tail is not a second anyone measured.
                (cost / Decimal(str(seconds))).quantize(CENT, rounding=ROUND_HALF_UP)
                if seconds
                else None
            ),
            flagged=len(self.flagged),
            flagged_share=_percent(len(self.flagged), takes),
        )


@dataclass(frozen=True, slots=True)
class _Row:
    take_id: int
    scores: tuple[float | None, float | None, float | None]
    persistence: float
    below_threshold: bool
    review_state: str
    review_scores: tuple[int | None, int | None, int | None]
    cost: Decimal
    seconds: float


def _mean(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


def _percent(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


def scored_characters(*, workspace: Workspace, filters: ReportFilters) -> QuerySet[CharacterScore]:
    """The characters of the workspace's scored takes, narrowed by `filters`."""
    scores = CharacterScore.objects.filter(
        take_score__state=TakeScore.State.SCORED,
        take_score__take__scene__episode__series__workspace=workspace,
    )
    if filters.series is not None:
        scores = scores.filter(take_score__take__scene__episode__series=filters.series)
    if filters.character is not None:
        scores = scores.filter(character=filters.character)
    if filters.since is not None:
        scores = scores.filter(take_score__take__created_at__date__gte=filters.since)
    if filters.until is not None:
        scores = scores.filter(take_score__take__created_at__date__lte=filters.until)
    return scores


def consistency_report(*, workspace: Workspace, filters: ReportFilters | None = None) -> Report:
    """Per character, provider account and method, and per account and method for all characters:
    takes, mean automatic and reviewer scores, persistence, approval rate, cost per approved
    second and flagged share (ReportLine). One query, whatever the number of takes.

    - persistence: the share of the group's takes in which the character was recognised
      (CharacterScore.persistence ≥ 0.5); on an "All characters" line, of its characters'
      appearances;
    - approval rate: approved takes / reviewed (approved or rejected) takes;
    - cost per approved second: what all the group's takes cost (cost_actual, else the
      estimate) / the seconds of its approved takes: rejected takes make approved video dearer;
    - flagged share: takes in which the character (any of them, on an "All characters"
      line) scored below the threshold the take was scored against, on any axis.
    """
    filters = filters or ReportFilters()
    take = "take_score__take"
    threshold = Coalesce("take_score__threshold", Value(workspace.drift_threshold))
    below = Q()
    for axis in AXES:
        below |= Q(**{f"{axis}__lt": threshold})
    rows = (
        scored_characters(workspace=workspace, filters=filters)
        .annotate(
            below_threshold=ExpressionWrapper(below, output_field=BooleanField()),
            cost=Coalesce(f"{take}__job__cost_actual", f"{take}__job__cost_estimate"),
            seconds=Cast(KeyTextTransform("duration", f"{take}__job__result"), FloatField()),
            account_id=F(f"{take}__job__provider_account_id"),
        )
        .order_by()
        .values_list(
            "character_id",
            "character__name",
            "account_id",
            f"{take}__job__provider_account__name",
            f"{take}__job__provider_account__kind",
            "method",
            f"{take}_id",
            "face",
            "clothing",
            "style",
            "persistence",
            "below_threshold",
            f"{take}__review_state",
            f"{take}__review_face",
            f"{take}__review_clothing",
            f"{take}__review_style",
            "cost",
            "seconds",
        )
    )
    return _fold(rows, threshold=workspace.drift_threshold)


def _fold(rows: Iterable[tuple], *, threshold: int) -> Report:
    by_character: dict[tuple, _Tally] = {}
    by_route: dict[tuple, _Tally] = {}
    names: dict[str, dict] = {"character": {}, "account": {}}
    takes: set[int] = set()
    for (
        character_id,
        character_name,
        account_id,
        account_name,
        account_kind,
        method,
        take_id,
        face,
        clothing,
        style,
        persistence,
        below_threshold,
        review_state,
        review_face,
        review_clothing,
        review_style,
        cost,
        seconds,
    ) in rows:
        names["character"][character_id] = character_name
        names["account"][account_id] = (account_name, account_kind)
        takes.add(take_id)
        row = _Row(
            take_id=take_id,
            scores=(face, clothing, style),
            persistence=persistence,
            below_threshold=bool(below_threshold),
            review_state=review_state,
            review_scores=(review_face, review_clothing, review_style),
            cost=cost or Decimal(0),
            seconds=seconds or 0.0,
        )
        by_character.setdefault((character_id, account_id, method), _Tally()).add(row)
        by_route.setdefault((None, account_id, method), _Tally()).add(row)
    lines = [tally.line(key, names) for key, tally in by_character.items()]
    totals = [tally.line(key, names) for key, tally in by_route.items()]
    method_order = list(METHOD_LABELS)
    lines.sort(
        key=lambda line: (
            line.character_name.casefold(),
            line.character_id,
            line.account_name.casefold(),
            method_order.index(line.method),
        )
    )
    totals.sort(key=lambda line: (line.account_name.casefold(), method_order.index(line.method)))
    return Report(lines=lines, totals=totals, takes=len(takes), threshold=threshold)


# --- One take -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorstFrame:
    """A frame that scored worst on an axis, with its number in the take's frame URLs."""

    number: int
    axis: str
    seconds: float
    score: float


def take_score_of(take: Take) -> TakeScore | None:
    """The take's score with its characters (and their versions) loaded, or None."""
    score = TakeScore.objects.filter(take=take).first()
    if score is None:
        return None
    characters = list(
        CharacterScore.objects.filter(take_score=score)
        .select_related("character", "version")
        .order_by("pk")
    )
    number = 0
    for character in characters:
        character.worst_frames = []
        for frame in character.worst:
            character.worst_frames.append(
                WorstFrame(number, frame["axis"], frame["seconds"], frame["score"])
            )
            number += 1
    characters.sort(key=lambda character: (character.character.name.casefold(), character.pk))
    score.character_list = characters
    return score


def worst_frame_name(take: Take, number: int) -> str | None:
    """The storage name of the take's `number`th worst frame (numbered as take_score_of does),
    or None: only a name recorded on the take's own scores is ever given."""
    worst_lists = CharacterScore.objects.filter(take_score__take=take).order_by("pk")
    seen = 0
    for worst in worst_lists.values_list("worst", flat=True):
        if number < seen + len(worst):
            return worst[number - seen].get("image") or None
        seen += len(worst)
    return None
