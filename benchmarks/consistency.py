"""Drift scorer benchmark: how well the scorer tells faithful takes from drifted ones, and its cost.

Builds a labelled set of takes with the emulators' renderer (jobs.emulators.render), the
two fixture portraits (studio/demo_media) composited into the frames as the characters'
pictures, at 1280x720 and 720x1280, 4 to 8 s, a few prompts:

* faithful: `render_video(cast=[CastMember(..., picture=portrait)])`;
* drifted on one axis alone: the same with `drift={"face"}`, `{"clothing"}` or `{"style"}`;
* wrong character: each faithful take scored again against the *other* portrait's
  references (nothing new rendered).

Each take is scored against its character's reference (the portrait) by the configured
scorer (`studio.consistency.scoring.get_scorer`, or `--scorer dotted.path.Class`). It
prints, per axis, the ROC AUC of faithful against drifted on that axis (Mann-Whitney: the
chance that a faithful take outscores a drifted one, ties counting half; an axis left
unscored counts as 0), the mean scores of both, persistence, and the scorer's CPU
seconds (time.process_time) per second of take, mean and max. Offline, on the CPU; it
never fails on a figure.

    .venv/bin/python benchmarks/consistency.py [--takes-per-class 4] [--seed 1] [--scorer PATH]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.consistency.scoring import (
    AXES,
    CharacterReference,
    CharacterResult,
    Scorer,
    get_scorer,
)

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT / "studio" / "demo_media"
PORTRAITS = {"Eileen": "astronaut.jpg", "Grace": "grace_hopper.jpg"}
SIZES = ((1280, 720), (720, 1280))
SECONDS = (4, 5, 6, 7, 8)
PROMPTS = (
    "@{name} walks along the harbour at dusk, lanterns coming on",
    "@{name} reads a letter by the window of a quiet library",
    "Close on @{name} in the control room as the countdown starts",
    "@{name} crosses a rainy street, neon signs reflected in puddles",
)
CLASSES = ("faithful", *AXES)  # faithful, then drifted on each axis alone


@dataclass(frozen=True)
class Take:
    label: str  # "faithful", "face", "clothing", "style" or "wrong"
    character: str  # whose portrait the take shows
    scored_against: str  # whose references it is scored against
    width: int
    height: int
    seconds: float
    result: CharacterResult
    cpu_seconds: float
    video_seconds: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--takes-per-class", type=int, default=4, help="takes of each class: faithful, face, "
        "clothing, style drift (4; the wrong-character pairs reuse the faithful takes)"
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="chooses sizes, lengths, prompts (1)")
    parser.add_argument("--scorer", help="dotted path of a scorer class (default: get_scorer())")
    return parser.parse_args(argv)


def load_scorer(path: str | None) -> Scorer:
    if not path:
        return get_scorer()
    from importlib import import_module

    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)()


def portraits() -> dict[str, Image.Image]:
    loaded = {}
    for name, file_name in PORTRAITS.items():
        with Image.open(MEDIA / file_name) as image:
            loaded[name] = image.convert("RGB")
    return loaded


def another_shot(image: Image.Image) -> Image.Image:
    """The reference the takes are scored against: the portrait as another shot would show
    the character (mirrored, cropped a little, a touch brighter, JPEG at quality 75), so a
    faithful take is not the reference's own pixels."""
    width, height = image.size
    shot = ImageOps.mirror(image).crop(
        (round(width * 0.05), round(height * 0.03), width - round(width * 0.02), height)
    )
    shot = ImageEnhance.Brightness(shot).enhance(1.06)
    buffer = io.BytesIO()
    shot.save(buffer, "JPEG", quality=75)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def renderer_ready() -> str | None:
    """Why the renderer cannot make the labelled set yet, or None."""
    import inspect

    from jobs.emulators import render

    if "picture" not in {f.name for f in render.CastMember.__dataclass_fields__.values()}:
        return "jobs.emulators.render.CastMember takes no `picture` yet."
    if "drift" not in inspect.signature(render.render_video).parameters:
        return "jobs.emulators.render.render_video takes no `drift` yet."
    return None


def plan(takes_per_class: int, seed: int) -> list[tuple[str, str, tuple[int, int], int, str]]:
    """(class, character, size, seconds, prompt) for every take to render, in a fixed order.

    Each class goes round the four (portrait, size) pairs, from a different one, so a few
    takes per class already show both portraits at both sizes; lengths and prompts are drawn
    from `seed`."""
    rng = random.Random(seed)  # noqa: S311 - picks lengths and prompts, not secrets
    pairs = [(name, size) for size in SIZES for name in PORTRAITS]
    pairs = pairs[::2] + pairs[1::2][::-1]  # (Eileen, wide), (Eileen, tall), (Grace, tall), ...
    takes = []
    for number, label in enumerate(CLASSES):
        for index in range(takes_per_class):
            character, size = pairs[(number + index) % len(pairs)]
            prompt = rng.choice(PROMPTS).format(name=character.lower())
            takes.append((label, character, size, rng.choice(SECONDS), prompt))
    return takes


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """ROC AUC by the Mann-Whitney U statistic: P(positive > negative), ties counting half."""
    if not positives or not negatives:
        return None
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positives) * len(negatives))


