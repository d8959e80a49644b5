"""Samples a video's frames by streaming decode: one every `interval` seconds, at most `limit`.

The container is read packet by packet (PyAV), so a take is never held in memory as a
whole: only the sampled frames are converted to pictures, scaled down to `max_width` by
FFmpeg's scaler as they are decoded, and handed over one at a time.

When the container states its duration, the interval widens for long videos so that the
samples still cover the whole take (`limit` samples, evenly spread); when it does not, the
first `limit` samples at `interval` are taken. Samples sit in the middle of their slot
(0.25 s, 0.75 s, ... for 0.5 s), away from the first frame's fade-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import av
from PIL import Image

from jobs.video_files import stated_seconds
from studio.consistency.scoring import ScoringError

__all__ = ["SampledFrame", "VideoFrames"]

# Image formats FFmpeg happily "demuxes" as a one-frame video: they are not takes.
_IMAGE_FORMATS = ("image2", "_pipe")


@dataclass(frozen=True)
class SampledFrame:
    index: int  # 0, 1, ... among the samples
    seconds: float  # from the start of the video
    image: Image.Image  # RGB, at most max_width wide (never enlarged)


class VideoFrames:
    """`with VideoFrames(video) as frames: for sample in frames: ...`; then `frames.seconds`.

    Raises ScoringError (a ValueError with a plain message) for anything that is not a
    decodable video: empty input, an image, no video stream, no frames, a broken stream.
    """

    def __init__(
        self,
        video: str | BinaryIO,
        *,
        interval: float = 0.5,
        limit: int = 24,
        max_width: int = 1280,
    ) -> None:
        self.video = video
        self.interval = interval
        self.limit = limit
        self.max_width = max_width
        self.duration: float | None = None  # as the container states it, if it does
        self.seconds = 0.0  # the duration, or (if unstated) the end of the last decoded frame
        self._container = None

    def __enter__(self) -> VideoFrames:
        try:
            self._container = av.open(self.video, mode="r")
        except av.FFmpegError as error:
            raise ScoringError(
                f"The file is not a video we can read ({error.strerror})."
            ) from error
        except (EOFError, OSError) as error:
            raise ScoringError("The file is not a video we can read.") from error
        container = self._container
        try:
            if any(marker in container.format.name for marker in _IMAGE_FORMATS):
                raise ScoringError("The file is an image, not a video.")
            if not container.streams.video:
                raise ScoringError("The file has no video stream.")
            stream = container.streams.video[0]
            self.duration = stated_seconds(container, stream)
        except BaseException:
            container.close()
            raise
        if self.duration:
            self.seconds = self.duration
            # Widen the interval for long takes so `limit` samples span the whole video.
            self.interval = max(self.interval, self.duration / self.limit)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __iter__(self) -> Iterator[SampledFrame]:
        container = self._container
        if container is None:
            raise RuntimeError("Use VideoFrames in a with block.")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        start = None
        count = 0
        decoded = 0
        last_end = 0.0
        try:
            for frame in container.decode(stream):
                decoded += 1
                if frame.time is not None:
                    if start is None:
                        start = frame.time
                    seconds = frame.time - start
                else:  # no timestamps: count frames
                    seconds = (decoded - 1) / (rate or 25.0)
                last_end = max(last_end, seconds + 1 / (rate or 25.0))
                if count >= self.limit:
                    if self.duration:
                        break  # the rest adds nothing; the stated duration stands
                    continue  # keep decoding only to learn the real end
                target = (count + 0.5) * self.interval
                if seconds + 1e-6 < target and not self._last_chance(seconds, target, rate):
                    continue
                yield SampledFrame(index=count, seconds=round(seconds, 3), image=self._image(frame))
                count += 1
        except av.FFmpegError as error:
            raise ScoringError(f"The video cannot be decoded ({error.strerror}).") from error
        if decoded == 0:
            raise ScoringError("The video has no frames.")
        if not self.duration:
            self.seconds = last_end

    def _last_chance(self, seconds: float, target: float, rate: float | None) -> bool:
        """True for the frame closest before a target that the next frame would overshoot."""
        if not rate:
            return False
        return seconds + 1 / rate > target + 0.5 / rate

    def _image(self, frame: av.VideoFrame) -> Image.Image:
        width, height = frame.width, frame.height
        if width > self.max_width:
            height = max(2, round(height * self.max_width / width))
            width = self.max_width
            frame = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
        return frame.to_image()
