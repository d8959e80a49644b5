"""Synthetic takes and dubbed lines, made with PyAV, for the assembly tests and benchmark.

A take is a solid colour (with `moving=True`, a gradient that slides across the frame, as
the benchmark's long takes) and, unless `tone` is None, a sine tone on both channels.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RGB = tuple[int, int, int]
SAMPLE_RATE = 48000


def make_take(
    path: Path,
    *,
    size: tuple[int, int] = (160, 90),
    fps: int = 24,
    seconds: float = 2.0,
    color: RGB = (200, 40, 40),
    tone: float | None = 440.0,
    volume: float = 0.3,
    moving: bool = False,
) -> Path:
    """An H.264 (+ AAC) MP4 of `seconds`, exact to the frame, at `path`."""
    width, height = size
    frames = round(seconds * fps)
    with av.open(str(path), mode="w", format="mp4") as output:
        video = output.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = None
        if tone is not None:
            audio = output.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        plain = np.empty((height, width, 3), dtype=np.uint8)
        plain[:] = color
        ramp = np.linspace(0, 255, width * 2, dtype=np.float32)
        per_frame = SAMPLE_RATE // fps
        for index in range(frames):
            if moving:
                shift = (index * 8) % width
                row = ramp[shift : shift + width]
                picture = np.empty((height, width, 3), dtype=np.uint8)
                picture[..., 0] = row.astype(np.uint8)
                picture[..., 1] = color[1]
                picture[..., 2] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
            else:
                picture = plain
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            output.mux(video.encode(frame))
            if audio is not None:
                start = index * per_frame
                output.mux(audio.encode(_tone_frame(start, per_frame, tone, volume)))
        output.mux(video.encode(None))
        if audio is not None:
            output.mux(audio.encode(None))
    return path


def make_speech(path: Path, *, seconds: float, tone: float = 1000.0, volume: float = 0.5) -> Path:
    """A dubbed line stand-in: a mono tone at 22.05 kHz in a WAV file (resampled on mixing)."""
    rate = 22050
    with av.open(str(path), mode="w", format="wav") as output:
        stream = output.add_stream("pcm_s16le", rate=rate, layout="mono")
        count = round(seconds * rate)
        at = np.arange(count, dtype=np.float64) / rate
        samples = (np.sin(2 * math.pi * tone * at) * volume * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


def _tone_frame(start: int, count: int, tone: float, volume: float) -> av.AudioFrame:
    at = (np.arange(start, start + count, dtype=np.float64)) / SAMPLE_RATE
    wave = (np.sin(2 * math.pi * tone * at) * volume).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    frame.pts, frame.time_base = start, Fraction(1, SAMPLE_RATE)
    return frame
