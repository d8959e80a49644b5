"""Cuts of an episode: what a cut needs (preflight), starting one (dubbing the lines that silent
takes need spoken), assembling it on a worker, and telling when a cut has gone stale.

A cut starts in DUBBING while its lines' speech is made (else straight in RENDERING), moves
to RENDERING while a worker assembles it, and ends DONE, or FAILED with a plain message.
Every cut is kept and numbered 1, 2, 3 per episode; the newest is the episode's current cut.

Speech that fails does not fail the cut: the cut is assembled without that line's audio
(its subtitle stays), and the cut's message names the line and why, so the rest of the
work is not thrown away; assembling again asks for that line's speech again.

A worker assembles a RENDERING cut (studio/cut_assembly.py). While no worker has claimed it
(claimed_by empty), claimed_at is when its assembly was sent: the sweep sends it again if
nobody took it, or once a worker's claim lapsed (the worker died).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from characters.models import Character, CharacterVersion
from jobs import engine
from jobs.compiled import Compiled
from jobs.dispatch import BROKER_ERRORS, send_named
from jobs.models import TERMINAL_STATES, Job, JobState, LedgerEntry
from studio import speech
from studio.generation import series_versions
from studio.models import Cut, DialogueLine, Episode, LineReading, Scene, Take, series_scope

log = logging.getLogger(__name__)

# By name: studio.tasks imports this module.
ASSEMBLE_TASK = "studio.tasks.assemble_cut"

MAX_CROSSFADE = 2.0
CARD_SECONDS = 2.0
FPS = 24


# --- Options --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CutOptions:
    """How to assemble: seconds of crossfade between scenes (0: hard cuts), an opening card
    with the episode's title, an end card, and subtitles burned into the picture."""

    crossfade: float = 0.0
    title_card: bool = True
    end_card: bool = True
    burn_subtitles: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.crossfade <= MAX_CROSSFADE:
            raise ValidationError(
                f"A crossfade lasts 0 to {MAX_CROSSFADE:g} seconds, not {self.crossfade:g}."
            )

    @classmethod
    def from_dict(cls, data: dict) -> CutOptions:
        return cls(
            crossfade=float(data.get("crossfade", 0.0)),
            title_card=bool(data.get("title_card", True)),
            end_card=bool(data.get("end_card", True)),
            burn_subtitles=bool(data.get("burn_subtitles", False)),
        )

    def as_dict(self) -> dict:
        return asdict(self)


def card_texts(episode: Episode, options: CutOptions) -> tuple[str, str]:
    """The opening and end cards' words ("" where the options leave a card out)."""
    title = f"{episode.series.title}\nEpisode {episode.number}: {episode.title}"
    end = f"End of episode {episode.number}\n{episode.series.title}"
    return (title if options.title_card else "", end if options.end_card else "")


# --- Preflight ------------------------------------------------------------------------------


@dataclass
class SceneEntry:
    """A scene as a cut would take it: its selected take (None: no usable one)."""

    scene: Scene
    take: Take | None

    @property
    def silent(self) -> bool:
        """The take's provider makes no sound: its scene's lines are dubbed."""
        return self.take is not None and not self.take.job.provider_account.capabilities.audio

    @property
    def seconds(self) -> float:
        """The take's length as the engine recorded it (the scene's asked length otherwise)."""
        if self.take is None:
            return 0.0
        return float(self.take.job.result.get("duration") or self.scene.duration)


@dataclass
class LineEntry:
    """A line of a scene the cut takes, and how it will sound: spoken by the take itself,
    dubbed (a reading already made, or a new one at `quote`'s price), or silent with a
    reason (`problem`; its subtitle stays)."""

    line: DialogueLine
    scene_index: int
    dub: bool  # the scene's take is silent: the line is dubbed if it can be
    version: CharacterVersion | None = None
    reading: LineReading | None = None
    quote: engine.Quote | None = None
    problem: str = ""

    @property
    def speaker(self) -> str:
        return self.line.character.name if self.line.character_id else ""

    @property
    def new_reading(self) -> bool:
        return self.dub and not self.problem and self.reading is None


