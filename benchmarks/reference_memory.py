"""Reference image benchmark: the peak memory and time one upload check costs the web process.

`characters.reference_checks.inspect_upload` runs in the request (uploads, imports from a URL,
"make a character from a take"), so its peak memory is the web process's. Each input
below is checked in its own fresh child process (Django set up, the image's decoder
warmed on a tiny file of the same format), so no figure inherits another's heap:

* peak RSS growth: VmHWM after the check minus VmRSS before it, with VmHWM reset
  (`5` written to /proc/self/clear_refs) just before the check;
* the time of the check (open, refuse by header or decode, thumbnail, colour);
* what the process still held once the check's thread had ended (VmRSS after minus
  before): memory the allocator kept rather than gave back.

The inputs are made once under var/bench/reference_memory/ (about 20 s) and reused.
The last line checks the largest PNG from several threads of one process at once, as
simultaneous uploads to one web process would. Exit 0 whatever the figures.

    .venv/bin/python benchmarks/reference_memory.py [--threads 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUN_DIR = ROOT / "var" / "bench" / "reference_memory"
MIB = 1024 * 1024
# The bound characters.reference_checks promises for one check: the bytes a pixel of the one
# full-size decode each kind of file needs (its Sample's budget), plus a fixed allowance
# for the thumbnail, the bands, the decoder's state and the file's bytes.
FIXED_ALLOWANCE_MIB = 40


@dataclass(frozen=True)
class Sample:
    file_name: str
    label: str
    make: Callable[[Path], None]
    budget_bytes_per_pixel: float


# --- Inputs -----------------------------------------------------------------------------------


def _photo(size: tuple[int, int]):
    """Smooth random colour, like a photo's, enlarged from a small noise field."""
    from PIL import Image

    small = (max(1, size[0] // 48), max(1, size[1] // 48))
    bands = [Image.effect_noise(small, 80) for _ in range(3)]
    return Image.merge("RGB", bands).resize(size, Image.Resampling.BICUBIC)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_flat_rgba_png(path: Path, size=(6300, 6300)) -> None:
    """The issue's file: a mostly transparent RGBA PNG with an opaque red disc-ish block."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGBA", size, (0, 0, 0, 0))
    width, height = size
    ImageDraw.Draw(picture).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(200, 40, 40, 255)
    )
    picture.save(path, "PNG")


def make_largest_rgba_png(path: Path) -> None:
    make_flat_rgba_png(path, size=(7744, 5160))


def make_jpeg(path: Path) -> None:
    _photo((7744, 5160)).save(path, "JPEG", quality=90)


def make_webp(path: Path) -> None:
    _photo((7744, 5160)).save(path, "WEBP", quality=80, method=0)


def make_16bit_png(path: Path, size=(6300, 6300)) -> None:
    """48-bit RGB (16 bits a channel), written by hand: Pillow cannot save that mode."""
    width, height = size
    compressor = zlib.compressobj(6)
    chunks = []
    for y in range(height):
        shade = (y * 65535) // height
        pixel = struct.pack(">HHH", shade, 20000, 65535 - shade)
        chunks.append(compressor.compress(b"\x00" + pixel * width))
    chunks.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(chunks))
        + _png_chunk(b"IEND", b"")
    )


def make_paletted_png(path: Path, size=(6300, 6300)) -> None:
    """Palette index 0 is transparent (a tRNS chunk); a blue band across the middle."""
    from PIL import Image, ImageDraw

    picture = Image.new("P", size, 0)
    picture.putpalette([0, 0, 0, 20, 40, 220] + [0, 0, 0] * 254)
    width, height = size
    ImageDraw.Draw(picture).rectangle((0, height // 3, width, 2 * height // 3), fill=1)
    picture.save(path, "PNG", transparency=0)


def make_small_photo(path: Path) -> None:
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # taken holding the phone upright
    _photo((1600, 1200)).save(path, "JPEG", quality=88, exif=exif)


def make_progressive_jpeg(path: Path) -> None:
    """Progressive, colour at full resolution (4:4:4): libjpeg's costliest kind of file."""
    _photo((7744, 5160)).save(path, "JPEG", quality=90, progressive=True, subsampling=0)


def make_lossless_webp(path: Path) -> None:
    """Gradients in every channel and in alpha: too many colours for a palette."""
    from PIL import Image

    size = (7744, 5160)
    red = Image.linear_gradient("L").resize(size)
    green = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(size)
    alpha = Image.linear_gradient("L").rotate(45).resize(size)
    picture = Image.merge("RGBA", (red, green, Image.new("L", size, 120), alpha))
    picture.save(path, "WEBP", lossless=True, method=0)


SAMPLES = [
    Sample("flat-rgba-6300.png", "RGBA PNG 6300x6300, mostly flat (the issue's)",
           make_flat_rgba_png, 4),
    Sample("rgba-7744x5160.png", "RGBA PNG 7744x5160 (40 Mpx, the cap)",
           make_largest_rgba_png, 4),
    Sample("photo-7744x5160.jpg", "RGB JPEG 7744x5160 (40 Mpx), baseline", make_jpeg, 0),
    Sample("progressive-444-7744x5160.jpg", "RGB JPEG 7744x5160 (40 Mpx), progressive 4:4:4",
           make_progressive_jpeg, 6),
    Sample("photo-7744x5160.webp", "RGB WebP 7744x5160 (40 Mpx), lossy", make_webp, 0),
    Sample("gradients-7744x5160.webp", "RGBA WebP 7744x5160 (40 Mpx), lossless",
           make_lossless_webp, 4),
    Sample("rgb16-6300.png", "16-bit RGB PNG 6300x6300", make_16bit_png, 4),
    Sample("paletted-6300.png", "paletted PNG 6300x6300 with transparency",
           make_paletted_png, 1),
    Sample("photo-1600x1200.jpg", "small photo, JPEG 1600x1200, EXIF turned",
           make_small_photo, 4),
]  # fmt: skip
LARGEST = SAMPLES[1]


def ensure_inputs() -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for sample in SAMPLES:
        path = RUN_DIR / sample.file_name
        if not path.exists():
            started = time.perf_counter()
            partial = path.with_suffix(".partial" + path.suffix)
            sample.make(partial)
            partial.rename(path)
            print(f"  made {sample.file_name} in {time.perf_counter() - started:.1f} s")


# --- The measured child -----------------------------------------------------------------------


def status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(field_name)


def child(path: Path, threads: int) -> dict:
    """Check `path` (from `threads` threads at once) and return what was measured."""
    import django

    django.setup()
    from PIL import Image

    from characters.reference_checks import MediaRejected, inspect_upload

    # Warm the decoder and encoders up on a tiny file of the same format, unmeasured.
    with Image.open(path) as header:
        fmt = header.format
        width, height = header.size
        mode = header.mode
    tiny = io.BytesIO()
    Image.new("RGBA" if fmt != "JPEG" else "RGB", (8, 8)).save(tiny, fmt)
    inspect_upload(tiny, name="warm-up")

    outcomes: list[str] = []

    def check() -> None:
        with path.open("rb") as upload:
            try:
                media = inspect_upload(upload, name=path.name)
            except MediaRejected as rejected:
                outcomes.append(f"refused: {rejected.message}")
            else:
                outcomes.append(
                    f"{media.width}x{media.height}, colour {media.dominant_color}, "
                    f"thumbnail {len(media.thumbnail):,} bytes"
                )

    Path("/proc/self/clear_refs").write_text("5")
    rss_before = status_kib("VmRSS")
    started = time.perf_counter()
    workers = [threading.Thread(target=check) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    return {
        "format": fmt,
        "mode": mode,
        "width": width,
        "height": height,
        "bytes": path.stat().st_size,
        "rss_before_kib": rss_before,
        "growth_kib": status_kib("VmHWM") - rss_before,
        "kept_kib": status_kib("VmRSS") - rss_before,
        "seconds": seconds,
        "outcome": outcomes[0] if len(set(outcomes)) == 1 else "; ".join(outcomes),
    }


def measure(path: Path, threads: int = 1) -> dict:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="studio.project.settings", DEBUG="false")
    # DEBUG is off, so the keys must be given; nothing is signed or stored here.
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    env.setdefault("ENCRYPTION_KEYS", secrets.token_urlsafe(50))
    result = subprocess.run(  # noqa: S603 - this script itself, fixed argv
        [sys.executable, __file__, "--child", str(path), "--threads", str(threads)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"The check of {path.name} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- Report -----------------------------------------------------------------------------------


def target_kib(sample: Sample, figures: dict) -> float:
    pixels = figures["width"] * figures["height"]
    return sample.budget_bytes_per_pixel * pixels / 1024 + FIXED_ALLOWANCE_MIB * 1024


def print_row(label: str, sample: Sample, figures: dict) -> None:
    growth = figures["growth_kib"]
    pixels = figures["width"] * figures["height"]
    target = target_kib(sample, figures)
    print(
        f"  [{'met' if growth < target else 'NOT MET'}] {label}\n"
        f"      {figures['bytes'] / 1024:,.0f} KB, {figures['format']} {figures['mode']}: "
        f"peak RSS growth {growth / 1024:.1f} MiB ({growth * 1024 / pixels:.2f} bytes/pixel; "
        f"target under {target / 1024:.0f} MiB = {sample.budget_bytes_per_pixel:g} bytes/pixel "
        f"+ {FIXED_ALLOWANCE_MIB} MiB) in {figures['seconds']:.2f} s; "
        f"still held after: {figures['kept_kib'] / 1024:.1f} MiB\n"
        f"      {figures['outcome']}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=3, help="simultaneous checks, last line")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.threads)))
        return 0
    print(
        "Castboard reference image benchmark: one check per fresh process, peak RSS growth "
        "against the bound in characters/reference_checks.py"
    )
    ensure_inputs()
    for sample in SAMPLES:
        print_row(sample.label, sample, measure(RUN_DIR / sample.file_name))
    # The lock lets one large decode run at a time, so the bound is still one check's.
    label = f"{args.threads} simultaneous checks of the {LARGEST.label}, one process"
    print_row(label, LARGEST, measure(RUN_DIR / LARGEST.file_name, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
