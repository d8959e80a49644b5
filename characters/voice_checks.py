"""Checks a voice sample by its content: a short recording a speech provider makes a voice from.

The file's name and declared type are ignored. Its first bytes must be one of the audio
formats below, which FFmpeg is then told to read (never left to guess: some formats it
guesses fetch other files or addresses); its first audio stream must decode, from start
to end, to between 1 and 60 seconds of sound. Decoding stops as soon as the sample is
known to be too long, so a long file costs no more than a minute of audio.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

import av

from characters.reference_checks import format_bytes

SAMPLE_MAX_BYTES = 10 * 1024 * 1024
SAMPLE_MIN_SECONDS = 1
SAMPLE_MAX_SECONDS = 60
ACCEPTED = "MP3, WAV, M4A, OGG, FLAC or WebM"

# (FFmpeg demuxer, content type, file extension) by what the file starts with.
_MP4 = ("mov", "audio/mp4", "m4a")
_QUICKTIME_ATOMS = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"})


# What a kept sample is, by the extension inspect_sample gave its file name.
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "webm": "audio/webm",
    "m4a": "audio/mp4",
}


def sample_content_type(name: str) -> str:
    """The content type of a sample kept under `name` (empty when it is not one of ours)."""
    return CONTENT_TYPES.get(name.rpartition(".")[2].lower(), "")


class SampleRejected(ValueError):
    """A sample we will not keep, with a message meant for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class InspectedSample:
    content_type: str
    extension: str
    seconds: float
    codec: str


def inspect_sample(fileobj: IO[bytes], *, name: str) -> InspectedSample:
    """Say what an uploaded voice sample is, or raise SampleRejected with a plain reason.
    The file is left at position 0 so the caller can save it."""
    try:
        return _inspect(fileobj, name)
    finally:
        fileobj.seek(0)


def _inspect(fileobj: IO[bytes], name: str) -> InspectedSample:
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    if size == 0:
        raise SampleRejected(f"{name} is empty.")
    if size > SAMPLE_MAX_BYTES:
        raise SampleRejected(
            f"{name} is {format_bytes(size)}; a voice sample may be at most "
            f"{format_bytes(SAMPLE_MAX_BYTES)}."
        )
    kind = _audio_format(fileobj.read(16))
    fileobj.seek(0)
    if kind is None:
        raise SampleRejected(f"{name} is not a sound recording we read ({ACCEPTED}).")
    demuxer, content_type, extension = kind
    try:
        with av.open(fileobj, mode="r", format=demuxer) as container:
            seconds, codec = _sound_seconds(container, name)
    except SampleRejected:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise SampleRejected(
            f"{name} looks like a sound recording but could not be read; it may be damaged "
            "or cut short."
        ) from exc
    if round(seconds, 1) < SAMPLE_MIN_SECONDS:
        raise SampleRejected(
            f"{name} lasts {seconds:.1f} s; a voice sample lasts {SAMPLE_MIN_SECONDS} to "
            f"{SAMPLE_MAX_SECONDS} s."
        )
    return InspectedSample(content_type, extension, round(seconds, 3), codec)


def _audio_format(head: bytes) -> tuple[str, str, str] | None:
    """The demuxer, content type and extension for an audio file's first bytes."""
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3", "audio/mpeg", "mp3"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav", "audio/wav", "wav"
    if head.startswith(b"OggS"):
        return "ogg", "audio/ogg", "ogg"
    if head.startswith(b"fLaC"):
        return "flac", "audio/flac", "flac"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska", "audio/webm", "webm"
    if head[4:8] in _QUICKTIME_ATOMS:
        return _MP4
    return None


def _sound_seconds(container: av.container.InputContainer, name: str) -> tuple[float, str]:
    """How long the first audio stream lasts, by decoding it (headers may say anything)."""
    if not container.streams.audio:
        raise SampleRejected(f"{name} has no sound in it.")
    stream = container.streams.audio[0]
    codec = stream.codec_context.codec.canonical_name if stream.codec_context else "unknown"
    seconds = 0.0
    for frame in container.decode(stream):
        if frame.sample_rate:
            seconds += frame.samples / frame.sample_rate
        if round(seconds, 1) > SAMPLE_MAX_SECONDS:
            said = container.duration / av.time_base if container.duration else None
            length = f"lasts {said:.1f} s" if said and said > seconds else "lasts longer"
            raise SampleRejected(
                f"{name} {length}; a voice sample lasts {SAMPLE_MIN_SECONDS} to "
                f"{SAMPLE_MAX_SECONDS} s."
            )
    if seconds == 0:
        raise SampleRejected(f"{name} has no sound we could read.")
    return seconds, codec