@dataclass
class Preflight:
    """What a cut of the episode would take, what it lacks, and what it would cost."""

    episode: Episode
    options: CutOptions
    scenes: list[SceneEntry]
    lines: list[LineEntry]
    missing: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return bool(self.scenes) and not self.missing

    @property
    def to_dub(self) -> list[LineEntry]:
        """Lines that will be spoken in their character's voice (new readings and reused)."""
        return [entry for entry in self.lines if entry.dub and not entry.problem]

    @property
    def undubbable(self) -> list[LineEntry]:
        """Lines of silent takes that no voice can read: the cut keeps their subtitles."""
        return [entry for entry in self.lines if entry.dub and entry.problem]

    @property
    def speech_cost(self) -> Decimal:
        """What the new readings cost (reused readings are paid for already)."""
        return sum(
            (e.quote.estimate for e in self.lines if e.new_reading and e.quote),
            start=Decimal(0),
        )

    @property
    def duration(self) -> float:
        """About how long the cut will be: the takes, the cards, less the crossfades."""
        takes = [entry.seconds for entry in self.scenes if entry.take is not None]
        cards = sum(bool(text) for text in card_texts(self.episode, self.options)) * CARD_SECONDS
        fade = min(self.options.crossfade, min(takes, default=0) / 2) if len(takes) > 1 else 0
        return sum(takes) + cards - fade * (len(takes) - 1)


def _selected_takes(episode: Episode) -> dict[int, Take]:
    takes = Take.objects.filter(scene__episode=episode, is_selected=True).select_related(
        "job__provider_account"
    )
    return {take.scene_id: take for take in takes}


def cut_preflight(episode: Episode, *, options: CutOptions | None = None) -> Preflight:
    """The episode's scenes in order with their selected takes; which scenes lack one
    ("Scene 4 has no selected take."); its lines, each with how it will sound (spoken by the
    take, dubbed in the speaker's voice at a price, or without a voice); and the length."""
    options = options or CutOptions()
    scenes = list(episode.scenes.order_by("position"))
    selected = _selected_takes(episode)
    entries, missing = [], []
    for scene in scenes:
        take = selected.get(scene.pk)
        if take is None:
            missing.append(f"Scene {scene.number} has no selected take.")
        elif take.job.state != JobState.SUCCEEDED or not take.job.video:
            missing.append(f"Scene {scene.number}'s selected take has no video.")
            take = None
        entries.append(SceneEntry(scene, take))
    if not scenes:
        missing.append("The episode has no scenes yet.")
    lines = _line_entries(episode, entries)
    return Preflight(episode, options, entries, lines, missing)


def _line_entries(episode: Episode, scenes: list[SceneEntry]) -> list[LineEntry]:
    index = {entry.scene.pk: n for n, entry in enumerate(scenes)}
    lines = list(
        DialogueLine.objects.filter(scene__episode=episode)
        .select_related("character", "scene__episode__series")
        .order_by("scene__position", "position")
    )
    speakers = {line.character_id: line.character for line in lines if line.character_id}
    versions = (
        series_versions(series=episode.series, characters=speakers.values()) if speakers else {}
    )
    entries = []
    for line in lines:
        n = index[line.scene_id]
        scene = scenes[n]
        entry = LineEntry(line=line, scene_index=n, dub=scene.silent)
        if entry.dub:
            _plan_reading(entry, versions)
        entries.append(entry)
    return entries


def _plan_reading(entry: LineEntry, versions: dict[int, CharacterVersion]) -> None:
    """Which voice reads a line of a silent take, and whether its reading is already made."""
    line = entry.line
    version = speech.speaker_version(line, versions)
    entry.version = version
    if version is None:
        entry.problem = "A voice off screen has no voice to read it."
        return
    if version.has_voice and (reading := speech.reading_for(line, version)) is not None:
        entry.reading = reading  # made already, or on its way: not paid for twice
        return
    try:
        entry.quote = speech.speech_quote(line, version)
    except ValidationError as error:  # no voice, or one this workspace cannot use
        entry.problem = " ".join(error.messages)
        return
    if entry.quote.problems:
        entry.problem = " ".join(entry.quote.problems)


# --- Starting a cut -------------------------------------------------------------------------