def value(result: CharacterResult, axis: str) -> float:
    score = getattr(result, axis)
    return 0.0 if score is None else score


def fmt(number: float | None, spec: str = ".1f") -> str:
    return "-" if number is None else format(number, spec)


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = renderer_ready()
    if missing:
        print(f"Castboard drift scorer benchmark: cannot build the labelled set: {missing}")
        return 0
    from jobs.emulators.render import CastMember, dominant_color, render_video

    scorer = load_scorer(args.scorer)
    pictures = portraits()
    references = {
        name: CharacterReference(
            key=f"character:{name.lower()}:v1", name=name, images=(another_shot(image),)
        )
        for name, image in pictures.items()
    }
    print(
        f"Castboard drift scorer benchmark: {scorer.name}, {args.takes_per_class} takes per "
        f"class, seed {args.seed}"
    )
    print(
        "  takes: the emulator renderer with the fixture portraits as pictures, "
        f"{' and '.join(f'{w}x{h}' for w, h in SIZES)}, {SECONDS[0]}-{SECONDS[-1]} s; "
        "drift on one axis at a time; wrong character = a faithful take scored against "
        "the other portrait; references: the portraits mirrored, cropped, brightened, JPEG q75"
    )
    takes: list[Take] = []
    render_seconds = 0.0
    started = time.perf_counter()
    print(
        f"  {'take':9} {'shows':7} {'against':7} {'size':9} {'len':>4}  "
        f"{'face':>5} {'cloth':>5} {'style':>5} {'pers':>5}  {'cpu/s':>5}"
    )
    for label, character, (width, height), seconds, prompt in plan(args.takes_per_class, args.seed):
        picture = pictures[character]
        member = CastMember(name=character, color=dominant_color(picture), picture=picture)
        clock = time.perf_counter()
        rendered = render_video(
            prompt=prompt,
            seconds=seconds,
            width=width,
            height=height,
            cast=[member],
            drift=frozenset() if label == "faithful" else frozenset({label}),
        )
        render_seconds += time.perf_counter() - clock
        against = [character]
        if label == "faithful":
            against += [name for name in PORTRAITS if name != character]
        for other in against:
            scored = scorer.score(io.BytesIO(rendered.video), [references[other]])
            take = Take(
                label=label if other == character else "wrong",
                character=character,
                scored_against=other,
                width=width,
                height=height,
                seconds=seconds,
                result=scored.characters[0],
                cpu_seconds=scored.cpu_seconds,
                video_seconds=scored.video_seconds or rendered.seconds,
            )
            takes.append(take)
            result = take.result
            print(
                f"  {take.label:9} {character:7} {other:7} {f'{width}x{height}':9} "
                f"{seconds:>3} s  {fmt(result.face):>5} {fmt(result.clothing):>5} "
                f"{fmt(result.style):>5} {result.persistence:5.2f}  "
                f"{take.cpu_seconds / take.video_seconds:5.2f}"
            )
    total = time.perf_counter() - started
    report(takes, render_seconds, total)
    return 0


def report(takes: list[Take], render_seconds: float, total: float) -> None:
    by_label: dict[str, list[Take]] = {}
    for take in takes:
        by_label.setdefault(take.label, []).append(take)
    faithful = by_label.get("faithful", [])
    print()
    print(f"  {'axis':9} {'ROC AUC':>7}  {'faithful mean':>13}  {'drifted mean':>12}  n (f/d)")
    for axis in AXES:
        drifted = by_label.get(axis, [])
        positives = [value(t.result, axis) for t in faithful]
        negatives = [value(t.result, axis) for t in drifted]
        print(
            f"  {axis:9} {fmt(auc(positives, negatives), '.3f'):>7}  "
            f"{fmt(mean(positives)):>13}  {fmt(mean(negatives)):>12}  "
            f"{len(positives)}/{len(negatives)}"
        )
    wrong = by_label.get("wrong", [])
    if wrong:
        positives = [value(t.result, "face") for t in faithful]
        negatives = [value(t.result, "face") for t in wrong]
        print(
            f"  {'wrong':9} {fmt(auc(positives, negatives), '.3f'):>7}  "
            f"{fmt(mean(positives)):>13}  {fmt(mean(negatives)):>12}  "
            f"{len(positives)}/{len(negatives)}   (face, a take of the other portrait)"
        )
    print()
    persistence = "  persistence (mean):  " + ", ".join(
        f"{label} {fmt(mean([t.result.persistence for t in group]), '.2f')}"
        for label, group in by_label.items()
    )
    print(persistence)
    unscored = [
        f"{t.label} {t.character}: {axis}"
        for t in takes
        for axis in AXES
        if getattr(t.result, axis) is None
    ]
    if unscored:
        print(f"  not scored (counted as 0): {'; '.join(unscored)}")
    per_second = [t.cpu_seconds / t.video_seconds for t in takes if t.video_seconds]
    print(
        f"  CPU seconds per take-second: mean {fmt(mean(per_second), '.2f')}, "
        f"max {fmt(max(per_second, default=None), '.2f')} "
        f"({len(takes)} scorings, {sum(t.video_seconds for t in takes):.0f} s of video)"
    )
    print(f"  wall time: {total:.0f} s, of which rendering {render_seconds:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
