"""The drift scorer's interface: what a scorer is given, what it answers, and which one runs.

A scorer compares a take (a video) with the reference pictures of the character(s) it
should show, on three axes, each 0-100 (100: as the references): face identity, clothing
and style. `get_scorer()` returns the one this process uses: the class named by the
setting CONSISTENCY_SCORER (a dotted path), by default the dlib scorer
(`studio.consistency.dlib_scorer.DlibScorer`), which runs offline on the CPU. A stronger
one (a GPU model, a provider's API) replaces it by naming its class there.

No Django import at module level: the scorers also run from a plain script (benchmarks).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from PIL import Image

__all__ = [
    "AXES",
    "DEFAULT_SCORER",
    "CharacterReference",
    "CharacterResult",
    "FrameScore",
    "ScoreResult",
    "Scorer",
    "ScoringError",
    "WorstFrame",
    "get_scorer",
]

AXES = ("face", "clothing", "style")
DEFAULT_SCORER = "studio.consistency.dlib_scorer.DlibScorer"


class ScoringError(ValueError):
    """The take cannot be scored (not a video we can decode, no frames); the message is plain."""


@dataclass(frozen=True)
class CharacterReference:
    key: str  # opaque, echoed back (e.g. "character:12:v3")
    name: str
    images: tuple[Image.Image, ...]  # RGB reference pictures (a clip's frames are images too)


@dataclass(frozen=True)
class FrameScore:
    seconds: float
    face: float | None
    clothing: float | None
    style: float | None
    recognised: bool


@dataclass(frozen=True)
class WorstFrame:
    axis: str  # "face" | "clothing" | "style"
    seconds: float
    score: float
    jpeg: bytes  # the frame, at most 320 px wide, JPEG


@dataclass(frozen=True)
class CharacterResult:
    key: str
    face: float | None  # None: no face in the references (or none found at all): not scored
    clothing: float | None
    style: float | None
    persistence: float  # 0..1: the share of sampled frames where the character is recognised
    frames: tuple[FrameScore, ...]  # the scores over the sampled frames, for a chart
    worst: tuple[WorstFrame, ...]  # up to 2 per axis, worst first
    notes: tuple[str, ...]  # plain words, e.g. why an axis is not scored


@dataclass(frozen=True)
class ScoreResult:
    scorer: str  # name and version of the method, e.g. "dlib-resnet-v1/hsv-texture 1"
    characters: tuple[CharacterResult, ...]
    frames_sampled: int
    video_seconds: float
    cpu_seconds: float  # time.process_time() spent


class Scorer(Protocol):
    name: str

    def score(
        self, video: str | BinaryIO, references: Sequence[CharacterReference]
    ) -> ScoreResult: ...


_scorers: dict[str, Scorer] = {}
_scorers_lock = threading.Lock()


def _configured_path() -> str:
    """settings.CONSISTENCY_SCORER, or the default when unset or Django is not configured."""
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:  # a plain script without Django installed
        return DEFAULT_SCORER
    try:
        return getattr(settings, "CONSISTENCY_SCORER", None) or DEFAULT_SCORER
    except ImproperlyConfigured:  # no settings module: a plain script
        return DEFAULT_SCORER


def get_scorer() -> Scorer:
    """The scorer this process uses: one instance per class named by CONSISTENCY_SCORER."""
    path = _configured_path()
    scorer = _scorers.get(path)
    if scorer is None:
        with _scorers_lock:
            scorer = _scorers.get(path)
            if scorer is None:
                scorer = _scorers[path] = _import(path)()
    return scorer


def _import(path: str) -> type:
    from importlib import import_module

    module_path, _, class_name = path.rpartition(".")
    if not module_path:
        raise ImportError(f"CONSISTENCY_SCORER must be a dotted path to a class, not {path!r}")
    try:
        return getattr(import_module(module_path), class_name)
    except AttributeError as error:
        raise ImportError(f"{module_path} has no scorer class named {class_name!r}") from error
