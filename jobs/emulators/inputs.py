"""Inspecting what clients upload or point at: images, videos and remote URLs.

The emulators refuse what the real providers refuse, so they look at the bytes
themselves (magic numbers, a real decode) instead of trusting file names or
declared content types.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

# Magic numbers of the image formats OpenAI accepts as `input_reference`.
_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"


def sniff_image(data: bytes) -> str | None:
    """The image's MIME type from its first bytes, or None when it is not JPEG, PNG or WebP."""
    if data.startswith(_JPEG):
        return "image/jpeg"
    if data.startswith(_PNG):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def open_image(data: bytes) -> Image.Image:
    """Decode an image fully (a truncated file fails here, not later); ValueError if unreadable."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError("The image could not be decoded.") from exc
    return image


@dataclass(frozen=True)
class VideoProbe:
    seconds: float
    width: int
    height: int


def probe_video(data: bytes) -> VideoProbe:
    """Duration and frame size of a real, decodable video; ValueError for anything else."""
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = next(iter(container.streams.video), None)
            if stream is None:
                raise ValueError("The file has no video stream.")
            # Decoding one frame proves the stream is real, not just a plausible header.
            next(container.decode(stream))
            if container.duration:
                seconds = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            else:
                raise ValueError("The video's duration is unknown.")
            return VideoProbe(
                seconds=seconds,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
            )
    except (av.FFmpegError, StopIteration) as exc:
        raise ValueError("The file is not a readable video.") from exc


@dataclass(frozen=True)
class AudioProbe:
    seconds: float
    samples: np.ndarray  # mono float32 at `rate`
    rate: int


def probe_audio(data: bytes, *, rate: int = 16000, max_seconds: float = 600.0) -> AudioProbe:
    """A real, decodable recording, decoded whole to mono at `rate` (at most `max_seconds`
    of it); ValueError for anything that is not audio."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts: list[np.ndarray] = []
    size = 0
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = next(iter(container.streams.audio), None)
            if stream is None:
                raise ValueError("The file has no audio stream.")
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    parts.append(converted.to_ndarray().reshape(-1))
                    size += converted.samples
                if size > max_seconds * rate:
                    break
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise ValueError("The file is not readable audio.") from exc
    if not size:
        raise ValueError("The file has no sound in it.")
    samples = np.concatenate(parts)
    return AudioProbe(seconds=size / rate, samples=samples, rate=rate)


def fetch(url: str, *, timeout_seconds: float = 10.0, max_bytes: int = 50 * 1024 * 1024) -> bytes:
    """GET an http(s) URL within a total time and size budget; ValueError on any failure.

    Relays fetch what clients point them at; the caps keep a slow or huge file
    from tying up an emulator thread.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("Only http and https URLs can be fetched.")
    deadline = time.monotonic() + timeout_seconds
    chunks: list[bytes] = []
    size = 0
    try:
        # The scheme is checked above, so urlopen cannot reach file:// or ftp:// here.
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:  # noqa: S310
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ValueError("The file is too large.")
            while chunk := response.read(256 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError("The file is too large.")
                if time.monotonic() > deadline:
                    raise ValueError("Fetching the file took too long.")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise ValueError(f"Fetching the file failed with HTTP {exc.code}.") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise ValueError("The file could not be fetched.") from exc
    return b"".join(chunks)


def decode_data_url(url: str) -> bytes:
    """The payload of a `data:<type>;base64,<data>` URL; ValueError if malformed."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise ValueError("Only base64 data URLs are supported.")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise ValueError("The data URL is not valid base64.") from exc