def cut_start(
    *, episode: Episode, options: CutOptions, user: AbstractBaseUser | None = None
) -> Cut:
    """Number a new cut of the episode, record what goes into it, and start it: speech for the
    lines its silent takes need (the cut waits in DUBBING), else the assembly at once.

    ValidationError in plain words, with nothing made or charged, while a scene lacks a
    selected take or when the speech does not fit a budget.
    """
    with transaction.atomic():
        # One cut at a time per episode: numbers stay unique and a line is read once.
        Episode.objects.select_for_update().filter(pk=episode.pk).first()
        preflight = cut_preflight(episode, options=options)
        if not preflight.ready:
            raise ValidationError(
                ["This episode cannot be assembled yet.", *preflight.missing], code="missing"
            )
        readings = _start_readings(preflight, user)
        waiting = any(not reading.job.is_terminal for reading in readings.values())
        number = (episode.cuts.aggregate(top=Max("number"))["top"] or 0) + 1
        cut = Cut.objects.create(
            episode=episode,
            number=number,
            state=Cut.State.DUBBING if waiting else Cut.State.RENDERING,
            options={**options.as_dict(), "size": episode.series.default_size, "fps": FPS},
            manifest=_manifest(preflight, readings),
            created_by=user,
            claimed_at=None if waiting else timezone.now(),
        )
        if not waiting:
            _send_assembly(cut.pk)
    return cut


def _start_readings(preflight: Preflight, user) -> dict[int, LineReading]:
    """Each dubbed line's reading: the one already made, or a new one (its job starts when
    the transaction commits). ValidationError when the speech does not fit a budget."""
    scope = series_scope(preflight.episode.series_id)
    readings = {}
    for entry in preflight.to_dub:
        if entry.reading is not None:
            readings[entry.line.pk] = entry.reading
            continue
        try:
            readings[entry.line.pk] = speech.reading_start(
                line=entry.line, version=entry.version, user=user, budget_scope=scope
            )
        except engine.OverBudget as error:
            raise ValidationError(
                f"The speech for this cut was not started: {error.message}", code="budget"
            ) from error
    return readings


def _manifest(preflight: Preflight, readings: dict[int, LineReading]) -> dict:
    """What goes into the cut, as it stood when it started (compared later: cut_is_stale)."""
    return {
        "scenes": [
            {
                "scene": entry.scene.pk,
                "number": entry.scene.number,
                "title": entry.scene.title,
                "take": entry.take.pk,
                "job": entry.take.job_id,
                "video": entry.take.job.video.name,
                "duration": entry.seconds,
                "silent": entry.silent,
            }
            for entry in preflight.scenes
        ],
        "lines": [
            {
                "line": entry.line.pk,
                "scene": entry.line.scene_id,
                "scene_index": entry.scene_index,
                "text": entry.line.text,
                "speaker": entry.speaker,
                "character": entry.line.character_id,
                "start": entry.line.start,
                "reading": reading.pk if (reading := readings.get(entry.line.pk)) else None,
                # The voice it was spoken in: another voice since makes the cut stale.
                "voice": reading.voice_key if reading else "",
                # Made for this cut (its charge is this cut's), not reused from an earlier one.
                "new": bool(reading) and entry.reading is None,
                "problem": entry.problem,
            }
            for entry in preflight.lines
        ],
    }


def _send_assembly(cut_id: int) -> None:
    """Send the cut to a worker once the transaction commits (the sweep resends a lost one)."""

    def publish() -> None:
        try:
            send_named(ASSEMBLE_TASK, (cut_id,))
        except BROKER_ERRORS as error:
            log.warning("Cut %s: could not send its assembly (%s); the sweep will.", cut_id, error)

    transaction.on_commit(publish)


# --- Dubbing ---------------------------------------------------------------------------------


def _reading_ids(cut: Cut) -> list[int]:
    return [line["reading"] for line in cut.manifest.get("lines", []) if line.get("reading")]


def cut_speech_progress(cut: Cut) -> tuple[int, int]:
    """(lines spoken or given up on, lines to speak) of the cut. A reading gone with its line
    (the dialogue was edited meanwhile) is waited for no longer."""
    ids = _reading_ids(cut)
    if not ids:
        return 0, 0
    waiting = LineReading.objects.filter(pk__in=ids).exclude(job__state__in=TERMINAL_STATES).count()
    return len(ids) - waiting, len(ids)


def cut_continue(*, cut_id: int) -> bool:
    """Move a dubbing cut on to its assembly once every reading's job has ended (succeeded or
    not: see the module). False while speech is still being made, or when it moved already."""
    cut = Cut.objects.filter(pk=cut_id, state=Cut.State.DUBBING).first()
    if cut is None:
        return False
    done, total = cut_speech_progress(cut)
    if done < total:
        return False
    with transaction.atomic():
        moved = Cut.objects.filter(pk=cut.pk, state=Cut.State.DUBBING).update(
            state=Cut.State.RENDERING, claimed_by="", claimed_at=timezone.now()
        )
        if moved:
            _send_assembly(cut.pk)
    return bool(moved)


