"""What an episode's cut is made of (Plan) and where everything falls in it (Layout).

Plain data and arithmetic, no rendering: `layout(plan)` only reads the takes' and the
dubbed lines' headers (PyAV), so it is cheap enough to run in a request. Every time in a
Layout is a whole number of the plan's frames, so the renderer, the subtitles, the
chapters and the timeline all agree to the frame.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.assembly.media import AssemblyError, inspect_audio, inspect_take

__all__ = [
    "Chapter",
    "Cue",
    "Layout",
    "LineIn",
    "Plan",
    "SceneClip",
    "Speech",
    "clean",
    "layout",
    "probe",
]

MIN_SIDE, MAX_SIDE = 16, 3840  # libx264 refuses smaller frames; larger is a caller's bug
MAX_FPS = 120
FIRST_LINE_AT = 0.3  # seconds into its scene, when a line gives no start
LINE_GAP = 0.2  # seconds between a line and the next one that gives no start
# How long a line without dubbed speech stays on screen: its reading time at about 15
# characters a second (subtitling's usual pace), within these bounds.
MIN_CUE_SECONDS, MAX_CUE_SECONDS = 1.2, 7.0
READING_CHARS_PER_SECOND = 15.0


@dataclass(frozen=True)
class SceneClip:
    """One scene's selected take."""

    path: Path  # a local MP4 (the caller copies it out of storage)
    title: str  # "1. Launch day"
    number: int  # the scene's number (1-based)
    media_name: str  # the file's name in the handoff zip and timeline: "media/scene-01-take-12.mp4"
    source_url: str = ""  # where the take lives, kept in the timeline's metadata


@dataclass(frozen=True)
class LineIn:
    """A line of dialogue in a scene."""

    scene_index: int  # an index into Plan.scenes
    text: str
    speaker: str = ""  # "Mina Okafor" ("" = off screen)
    # Seconds into the scene; None = a moment after the previous line, or at 0.3 s.
    start: float | None = None
    # Dubbed speech to mix in (anything PyAV reads); its length sets the cue's length.
    audio: Path | None = None
    # The audio's name in the handoff zip and timeline ("" = "audio/" + the file's name).
    media_name: str = ""


@dataclass(frozen=True)
class Plan:
    scenes: tuple[SceneClip, ...]
    lines: tuple[LineIn, ...] = ()
    width: int = 1280
    height: int = 720
    fps: int = 24
    sample_rate: int = 48000
    crossfade: float = 0.0  # seconds between scenes (0 = hard cuts)
    title_card: str = ""  # the opening card's text ("" = none): "Episode 1 — Launch"
    end_card: str = ""  # the end card's text ("" = none)
    card_seconds: float = 2.0
    burn_subtitles: bool = False


@dataclass(frozen=True)
class Cue:
    """A subtitle, in the cut's time (seconds)."""

    start: float
    end: float
    text: str
    speaker: str = ""


@dataclass(frozen=True)
class Chapter:
    """One scene's stretch of the cut (seconds); chapters meet at the crossfades' middles."""

    start: float
    end: float
    title: str
    number: int


@dataclass(frozen=True)
class Speech:
    """A dubbed line mixed into the cut: `audio` plays from `start` to `end` (cut seconds)."""

    start: float
    end: float
    audio: Path
    media_name: str
    seconds: float  # the file's own length (the cue may have cut it short)
    line: int  # its index in Plan.lines
    text: str
    speaker: str


