"""Small synthetic takes (made once per test session) and readers of what a cut contains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from studio.assembly import SceneClip
from tests.assembly.takes import make_speech, make_take

RED, GREEN, BLUE = (200, 40, 40), (40, 200, 40), (40, 40, 200)


@dataclass(frozen=True)
class Takes:
    red: Path  # 160x90, 24 fps, 2 s, a 440 Hz tone
    green: Path  # 120x160 (portrait), 30 fps, 1.5 s, a 660 Hz tone
    blue: Path  # 200x100, 24 fps, 2.5 s, no sound
    speech: Path  # a dubbed line: 0.8 s of a 1 kHz tone, mono 22.05 kHz WAV

    def scenes(self) -> tuple[SceneClip, ...]:
        return (
            SceneClip(self.red, "1. Launch day", 1, "media/scene-01-take-1.mp4", "https://x/1"),
            SceneClip(self.green, "2. Rain", 2, "media/scene-02-take-4.mp4"),
            SceneClip(self.blue, "Night falls", 3, "media/scene-03-take-2.mp4"),
        )


@pytest.fixture(scope="session")
def takes(tmp_path_factory) -> Takes:
    folder = tmp_path_factory.mktemp("takes")
    return Takes(
        red=make_take(folder / "red.mp4", size=(160, 90), seconds=2.0, color=RED, tone=440),
        green=make_take(
            folder / "green.mp4", size=(120, 160), fps=30, seconds=1.5, color=GREEN, tone=660
        ),
        blue=make_take(folder / "blue.mp4", size=(200, 100), seconds=2.5, color=BLUE, tone=None),
        speech=make_speech(folder / "line.wav", seconds=0.8),
    )


@dataclass(frozen=True)
class Streams:
    """What a player reads from an MP4: its streams' facts, its pictures and its sound."""

    video_codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    video_seconds: float
    frames: list[np.ndarray]  # RGB, in order
    audio_codec: str | None
    channels: int
    sample_rate: int
    audio_seconds: float
    sound: np.ndarray  # (2, samples) float32, from the stream's start

    def frame_at(self, seconds: float) -> np.ndarray:
        return self.frames[min(len(self.frames) - 1, int(seconds * self.fps + 0.5))]

    def rms(self, start: float, end: float) -> float:
        window = self.sound[:, round(start * self.sample_rate) : round(end * self.sample_rate)]
        return float(np.sqrt(np.mean(window.astype(np.float64) ** 2)))


def read_streams(path: Path) -> Streams:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        facts = {
            "video_codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "fps": float(video.average_rate),
            "video_seconds": float(video.duration * video.time_base),
        }
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video)]
    with av.open(str(path)) as container:
        if not container.streams.audio:
            silence = np.zeros((2, 0), np.float32)
            return Streams(
                **facts,
                frames=frames,
                audio_codec=None,
                channels=0,
                sample_rate=0,
                audio_seconds=0.0,
                sound=silence,
            )
        audio = container.streams.audio[0]
        chunks = [frame.to_ndarray() for frame in container.decode(audio)]
        return Streams(
            **facts,
            frames=frames,
            audio_codec=audio.codec_context.name,
            channels=audio.codec_context.channels,
            sample_rate=audio.codec_context.sample_rate,
            audio_seconds=float(audio.duration * audio.time_base),
            sound=np.concatenate(chunks, axis=1),
        )


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order ("ftyp", "moov", "mdat", ...)."""
    boxes, data = [], path.read_bytes()
    at = 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[at + 8 : at + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        at += size
    return boxes
