"""Probing downloaded results and making their previews; cutting character clips from takes."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

THUMBNAIL_WIDTH = 640
SPRITE_TILE_WIDTH = 160
SPRITE_COLUMNS = 5
SPRITE_ROWS = 2


class ResultUnusable(ValueError):
    """The provider's result is not a playable video."""


@dataclass(frozen=True)
class VideoFacts:
    duration: float
    width: int
    height: int
    codec: str


def stated_seconds(container, stream) -> float | None:
    """How long a stream lasts by what its file says (the stream's duration, else the
    container's), without decoding; None when it says nothing usable."""
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0 and math.isfinite(seconds):
            return seconds
    if container.duration:  # in microseconds (av.time_base)
        seconds = container.duration / av.time_base
        if seconds > 0 and math.isfinite(seconds):
            return seconds
    return None


def probe_video(path: Path) -> VideoFacts:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            duration = stated_seconds(container, stream) or 0.0
            return VideoFacts(
                duration=round(duration, 3),
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                codec=stream.codec_context.codec.canonical_name,
            )
    except (av.FFmpegError, IndexError, ValueError) as error:
        raise ResultUnusable(f"The result is not a playable video ({error}).") from None


def _frames_at(path: Path, fractions: list[float], *, width: int) -> list[Image.Image]:
    """One frame near each fraction of the duration (seeking, not decoding all), `width` wide.

    Each frame is shrunk as soon as it is decoded, so memory stays that of small
    images whatever the video's size.
    """
    images: list[Image.Image] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        for fraction in fractions:
            target = int(duration * fraction / stream.time_base) if duration else 0
            container.seek(target, stream=stream, backward=True, any_frame=False)
            frame = next(container.decode(stream), None)
            if frame is None:
                break
            target = min(width, frame.width)  # shrink, never enlarge
            height = max(1, round(target * frame.height / frame.width))
            images.append(frame.to_image(width=target, height=height))
    if not images:
        raise ResultUnusable("The result has no frames.")
    return images


def make_thumbnail(path: Path) -> bytes:
    """A JPEG of the middle frame, THUMBNAIL_WIDTH wide."""
    image = _frames_at(path, [0.5], width=THUMBNAIL_WIDTH)[0]
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=82)
    return out.getvalue()


def make_spritesheet(path: Path) -> bytes:
    """A JPEG grid of frames sampled evenly across the video, for scrubbing previews."""
    count = SPRITE_COLUMNS * SPRITE_ROWS
    frames = _frames_at(path, [(i + 0.5) / count for i in range(count)], width=SPRITE_TILE_WIDTH)
    tile_height = frames[0].height
    sheet = Image.new("RGB", (SPRITE_TILE_WIDTH * SPRITE_COLUMNS, tile_height * SPRITE_ROWS))
    for index, frame in enumerate(frames):
        tile = frame.convert("RGB")
        sheet.paste(
            tile,
            ((index % SPRITE_COLUMNS) * SPRITE_TILE_WIDTH, (index // SPRITE_COLUMNS) * tile_height),
        )
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=75)
    return out.getvalue()


STILL_WIDTH = 1280


def stills(path: Path, fractions: list[float]) -> list[bytes]:
    """JPEG frames at these fractions of a clip, up to STILL_WIDTH wide (reference images)."""
    frames = _frames_at(path, fractions, width=STILL_WIDTH)
    out = []
    for frame in frames:
        buffer = io.BytesIO()
        frame.convert("RGB").save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def cut_clip(path: Path, *, start: float, end: float) -> bytes:
    """Re-encode [start, end) seconds of a video as a small H.264 MP4 (a character's clip)."""
    if end <= start:
        raise ValueError("The clip must end after it starts.")
    out = io.BytesIO()
    with av.open(str(path)) as source, av.open(out, mode="w", format="mp4") as target:
        in_stream = source.streams.video[0]
        rate = in_stream.average_rate or 24
        stream = target.add_stream("libx264", rate=rate)
        stream.width = in_stream.codec_context.width // 2 * 2
        stream.height = in_stream.codec_context.height // 2 * 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        source.seek(int(start / in_stream.time_base), stream=in_stream, backward=True)
        index = 0
        for frame in source.decode(in_stream):
            moment = float(frame.pts * in_stream.time_base) if frame.pts is not None else 0.0
            if moment < start:
                continue
            if moment >= end:
                break
            image = frame.to_image().convert("RGB").resize((stream.width, stream.height))
            new = av.VideoFrame.from_image(image).reformat(format="yuv420p")
            new.pts = index
            new.time_base = 1 / rate
            index += 1
            for packet in stream.encode(new):
                target.mux(packet)
        for packet in stream.encode():
            target.mux(packet)
    if index == 0:
        raise ValueError("The chosen span has no frames.")
    return out.getvalue()