@dataclass(frozen=True)
class Layout:
    """Where everything falls in the cut. Times are seconds, each a whole number of frames."""

    fps: int
    frames: int  # the cut's length in frames
    duration: float  # frames / fps: cards + sum(durations) - crossfades
    scene_starts: tuple[float, ...]  # when each scene's first frame shows (crossfade included)
    durations: tuple[float, ...]  # each scene's length in the cut (its take, to the frame)
    scene_frames: tuple[int, ...]
    take_seconds: tuple[float, ...]  # each take's own length, as probed
    has_audio: tuple[bool, ...]  # whether each take has a sound track
    crossfade_frames: int  # after clamping to half the shortest scene
    title_frames: int
    end_frames: int
    cues: tuple[Cue, ...]
    chapters: tuple[Chapter, ...]
    speech: tuple[Speech, ...]

    @property
    def crossfade(self) -> float:
        return self.crossfade_frames / self.fps

    @property
    def scene_start_frames(self) -> tuple[int, ...]:
        starts, at = [], self.title_frames
        for frames in self.scene_frames:
            starts.append(at)
            at += frames - self.crossfade_frames
        return tuple(starts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for a cut's manifest)."""
        return {
            "duration": self.duration,
            "fps": self.fps,
            "crossfade": self.crossfade,
            "title_card": self.title_frames / self.fps,
            "end_card": self.end_frames / self.fps,
            "scenes": [
                {"start": start, "duration": duration, "has_audio": audio}
                for start, duration, audio in zip(
                    self.scene_starts, self.durations, self.has_audio, strict=True
                )
            ],
            "chapters": [
                {"start": c.start, "end": c.end, "title": c.title, "number": c.number}
                for c in self.chapters
            ],
            "cues": [
                {"start": c.start, "end": c.end, "text": c.text, "speaker": c.speaker}
                for c in self.cues
            ],
        }


def probe(path: Path | str) -> float:
    """A take's duration in seconds; AssemblyError in plain words if it is not a usable video."""
    return inspect_take(path, who="The take").seconds


def layout(plan: Plan) -> Layout:
    """Where every scene, card, cue and chapter falls in the cut (reads headers, renders none)."""
    _check(plan)
    fps = plan.fps
    takes = [inspect_take(scene.path, who=f"Scene {scene.number}'s take") for scene in plan.scenes]
    scene_frames = tuple(max(1, round(take.seconds * fps)) for take in takes)
    crossfade_frames = 0
    if len(scene_frames) > 1:
        # A scene may fade in and out, so a crossfade takes at most half of the shortest one.
        crossfade_frames = min(round(plan.crossfade * fps), min(scene_frames) // 2)
    card_frames = max(1, round(plan.card_seconds * fps))
    title_frames = card_frames if plan.title_card.strip() else 0
    end_frames = card_frames if plan.end_card.strip() else 0

    starts, at = [], title_frames
    for frames in scene_frames:
        starts.append(at)
        at += frames - crossfade_frames
    total = at + crossfade_frames + end_frames

    # Chapters (and the timeline's cuts) meet in the middle of each crossfade.
    fade_in, fade_out = crossfade_frames // 2, crossfade_frames - crossfade_frames // 2
    chapters = []
    for index, (scene, start, frames) in enumerate(
        zip(plan.scenes, starts, scene_frames, strict=True)
    ):
        first = start + (fade_in if index > 0 else 0)
        last = start + frames - (fade_out if index < len(scene_frames) - 1 else 0)
        chapters.append(Chapter(first / fps, last / fps, scene.title, scene.number))

    cues, speech = _place_lines(plan, starts, scene_frames)
    return Layout(
        fps=fps,
        frames=total,
        duration=total / fps,
        scene_starts=tuple(start / fps for start in starts),
        durations=tuple(frames / fps for frames in scene_frames),
        scene_frames=scene_frames,
        take_seconds=tuple(take.seconds for take in takes),
        has_audio=tuple(take.has_audio for take in takes),
        crossfade_frames=crossfade_frames,
        title_frames=title_frames,
        end_frames=end_frames,
        cues=cues,
        chapters=tuple(chapters),
        speech=speech,
    )


def _check(plan: Plan) -> None:
    if not plan.scenes:
        raise AssemblyError("The episode has no scenes to assemble.")
    if not (MIN_SIDE <= plan.width <= MAX_SIDE and MIN_SIDE <= plan.height <= MAX_SIDE):
        raise AssemblyError(
            f"The cut's size must be {MIN_SIDE} to {MAX_SIDE} pixels a side, "
            f"not {plan.width}x{plan.height}."
        )
    if plan.width % 2 or plan.height % 2:
        raise AssemblyError(f"The cut's size must be even, not {plan.width}x{plan.height}.")
    if not 1 <= plan.fps <= MAX_FPS:
        raise AssemblyError(f"The frame rate must be 1 to {MAX_FPS}, not {plan.fps}.")
    if not 8000 <= plan.sample_rate <= 96000:
        raise AssemblyError(f"The sample rate must be 8000 to 96000 Hz, not {plan.sample_rate}.")
    if not (math.isfinite(plan.crossfade) and plan.crossfade >= 0):
        raise AssemblyError("The crossfade must be zero or more seconds.")
    has_card = plan.title_card.strip() or plan.end_card.strip()
    if has_card and not (math.isfinite(plan.card_seconds) and 0 < plan.card_seconds <= 60):
        raise AssemblyError("A card lasts more than 0 and at most 60 seconds.")


def _place_lines(
    plan: Plan, starts: list[int], scene_frames: tuple[int, ...]
) -> tuple[tuple[Cue, ...], tuple[Speech, ...]]:
    """Each line's cue, placed and clamped in its scene, and the dubbed speech to mix in."""
    fps = plan.fps
    cues: list[Cue] = []
    speech: list[Speech] = []
    cursor: dict[int, float] = {}  # per scene: where its last placed line ended
    for number, line in enumerate(plan.lines):
        if not 0 <= line.scene_index < len(plan.scenes):
            raise AssemblyError(
                f"Line {number + 1} belongs to no scene of this episode "
                f"(scene {line.scene_index + 1} of {len(plan.scenes)})."
            )
        text = clean(line.text)
        speaker = " ".join(clean(line.speaker).split())
        if not text and line.audio is None:
            continue
        seconds = None
        if line.audio is not None:
            seconds = inspect_audio(line.audio, who=f"The dubbed speech of line {number + 1}")
        length = seconds if seconds is not None else _reading_seconds(text)
        scene_length = scene_frames[line.scene_index] / fps
        if line.start is not None and math.isfinite(line.start):
            start = line.start
        elif line.scene_index in cursor:
            start = cursor[line.scene_index] + LINE_GAP
        else:
            start = FIRST_LINE_AT
        # Clamp into the scene, moving the cue earlier rather than cutting it short.
        start = max(0.0, min(start, scene_length - length))
        end = min(scene_length, start + length)
        first = round(start * fps)
        last = max(first + 1, math.ceil(end * fps - 1e-6))  # a dubbed line is never cut short
        last = min(last, scene_frames[line.scene_index])
        first = min(first, last - 1)
        cursor[line.scene_index] = last / fps
        offset = starts[line.scene_index]
        cue_start, cue_end = (offset + first) / fps, (offset + last) / fps
        if text:
            cues.append(Cue(cue_start, cue_end, text, speaker))
        if line.audio is not None and seconds is not None:
            speech.append(
                Speech(
                    start=cue_start,
                    end=cue_end,
                    audio=Path(line.audio),
                    media_name=line.media_name or f"audio/{Path(line.audio).name}",
                    seconds=seconds,
                    line=number,
                    text=text,
                    speaker=speaker,
                )
            )
    cues.sort(key=lambda cue: (cue.start, cue.end))
    speech.sort(key=lambda item: item.start)
    return tuple(cues), tuple(speech)


def clean(text: str) -> str:
    """User text made safe to show: control characters (and lone surrogates, which no file
    can hold) removed, spaces collapsed, blank lines dropped; line breaks kept."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        kept = "".join(
            " " if ch == "\t" else ch
            for ch in line
            if ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cs")
        )
        lines.append(" ".join(kept.split()))
    return "\n".join(line for line in lines if line)


def _reading_seconds(text: str) -> float:
    seconds = 0.4 + len(text) / READING_CHARS_PER_SECOND
    return min(MAX_CUE_SECONDS, max(MIN_CUE_SECONDS, seconds))
