"""Renders the cut: every take in order, normalised, with cards, crossfades and dubbed lines.

One pass, streamed: each take is decoded frame by frame, fitted to the cut's size and
frame rate (media.take_pictures) and encoded at once (H.264 yuv420p); a crossfade reads
the outgoing and the incoming take side by side, a frame of each at a time. The sound is
made in step with the pictures (each frame's samples right after the frame): the takes'
own sound (silence for a take without any and for cards), crossfaded with the pictures,
plus the dubbed lines at their cues, encoded as AAC stereo. So memory stays flat however
long the episode is. The MP4 is written with its index first ("faststart"), so browsers
play it while it loads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from studio.assembly.media import AudioReader, take_pictures
from studio.assembly.plan import Layout, Plan, Speech, layout
from studio.assembly.text import Overlay, card_picture, subtitle_overlay

__all__ = ["render"]

X264_OPTIONS = {"preset": "veryfast", "crf": "22"}
AUDIO_BIT_RATE = 160_000
KEYFRAME_SECONDS = 2  # a keyframe every 2 s keeps seeking (and chapter jumps) quick
PROGRESS_STEPS = 100


def render(plan: Plan, out: Path, *, progress: Callable[[float], None] | None = None) -> Layout:
    """Write the cut to `out` (MP4: H.264 + AAC, faststart) and return its layout.

    `progress(fraction)` is called now and then with frames written / total frames, and
    with 1.0 at the end. AssemblyError for a take or a line that cannot be used; the
    partial file is removed on any error.
    """
    cut = layout(plan)
    out = Path(out)
    try:
        _write(plan, cut, out, progress)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return cut


def _write(plan: Plan, cut: Layout, out: Path, progress: Callable[[float], None] | None) -> None:
    fps, rate = plan.fps, plan.sample_rate
    with av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
        video = output.add_stream("libx264", rate=fps, options=dict(X264_OPTIONS))
        video.width, video.height, video.pix_fmt = plan.width, plan.height, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        video.codec_context.gop_size = KEYFRAME_SECONDS * fps
        audio = output.add_stream("aac", rate=rate, layout="stereo")
        audio.codec_context.bit_rate = AUDIO_BIT_RATE
        audio.codec_context.time_base = Fraction(1, rate)

        subtitles = _Subtitles(plan, cut) if plan.burn_subtitles else None
        every = max(1, cut.frames // PROGRESS_STEPS)
        written = 0
        with (
            _Soundtrack(plan, cut) as soundtrack,
            contextlib.closing(_pictures(plan, cut)) as pictures,
        ):
            for index, picture in enumerate(pictures):
                if subtitles is not None:
                    picture = subtitles.burn(picture, index)
                frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
                frame.pts, frame.time_base = index, Fraction(1, fps)
                output.mux(video.encode(frame))
                # The sound up to the end of this frame, so both streams advance together.
                samples = soundtrack.read_until(_sample_at(index + 1, fps, rate))
                if samples is not None:
                    output.mux(audio.encode(samples))
                written = index + 1
                if progress is not None and written % every == 0:
                    progress(min(1.0, written / cut.frames))
        if written != cut.frames:  # a bug, not bad input: the layout and the pictures disagree
            raise RuntimeError(f"Wrote {written} frames, the layout has {cut.frames}.")
        output.mux(video.encode(None))
        output.mux(audio.encode(None))
    if progress is not None:
        progress(1.0)


def _sample_at(frame: int, fps: int, rate: int) -> int:
    return frame * rate // fps


# --- Pictures ---------------------------------------------------------------------------------


def _pictures(plan: Plan, cut: Layout) -> Iterator[np.ndarray]:
    """Every picture of the cut in order: title card, scenes (crossfaded), end card."""
    width, height = plan.width, plan.height
    if cut.title_frames:
        card = card_picture(plan.title_card, width, height)
        for _ in range(cut.title_frames):
            yield card
    fade = cut.crossfade_frames
    last = len(plan.scenes) - 1
    current = _scene_pictures(plan, cut, 0)
    incoming = None
    try:
        for index in range(last + 1):
            head = fade if index > 0 else 0  # already shown, blended into the previous scene
            tail = fade if index < last else 0
            for _ in range(cut.scene_frames[index] - head - tail):
                yield next(current)
            if index == last:
                break
            incoming = _scene_pictures(plan, cut, index + 1)
            for step in range(tail):  # none for a hard cut
                weight = round(256 * (step + 1) / (fade + 1))
                yield _blend(next(current), next(incoming), weight)
            current.close()
            current, incoming = incoming, None
    finally:
        current.close()
        if incoming is not None:
            incoming.close()
    if cut.end_frames:
        card = card_picture(plan.end_card, width, height)
        for _ in range(cut.end_frames):
            yield card


def _scene_pictures(plan: Plan, cut: Layout, index: int) -> Iterator[np.ndarray]:
    scene = plan.scenes[index]
    return take_pictures(
        scene.path,
        frames=cut.scene_frames[index],
        fps=plan.fps,
        width=plan.width,
        height=plan.height,
        who=f"Scene {scene.number}'s take",
    )


def _blend(outgoing: np.ndarray, incoming: np.ndarray, weight: int) -> np.ndarray:
    """outgoing * (1 - weight/256) + incoming * weight/256."""
    mixed = outgoing.astype(np.uint16) * (256 - weight) + incoming.astype(np.uint16) * weight
    return ((mixed + 128) >> 8).astype(np.uint8)


class _Subtitles:
    """Burns the cues on screen at each frame into the picture's bottom band.

    Frames come in order and cues are sorted by start, so the cues on screen are kept as
    a small window (those started and not yet ended): no scan of every cue per frame.
    """

    def __init__(self, plan: Plan, cut: Layout) -> None:
        self.width, self.height, self.fps = plan.width, plan.height, plan.fps
        self.cues = cut.cues
        self._next = 0  # the first cue not yet started
        self._showing: list[int] = []
        self._overlay: tuple[tuple[int, ...], Overlay | None] = ((), None)

    def burn(self, picture: np.ndarray, index: int) -> np.ndarray:
        moment = (index + 0.5) / self.fps  # the frame's middle
        while self._next < len(self.cues) and self.cues[self._next].start <= moment:
            self._showing.append(self._next)
            self._next += 1
        self._showing = [number for number in self._showing if moment < self.cues[number].end]
        if not self._showing:
            return picture
        showing = tuple(self._showing)
        if self._overlay[0] != showing:  # one overlay at a time: made when the text changes
            text = "\n".join(self.cues[number].text for number in showing)
            self._overlay = (showing, subtitle_overlay(text, self.width, self.height))
        picture = picture.copy()  # a repeated frame or a card is shared
        self._overlay[1].apply(picture, self.height)
        return picture


# --- Sound ------------------------------------------------------------------------------------


class _Soundtrack:
    """The cut's sound, made in order: the takes' own (crossfaded) plus the dubbed lines.

    Each source is opened when its first sample is due and closed after its last, so at
    most two takes (in a crossfade) and the lines being spoken are open at a time.
    """

    def __init__(self, plan: Plan, cut: Layout) -> None:
        self.plan = plan
        self.rate = plan.sample_rate
        fps = plan.fps
        self.fade = _sample_at(cut.crossfade_frames, fps, self.rate)
        # (first sample, end sample, scene index), in order; a crossfade is where two overlap.
        self.scenes = [
            (_sample_at(start, fps, self.rate), _sample_at(start + frames, fps, self.rate), index)
            for index, (start, frames) in enumerate(
                zip(cut.scene_start_frames, cut.scene_frames, strict=True)
            )
        ]
        self.speech = [
            (round(item.start * self.rate), round(item.end * self.rate), number, item)
            for number, item in enumerate(cut.speech)  # sorted by start
        ]
        self.position = 0
        self._scene_from = 0  # scenes before this one have ended
        self._speech_next = 0  # the first line not yet started
        self._speaking: list[tuple[int, int, int, Speech]] = []
        self._open: dict[tuple[str, int], AudioReader] = {}

    def __enter__(self) -> _Soundtrack:
        return self

    def __exit__(self, *exc_info) -> None:
        for reader in self._open.values():
            reader.close()
        self._open.clear()

    def _reader(self, key: tuple[str, int], path: Path, who: str) -> AudioReader:
        if key not in self._open:
            self._open[key] = AudioReader(path, sample_rate=self.rate, who=who)
        return self._open[key]

    def _done(self, key: tuple[str, int]) -> None:
        reader = self._open.pop(key, None)
        if reader is not None:
            reader.close()

    def read_until(self, end: int) -> av.AudioFrame | None:
        """The samples from where the last read stopped up to `end`, as one audio frame."""
        start = self.position
        if end <= start:
            return None
        mix = np.zeros((2, end - start), dtype=np.float32)
        for first, last, index in self.scenes[self._scene_from :]:
            if first >= end:
                break
            scene = self.plan.scenes[index]
            reader = self._reader(("scene", index), scene.path, f"Scene {scene.number}'s take")
            lo, hi = max(first, start), min(last, end)
            samples = reader.read(hi - lo)
            samples *= self._gains(first, last, index, lo, hi)
            mix[:, lo - start : hi - start] += samples
            if last <= end:  # scenes end in order: this one is over
                self._done(("scene", index))
                self._scene_from = index + 1
        while self._speech_next < len(self.speech) and self.speech[self._speech_next][0] < end:
            self._speaking.append(self.speech[self._speech_next])
            self._speech_next += 1
        for first, last, number, item in self._speaking:
            reader = self._reader(
                ("line", number), item.audio, f"The dubbed speech of line {item.line + 1}"
            )
            lo, hi = max(first, start), min(last, end)
            mix[:, lo - start : hi - start] += reader.read(hi - lo)
            if last <= end:
                self._done(("line", number))
        self._speaking = [line for line in self._speaking if line[1] > end]
        np.clip(mix, -1.0, 1.0, out=mix)
        self.position = end
        frame = av.AudioFrame.from_ndarray(mix, format="fltp", layout="stereo")
        frame.sample_rate = self.rate
        frame.pts, frame.time_base = start, Fraction(1, self.rate)
        return frame

    def _gains(self, first: int, last: int, index: int, lo: int, hi: int) -> np.ndarray:
        """Each sample's volume: ramps up through a crossfade in, down through one out."""
        gains = np.ones(hi - lo, dtype=np.float32)
        if not self.fade:
            return gains
        at = np.arange(lo, hi, dtype=np.float32) + 0.5
        if index > 0:
            gains = np.minimum(gains, (at - first) / self.fade)
        if index < len(self.scenes) - 1:
            gains = np.minimum(gains, (last - at) / self.fade)
        return np.clip(gains, 0.0, 1.0)