def cuts_after_speech(*, job_id: int) -> list[int]:
    """The dubbing cuts of the episode whose line a finished speech job read, moved on where
    that was their last reading. Nothing for a job of no reading (a take's)."""
    reading = LineReading.objects.filter(job_id=job_id).select_related("line__scene").first()
    if reading is None:
        return []
    cuts = Cut.objects.filter(episode_id=reading.line.scene.episode_id, state=Cut.State.DUBBING)
    return [cut.pk for cut in cuts if cut_continue(cut_id=cut.pk)]


def cuts_sweep() -> dict[str, list[int]]:
    """The safety net (beat): dubbing cuts whose speech all ended (a failure is announced to
    nobody), and assemblies nobody took (a lost message) or whose worker died (lease lapsed)."""
    continued = [
        cut_id
        for cut_id in Cut.objects.filter(state=Cut.State.DUBBING).values_list("pk", flat=True)
        if cut_continue(cut_id=cut_id)
    ]
    now = timezone.now()
    unsent = now - timedelta(seconds=settings.CUTS_SWEEP_AFTER_SECONDS)
    lapsed = now - timedelta(seconds=settings.CUTS_LEASE_SECONDS)
    stalled = Cut.objects.filter(state=Cut.State.RENDERING).filter(
        Q(claimed_by="", claimed_at__lt=unsent)
        | Q(claimed_by="", claimed_at__isnull=True)
        | Q(claimed_at__lt=lapsed)
    )
    resent = []
    for cut_id, claimed_by, claimed_at in stalled.values_list("pk", "claimed_by", "claimed_at"):
        # Only if nobody wrote meanwhile: a live worker's progress keeps its claim.
        freed = Cut.objects.filter(
            pk=cut_id, state=Cut.State.RENDERING, claimed_by=claimed_by, claimed_at=claimed_at
        ).update(claimed_by="", claimed_at=now)
        if not freed:
            continue
        try:
            send_named(ASSEMBLE_TASK, (cut_id,))
        except BROKER_ERRORS as error:
            log.warning("Cut %s: could not resend its assembly (%s).", cut_id, error)
            continue
        resent.append(cut_id)
    return {"continued": continued, "resent": resent}


# --- Reading cuts ---------------------------------------------------------------------------


def cut_current(episode: Episode) -> Cut | None:
    """The episode's newest cut."""
    cut = _newest_cut.first(episode_id=episode.pk)
    if cut is not None:
        cut.episode = episode  # as episode.cuts gives it
    return cut


# Every storyboard page shows it: compiled once per process (jobs.compiled).
_newest_cut = Compiled(
    lambda episode_id: (
        Cut.objects.filter(episode_id=episode_id)
        .order_by("-number")
        .select_related("created_by")[:1]
    )
)


def cut_status(cut: Cut) -> str:
    """The cut's state in words: "Making speech 2 of 3 lines", "Assembling 40%"."""
    if cut.state == Cut.State.DUBBING:
        done, total = cut_speech_progress(cut)
        return f"Making speech {done} of {total} line{'s' if total != 1 else ''}"
    if cut.state == Cut.State.RENDERING:
        return f"Assembling {cut.progress}%"
    return cut.get_state_display()


