"""Episode assembly benchmark: the wall time and peak memory of rendering a cut, by its length.

Assembles a 20-scene episode of 8-second takes at 1280x720, 24 fps (`studio.assembly.render`),
with 0.5 s crossfades, a title and an end card, two lines of dialogue a scene (one in
three dubbed, mixed in) and burned-in subtitles, then the same for a 5-scene episode:
the memory the render needs should not grow with the number of scenes (it streams), so
the two peaks should be about the same. Then the sidecars of the long cut: contact sheet,
subtitles, timeline files (OTIO, FCP XML, EDL) and the zip.

The takes are synthetic (a sliding gradient over a colour, a tone), made once under
var/bench/assembly/ with PyAV and reused (about a minute at 1280x720); only the assembly
is timed. Each episode is assembled in its own fresh process, after a small unmeasured
warm-up render (codec libraries load and allocate once):

* wall time, and its ratio to the cut's duration (under 1: faster than real time);
* peak RSS growth: VmHWM after the render minus VmRSS before it, with VmHWM reset
  (`5` written to /proc/self/clear_refs) just before.

Nothing else is started: no Django settings, database, Redis or worker. Exit 0 whatever
the figures.

    .venv/bin/python benchmarks/assembly.py [--scenes 20] [--small-scenes 5] [--seconds 8]
        [--size 1280x720] [--fps 24] [--crossfade 0.5] [--no-cards] [--no-burn] [--no-lines]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUN_DIR = ROOT / "var" / "bench" / "assembly"
MIB = 1024 * 1024
# Memory is flat in the episode's length when the long episode's peak growth is within
# this of the short one's (allocator noise, a few more subtitle overlays).
FLAT_ALLOWANCE_MIB = 16
COLORS = [(200, 60, 60), (60, 160, 90), (70, 90, 200), (200, 170, 60), (150, 70, 180)]
LINES = (
    "We launch at dawn, whatever the weather says.",
    "Then we had better check the fuel lines twice 🚀",
    "Nobody told me the satellite was ours.",
    "Keep your voice down; the hangar has ears.",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=20, help="scenes in the long episode (20)")
    parser.add_argument(
        "--small-scenes", type=int, default=5, help="scenes in the short episode (5; 0 = skip)"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="each take's length (8)")
    parser.add_argument("--size", default="1280x720", help="the takes' and the cut's size")
    parser.add_argument("--fps", type=int, default=24, help="frame rate (24)")
    parser.add_argument("--crossfade", type=float, default=0.5, help="seconds (0.5; 0 = cuts)")
    parser.add_argument("--no-cards", action="store_true", help="no title or end card")
    parser.add_argument("--no-burn", action="store_true", help="subtitles as sidecars only")
    parser.add_argument("--no-lines", action="store_true", help="no dialogue at all")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # scenes, in a fresh process
    parser.add_argument("--sidecars", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        width, height = (int(side) for side in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size is WIDTHxHEIGHT, not {args.size!r}")
    args.width, args.height = width, height
    return args


# --- Inputs -----------------------------------------------------------------------------------


def takes_dir(args: argparse.Namespace) -> Path:
    return RUN_DIR / f"takes-{args.width}x{args.height}-{args.fps}fps-{args.seconds:g}s"


def ensure_inputs(args: argparse.Namespace) -> None:
    from tests.assembly.takes import make_speech, make_take

    folder = takes_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(max(args.scenes, args.small_scenes)):
        path = folder / f"scene-{index + 1:02d}.mp4"
        if path.exists():
            continue
        started = time.perf_counter()
        partial = path.with_suffix(".partial.mp4")
        make_take(
            partial,
            size=(args.width, args.height),
            fps=args.fps,
            seconds=args.seconds,
            color=COLORS[index % len(COLORS)],
            tone=220.0 * (1 + index % 4),
            volume=0.2,
            moving=True,
        )
        partial.rename(path)
        print(f"  made {path.name} in {time.perf_counter() - started:.1f} s", flush=True)
    for index in range(3):
        path = folder / f"line-{index + 1}.wav"
        if not path.exists():
            make_speech(path, seconds=1.2 + 0.4 * index, tone=600.0 + 150 * index)


def build_plan(args: argparse.Namespace, scenes: int):
    from studio.assembly import LineIn, Plan, SceneClip

    folder = takes_dir(args)
    clips = tuple(
        SceneClip(
            path=folder / f"scene-{n:02d}.mp4",
            title=f"{n}. Scene {n}",
            number=n,
            media_name=f"media/scene-{n:02d}.mp4",
        )
        for n in range(1, scenes + 1)
    )
    lines = []
    if not args.no_lines:
        for index in range(scenes):
            for turn in range(2):
                count = len(lines)
                dubbed = count % 3 == 0
                lines.append(
                    LineIn(
                        scene_index=index,
                        text=LINES[count % len(LINES)],
                        speaker=("Mina Okafor", "Theo Lind")[turn],
                        audio=folder / f"line-{count % 3 + 1}.wav" if dubbed else None,
                    )
                )
    return Plan(
        scenes=clips,
        lines=tuple(lines),
        width=args.width,
        height=args.height,
        fps=args.fps,
        crossfade=args.crossfade,
        title_card="" if args.no_cards else "Episode 1 — Launch",
        end_card="" if args.no_cards else "Thanks for watching",
        burn_subtitles=not args.no_burn,
    )


# --- The measured child -----------------------------------------------------------------------


def status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(field_name)


class Peak:
    """Peak RSS growth over a block: VmHWM after minus VmRSS before, VmHWM reset at the start."""

    def __enter__(self) -> Peak:
        Path("/proc/self/clear_refs").write_text("5")
        self.before_kib = status_kib("VmRSS")
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        self.seconds = time.perf_counter() - self.started
        self.growth_kib = status_kib("VmHWM") - self.before_kib


def child(args: argparse.Namespace, scenes: int) -> dict:
    from studio import assembly

    plan = build_plan(args, scenes)
    with tempfile.TemporaryDirectory(prefix="assembly-", dir=RUN_DIR) as scratch:
        folder = Path(scratch)
        # Warm-up, unmeasured: the encoders, the decoder and the font load and allocate once.
        warm = build_plan(args, 1)
        assembly.render(warm, folder / "warm.mp4")
        out = folder / "episode.mp4"
        with Peak() as render:
            cut = assembly.render(plan, out)
        figures = {
            "scenes": scenes,
            "frames": cut.frames,
            "duration": cut.duration,
            "lines": len(plan.lines),
            "dubbed": len(cut.speech),
            "seconds": render.seconds,
            "growth_kib": render.growth_kib,
            "rss_before_kib": render.before_kib,
            "bytes": out.stat().st_size,
        }
        if args.sidecars:
            figures["sidecars"] = sidecars(plan, cut, out, folder)
    return figures


def sidecars(plan, cut, video: Path, folder: Path) -> dict:
    from studio import assembly

    figures = {}
    with Peak() as sheet:
        picture = assembly.contact_sheet(video, cut.chapters)
    figures["contact sheet"] = (sheet.seconds, sheet.growth_kib, len(picture))
    with Peak() as text:
        tracks = {
            "episode.vtt": assembly.webvtt(cut.cues).encode(),
            "episode.srt": assembly.srt(cut.cues).encode(),
            "chapters.vtt": assembly.chapters_vtt(cut.chapters).encode(),
        }
        files = assembly.timeline_files(assembly.timeline(plan, cut, name="Episode 1"))
    figures["subtitles and timeline files"] = (
        text.seconds,
        text.growth_kib,
        sum(len(content) for content in (*tracks.values(), *files.values())),
    )
    media = assembly.media_files(plan, cut)
    with Peak() as zipped:
        assembly.package(
            folder / "episode.zip",
            {"episode.mp4": video, **media, **tracks, **files, "contact-sheet.jpg": picture},
        )
    figures["zip"] = (zipped.seconds, zipped.growth_kib, (folder / "episode.zip").stat().st_size)
    return figures


def measure(args: argparse.Namespace, scenes: int, *, with_sidecars: bool) -> dict:
    argv = [sys.executable, __file__, "--child", str(scenes), *forwarded(args)]
    if with_sidecars:
        argv.append("--sidecars")
    result = subprocess.run(  # noqa: S603 - this script itself, fixed argv
        argv, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"The {scenes}-scene assembly failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def forwarded(args: argparse.Namespace) -> list[str]:
    options = [
        f"--seconds={args.seconds}",
        f"--size={args.width}x{args.height}",
        f"--fps={args.fps}",
        f"--crossfade={args.crossfade}",
    ]
    switches = {"--no-cards": args.no_cards, "--no-burn": args.no_burn, "--no-lines": args.no_lines}
    options += [flag for flag, on in switches.items() if on]
    return options


# --- Report -----------------------------------------------------------------------------------


def print_episode(figures: dict, args: argparse.Namespace) -> None:
    ratio = figures["seconds"] / figures["duration"]
    print(
        f"  {figures['scenes']} scenes x {args.seconds:g} s: cut {figures['duration']:.2f} s "
        f"({figures['frames']} frames, {figures['lines']} lines, {figures['dubbed']} dubbed), "
        f"{figures['bytes'] / MIB:.1f} MiB\n"
        f"      wall time {figures['seconds']:.1f} s = {ratio:.2f} x the cut's duration "
        f"({figures['frames'] / figures['seconds']:.0f} frames/s)\n"
        f"      peak RSS growth {figures['growth_kib'] / 1024:.1f} MiB "
        f"(RSS before {figures['rss_before_kib'] / 1024:.0f} MiB)"
    )
    for label, (seconds, growth_kib, size) in figures.get("sidecars", {}).items():
        print(
            f"      {label}: {seconds:.2f} s, peak RSS growth {growth_kib / 1024:.1f} MiB, "
            f"{size / 1024:,.0f} KiB"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args, args.child)))
        return 0
    options = ", ".join(
        part
        for part in (
            f"{args.width}x{args.height} {args.fps} fps",
            f"{args.crossfade:g} s crossfades" if args.crossfade else "hard cuts",
            "" if args.no_cards else "title and end cards",
            "" if args.no_lines else "2 lines a scene, 1 in 3 dubbed",
            "" if args.no_burn or args.no_lines else "burned subtitles",
        )
        if part
    )
    one, five, _ = os.getloadavg()
    print(
        f"Castboard assembly benchmark ({options}); {os.cpu_count()} CPUs, "
        f"load average {one:.2f} {five:.2f}"
    )
    ensure_inputs(args)
    long = measure(args, args.scenes, with_sidecars=True)
    print_episode(long, args)
    if args.small_scenes:
        short = measure(args, args.small_scenes, with_sidecars=False)
        print_episode(short, args)
        difference = (long["growth_kib"] - short["growth_kib"]) / 1024
        print(
            f"  [{'met' if difference < FLAT_ALLOWANCE_MIB else 'NOT MET'}] memory flat in the "
            f"episode's length: {args.scenes} scenes grew {long['growth_kib'] / 1024:.1f} MiB, "
            f"{args.small_scenes} scenes {short['growth_kib'] / 1024:.1f} MiB "
            f"(difference {difference:+.1f} MiB, allowed under {FLAT_ALLOWANCE_MIB} MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
