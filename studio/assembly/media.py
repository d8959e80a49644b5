"""Reading media for the cut: what a take or a dubbed line is, and its frames and sound, streamed.

Frames come out as yuv420p pictures of the cut's size (numpy arrays of shape
(height * 3 // 2, width): the Y plane, then U and V), scaled by FFmpeg's scaler
(libswscale, through PyAV) to fit and padded with black, at the cut's frame rate: for
each output frame the source frame on screen at that moment is taken (so frames are
dropped or repeated by their timestamps). Sound comes out as float32 stereo at the
cut's sample rate, read in order. Only the frame or the few audio frames being worked
on are ever held.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from jobs.video_files import stated_seconds

__all__ = [
    "AssemblyError",
    "AudioReader",
    "TakeFacts",
    "black_picture",
    "inspect_audio",
    "inspect_take",
    "take_pictures",
]

# Image formats FFmpeg happily "demuxes" as a one-frame video: they are not takes.
_IMAGE_FORMATS = ("image2", "_pipe")
_BLACK_Y, _NEUTRAL_CHROMA = 16, 128  # black in yuv420p's limited range


class AssemblyError(ValueError):
    """Something in the plan cannot be assembled, said in plain words for the user."""


@dataclass(frozen=True)
class TakeFacts:
    seconds: float
    width: int
    height: int
    has_audio: bool


def _open(path: Path | str, who: str):
    try:
        return av.open(str(path), mode="r")
    except FileNotFoundError as error:
        raise AssemblyError(f"{who} is missing (no file at {Path(path).name}).") from error
    except (av.FFmpegError, EOFError, OSError) as error:
        raise AssemblyError(f"{who} is not a file we can read as media.") from error


def inspect_take(path: Path | str, *, who: str) -> TakeFacts:
    """What a take is: its length, size and whether it has sound (AssemblyError if unusable)."""
    with _open(path, who) as container:
        if any(marker in container.format.name for marker in _IMAGE_FORMATS):
            raise AssemblyError(f"{who} is a picture, not a video.")
        if not container.streams.video:
            raise AssemblyError(f"{who} has no video stream.")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise AssemblyError(f"{who} has a video stream with no picture size.")
        seconds = stated_seconds(container, stream)
        if seconds is None:
            seconds = _decoded_seconds(container, stream, who)
        if seconds <= 0:
            raise AssemblyError(f"{who} has no frames.")
        return TakeFacts(seconds, width, height, bool(container.streams.audio))


def inspect_audio(path: Path | str, *, who: str) -> float:
    """A sound file's length in seconds (AssemblyError if it has no sound we can read)."""
    with _open(path, who) as container:
        if not container.streams.audio:
            raise AssemblyError(f"{who} has no sound in it.")
        stream = container.streams.audio[0]
        seconds = stated_seconds(container, stream)
        if seconds is None:
            seconds = _decoded_seconds(container, stream, who)
        if seconds <= 0:
            raise AssemblyError(f"{who} is empty.")
        return seconds


def _decoded_seconds(container, stream, who: str) -> float:
    """The end of the last frame, for containers that do not state their length."""
    end = 0.0
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if stream.type == "audio":
                length = frame.samples / frame.sample_rate
            else:
                rate = stream.average_rate or stream.guessed_rate or 25
                length = 1 / float(rate)
            end = max(end, frame.time + length)
    except av.FFmpegError as error:
        raise AssemblyError(f"{who} cannot be decoded.") from error
    return end


# --- Pictures ---------------------------------------------------------------------------------