def cut_percent(cut: Cut) -> int:
    """One number for a progress bar: speech is the first fifth when there is any."""
    if cut.state == Cut.State.DUBBING:
        done, total = cut_speech_progress(cut)
        return round(20 * done / total) if total else 0
    if cut.state == Cut.State.RENDERING:
        return (20 + cut.progress * 80 // 100) if _reading_ids(cut) else cut.progress
    return 100 if cut.state == Cut.State.DONE else 0


@dataclass(frozen=True)
class SpeechCharge:
    """A dubbed line of a cut and what its speech cost (None until the job has ended)."""

    scene: int
    text: str
    speaker: str
    job: Job
    new: bool  # made for this cut; else reused, paid for by an earlier one
    charged: Decimal | None


def cut_speech_charges(cut: Cut) -> list[SpeechCharge]:
    """Each dubbed line of the cut with its reading's job and the ledger's charge for it."""
    lines = [line for line in cut.manifest.get("lines", []) if line.get("reading")]
    readings = {
        r.pk: r
        for r in LineReading.objects.filter(pk__in=[line["reading"] for line in lines])
        .select_related("job__provider_account")
        .order_by()
    }
    charges = dict(
        LedgerEntry.objects.filter(
            job_id__in=[r.job_id for r in readings.values()], kind=LedgerEntry.Kind.CHARGE
        ).values_list("job_id", "amount")
    )
    numbers = [scene["number"] for scene in cut.manifest.get("scenes", [])]
    rows = []
    for line in lines:
        reading = readings.get(line["reading"])
        if reading is None:
            continue
        rows.append(
            SpeechCharge(
                scene=numbers[line["scene_index"]],
                text=line["text"],
                speaker=line["speaker"],
                job=reading.job,
                new=bool(line.get("new")),
                charged=charges.get(reading.job_id),
            )
        )
    return rows


# --- Stale cuts -----------------------------------------------------------------------------


class EpisodeNow:
    """The episode as it stands (scenes, selected takes, lines), read once, to compare any
    number of its cuts' manifests with."""

    def __init__(self, episode: Episode) -> None:
        self.episode = episode
        self.scenes = list(episode.scenes.order_by("position").values("pk", "position", "title"))
        self.selected = dict(
            Take.objects.filter(scene__episode=episode, is_selected=True).values_list(
                "scene_id", "pk"
            )
        )
        self.lines: dict[int, list[tuple]] = {}
        for scene_id, character, text, start in (
            DialogueLine.objects.filter(scene__episode=episode)
            .order_by("scene_id", "position")
            .values_list("scene_id", "character_id", "text", "start")
        ):
            self.lines.setdefault(scene_id, []).append((character, text, start))

    def reasons(self, manifest: dict) -> list[str]:
        """Why a cut with this manifest no longer shows the episode ([] when it still does)."""
        if not manifest.get("scenes"):
            return []
        number = {scene["pk"]: scene["position"] + 1 for scene in self.scenes}
        then = [scene["scene"] for scene in manifest["scenes"]]
        reasons = []
        for scene in manifest["scenes"]:
            pk = scene["scene"]
            if pk not in number:
                reasons.append(f"Scene {scene['number']} was deleted since this cut.")
            elif self.selected.get(pk) != scene["take"]:
                reasons.append(f"Scene {number[pk]}'s selected take changed since this cut.")
        for scene in self.scenes:
            if scene["pk"] not in then:
                reasons.append(f"Scene {scene['position'] + 1} was added since this cut.")
        kept = [pk for pk in then if pk in number]
        if kept != sorted(kept, key=number.__getitem__):
            reasons.append("The scenes were reordered since this cut.")
        said: dict[int, list[tuple]] = {}
        for line in manifest.get("lines", []):
            said.setdefault(line["scene"], []).append(
                (line["character"], line["text"], line["start"])
            )
        for pk in kept:
            if said.get(pk, []) != self.lines.get(pk, []):
                reasons.append(f"Scene {number[pk]}'s dialogue changed.")
        reasons.extend(self._voices_changed(manifest))
        return reasons

    def _voices_changed(self, manifest: dict) -> list[str]:
        """A dubbed line's speaker now speaks in another voice (or in none)."""
        then = {
            line["character"]: line["voice"]
            for line in manifest.get("lines", [])
            if line.get("voice") and line.get("character")
        }
        if not then:
            return []
        characters = Character.objects.filter(pk__in=then)
        versions = series_versions(series=self.episode.series, characters=characters)
        return [
            f"{version.character.name}'s voice changed since this cut."
            for pk, version in sorted(versions.items())
            if (speech.voice_key(version) if version.has_voice else "") != then[pk]
        ]


def cut_is_stale(cut: Cut, *, now: EpisodeNow | None = None) -> list[str]:
    """Why the cut no longer shows its episode: a scene's selected take or dialogue changed,
    a scene was added, deleted or moved ([] when nothing did)."""
    return (now or EpisodeNow(cut.episode)).reasons(cut.manifest)


def chapters_of(cut: Cut) -> list[dict]:
    """The finished cut's chapters, each with its scene's id (for a link to its card)."""
    layout = cut.manifest.get("layout") or {}
    scenes = cut.manifest.get("scenes", [])
    return [
        {**chapter, "scene": scene["scene"]}
        for chapter, scene in zip(layout.get("chapters", []), scenes, strict=False)
    ]