def black_picture(width: int, height: int) -> np.ndarray:
    picture = np.full((height * 3 // 2, width), _NEUTRAL_CHROMA, dtype=np.uint8)
    picture[:height] = _BLACK_Y
    return picture


def planes(picture: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of a yuv420p picture's Y, U and V planes (changing them changes the picture).

    The picture is the planes one after the other (as PyAV's to_ndarray gives them), so
    its rows only line up with the planes' when the height is a multiple of 4: slice flat.
    """
    width = picture.shape[1]
    flat = picture.reshape(-1)
    if not np.shares_memory(flat, picture):
        raise ValueError("A picture must be one contiguous array.")
    luma_size, chroma_size = height * width, (height // 2) * (width // 2)
    luma = flat[:luma_size].reshape(height, width)
    u = flat[luma_size : luma_size + chroma_size].reshape(height // 2, width // 2)
    v = flat[luma_size + chroma_size : luma_size + 2 * chroma_size].reshape(height // 2, width // 2)
    return luma, u, v


class _Fitter:
    """Scales frames of one source size into the cut's size, keeping their shape (black bars)."""

    def __init__(self, width: int, height: int, source: tuple[int, int], aspect: Fraction):
        self.width, self.height = width, height
        shown_width = source[0] * aspect  # the sample aspect ratio widens or narrows pixels
        scale = min(width / shown_width, height / source[1])
        # Even sizes and offsets, so the half-size chroma planes line up with the luma.
        self.fit_width = min(width, max(2, round(shown_width * scale / 2) * 2))
        self.fit_height = min(height, max(2, round(source[1] * scale / 2) * 2))
        self.left = (width - self.fit_width) // 4 * 2
        self.top = (height - self.fit_height) // 4 * 2

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        scaled = frame.reformat(
            width=self.fit_width, height=self.fit_height, format="yuv420p", interpolation="BILINEAR"
        )
        picture = scaled.to_ndarray()
        if (self.fit_width, self.fit_height) == (self.width, self.height):
            return picture
        canvas = black_picture(self.width, self.height)
        for target, source, half in zip(
            planes(canvas, self.height),
            planes(picture, self.fit_height),
            (1, 2, 2),
            strict=True,
        ):
            top, left = self.top // half, self.left // half
            target[top : top + source.shape[0], left : left + source.shape[1]] = source
        return canvas


def take_pictures(
    path: Path | str, *, frames: int, fps: int, width: int, height: int, who: str
) -> Iterator[np.ndarray]:
    """Exactly `frames` pictures of the take at `fps`, fitted to width x height.

    The picture for output frame j is the source frame on screen at j / fps (by its
    timestamp, counted from the take's first frame); past the take's last frame the last
    one is repeated. A repeated frame is the same array object: copy it before changing it.
    """
    container = _open(path, who)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        aspect = Fraction(stream.sample_aspect_ratio or 1)
        if not 0.1 < aspect < 10:  # unset (0) or absurd: square pixels
            aspect = Fraction(1)
        fit = None
        upcoming = _timed_frames(container, stream, who)
        current = shown = None
        following = next(upcoming, None)
        if following is None:
            raise AssemblyError(f"{who} has no frames.")
        # A source frame counts from the moment it is due; the slack absorbs rounding.
        slack = 0.25 / fps
        for index in range(frames):
            moment = index / fps + slack
            while following is not None and (current is None or following[0] <= moment):
                current, following = following, next(upcoming, None)
            if shown is None or shown[0] is not current:
                frame = current[1]
                if fit is None:
                    fit = _Fitter(width, height, (frame.width, frame.height), aspect)
                shown = (current, fit(frame))
            yield shown[1]
    finally:
        container.close()


def _timed_frames(container, stream, who: str) -> Iterator[tuple[float, av.VideoFrame]]:
    """(seconds from the first frame, frame) in presentation order."""
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    first = None
    try:
        for count, frame in enumerate(container.decode(stream)):
            if frame.time is None:
                seconds = count / rate
            else:
                if first is None:
                    first = frame.time
                seconds = frame.time - first
            yield seconds, frame
    except av.FFmpegError as error:
        raise AssemblyError(f"{who} cannot be decoded ({error.strerror}).") from error


# --- Sound ------------------------------------------------------------------------------------


class AudioReader:
    """A file's first sound track as float32 stereo at `sample_rate`, read in order.

    `read(count)` returns exactly `count` samples (shape (2, count)); silence past the
    end, or throughout when the file has no sound. Close it (or use it in a with block).
    """

    def __init__(self, path: Path | str, *, sample_rate: int, who: str) -> None:
        self.who = who
        self._container = _open(path, who)
        self._pending: deque[np.ndarray] = deque()
        self._offset = 0  # samples of _pending[0] already read
        self._decoded: Iterator[np.ndarray] | None = None
        if self._container.streams.audio:
            stream = self._container.streams.audio[0]
            stream.thread_type = "AUTO"
            # Mono is copied to both sides at its full level (FFmpeg's upmix lowers it 3 dB).
            mono = stream.codec_context.channels == 1
            layout = "mono" if mono else "stereo"
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
            self._decoded = self._decode(stream, resampler, mono)
        else:
            self._container.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._decoded = None
        self._pending.clear()
        self._container.close()

    def _decode(self, stream, resampler, mono: bool) -> Iterator[np.ndarray]:
        def both_sides(out: av.AudioFrame) -> np.ndarray:
            samples = out.to_ndarray()
            return np.repeat(samples, 2, axis=0) if mono else samples

        try:
            for frame in self._container.decode(stream):
                for out in resampler.resample(frame):
                    yield both_sides(out)
            for out in resampler.resample(None):
                yield both_sides(out)
        except av.FFmpegError as error:
            raise AssemblyError(f"{self.who}: its sound cannot be decoded.") from error

    def read(self, count: int) -> np.ndarray:
        out = np.zeros((2, count), dtype=np.float32)
        filled = 0
        while filled < count:
            if not self._pending:
                chunk = next(self._decoded, None) if self._decoded is not None else None
                if chunk is None:
                    self._decoded = None
                    break  # the rest stays silent
                self._pending.append(chunk)
                self._offset = 0
            chunk = self._pending[0]
            take = min(count - filled, chunk.shape[1] - self._offset)
            out[:, filled : filled + take] = chunk[:, self._offset : self._offset + take]
            filled += take
            self._offset += take
            if self._offset >= chunk.shape[1]:
                self._pending.popleft()
                self._offset = 0
        return out
