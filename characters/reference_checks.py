"""Checks reference images and clips by their content, and makes their thumbnails.

An image is refused by its header (format, byte cap, pixel cap) before any pixel is
decoded. One that passes is decoded once, in full (a damaged or cut-short file is
refused), but only as large as its thumbnail needs wherever the format allows it:

* JPEG: decoded at 1/2, 1/4 or 1/8 of its size by libjpeg's DCT scaling (`draft`).
* WebP: decoded scaled by libwebp itself, through libvips. Pillow's WebP decoder
  holds four full-size copies (about 16 bytes a pixel: 610 MB for 40 Mpx).
* PNG: decoded at full size, then flattened onto white and shrunk by an integer
  factor a band of rows at a time; the full-size picture is dropped before the
  thumbnail, EXIF turning and dominant colour, which work on the small one.

Memory bound: the peak extra memory of one check is about the one full-size decode
it needs, at most about 4 bytes a pixel of the image (160 MB at the 40 Mpx cap)
for a PNG or lossless WebP, and up to 6 for a progressive JPEG, whose decoder keeps
every DCT coefficient until the last scan (2 bytes each; 3 bytes a pixel for the
usual 4:2:0). A baseline JPEG or a lossy WebP costs a few MB, the thumbnail and
its bands a few more, and a WebP's bytes are held twice (30 MB at the 15 MB byte
cap; PNG and JPEG are read in small chunks). So one check peaks at about 6 bytes a
pixel of the largest image allowed, about 270 MB at 40 Mpx. Only one decode
estimated above 32 MiB runs at a time in a process, so simultaneous uploads queue
for it instead of adding up, and its memory goes back to the system when it ends
(tests/characters/test_reference_checks_memory.py, benchmarks/reference_memory.py).
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import av
import pyvips
from django.conf import settings
from PIL import ExifTags, Image

THUMBNAIL_SIDE = 480
THUMBNAIL_CONTENT_TYPE = "image/jpeg"
TIMES = "\N{MULTIPLICATION SIGN}"

IMAGE_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
CLIP_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
# FFmpeg names a demuxer after every format it reads, so MP4 and MOV share one name,
# as do WebM and Matroska. PyAV reports that full name when FFmpeg guessed the format,
# but just the name asked for (e.g. "mov") when the caller chose it.
CLIP_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
_CLIP_FORMAT_NAMES = frozenset(",".join(CLIP_CONTAINERS).split(","))

NOT_MEDIA = "{name} is neither an image (JPEG, PNG, WebP) nor a video clip (MP4, MOV, WebM)."
DAMAGED_IMAGE = "{name} looks like an image but could not be read; it may be damaged or cut short."
DAMAGED_CLIP = (
    "{name} looks like a video clip but could not be read; it may be damaged or cut short."
)

_HEAD_BYTES = 16
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# Top-level atoms a QuickTime or MP4 file may open with (old QuickTime files lack "ftyp").
_QUICKTIME_ATOMS = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# Decodes stop shrinking at twice the thumbnail, so its Lanczos filter still has detail
# to work from (Pillow's own thumbnail() uses the same reducing gap).
_DECODE_SIDE = 2 * THUMBNAIL_SIDE
# Bands are flattened and shrunk in pieces of about this size.
_BAND_BYTES = 2 * 1024 * 1024
# Decodes estimated above this run one at a time in a process (see the docstring).
_LARGE_DECODE_BYTES = 32 * 1024 * 1024
_LARGE_DECODES = threading.Lock()
# Bytes a pixel in Pillow's memory; every other mode takes 4 (RGB is stored as RGBX).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIDEWAYS_ORIENTATIONS = frozenset({5, 6, 7, 8})

# libvips keeps recent operations and their pixels for reuse; a check never repeats,
# so keeping them would only hold each upload's memory past its request.
pyvips.cache_set_max(0)
# libvips logs each thread pool it finishes (INFO) and each tile of a damaged file
# (WARNING, 16 lines for one cut-short WebP); the refusal already says what matters.
logging.getLogger("pyvips").setLevel(logging.ERROR)
# Pillow allocates pixels in 16 MiB blocks. Once glibc has unmapped one block that size
# it serves the next from the thread's malloc arena, which keeps them after they are
# freed: a web thread that had checked a 40 Mpx PNG went on holding 150 MB. Blocks of
# 256 MiB hold any decode under the pixel cap in one piece, which glibc always maps and
# unmaps (its threshold never grows past 32 MiB). The environment variable still wins.
_PIXEL_BLOCK_BYTES = 256 * 1024 * 1024
if "PILLOW_BLOCK_SIZE" not in os.environ:
    Image.core.set_block_size(_PIXEL_BLOCK_BYTES)


class MediaRejected(ValueError):
    """A reference file we will not keep, with a message meant for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class InspectedMedia:
    kind: str  # "image" or "clip", matching ReferenceAsset.Kind
    content_type: str
    width: int  # as displayed: after EXIF orientation or a clip's rotation
    height: int
    duration_seconds: float | None
    codec: str
    dominant_color: str
    thumbnail: bytes
    thumbnail_content_type: str = THUMBNAIL_CONTENT_TYPE


def inspect_upload(fileobj: IO[bytes], *, name: str) -> InspectedMedia:
    """Say what an uploaded file really is, or raise MediaRejected with a plain reason.

    The file name and declared type are ignored: both are whatever the sender chose.
    The file is left at position 0 so the caller can save it.
    """
    try:
        return _inspect(fileobj, name)
    finally:
        fileobj.seek(0)


def format_bytes(size: int) -> str:
    """A byte count in words people read, e.g. "120.0 MB"."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


def _inspect(fileobj: IO[bytes], name: str) -> InspectedMedia:
    size = _measure(fileobj)
    if size == 0:
        raise MediaRejected(f"{name} is empty.")
    image = _open_image(fileobj, name)
    if image is not None:
        with image:
            return _inspect_image(image, fileobj, name, size)
    fileobj.seek(0)
    head = fileobj.read(_HEAD_BYTES)
    fileobj.seek(0)
    refused = _refused_format(head)
    if refused:
        raise MediaRejected(f"{name} is {refused}; use JPEG, PNG or WebP.")
    container = _clip_container(head)
    if container is None:
        raise MediaRejected(NOT_MEDIA.format(name=name))
    demuxer, content_type = container
    return _inspect_clip(fileobj, name, size, demuxer, content_type)


def _measure(fileobj: IO[bytes]) -> int:
    # The upload handler caps streaming already; measuring again costs nothing and
    # covers files that reach us some other way.
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    return size


def _check_bytes(name: str, size: int, cap: int, kinds: str) -> None:
    if size > cap:
        raise MediaRejected(
            f"{name} is {format_bytes(size)}; {kinds} may be at most {format_bytes(cap)}."
        )


# --- Images -------------------------------------------------------------------------------


def _open_image(fileobj: IO[bytes], name: str) -> Image.Image | None:
    """Read only the image header; None when the content is not JPEG, PNG or WebP."""
    try:
        return Image.open(fileobj, formats=list(IMAGE_CONTENT_TYPES))
    except Image.UnidentifiedImageError:
        return None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fires inside open() before we can see the size. Its warning
        # only reaches here when warnings are errors (as under pytest); otherwise Pillow
        # just logs it and our own pixel cap below decides.
        raise MediaRejected(
            f"{name} has too many pixels to open safely; the limit is {_megapixels()} megapixels."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaRejected(DAMAGED_IMAGE.format(name=name)) from exc


def _inspect_image(image: Image.Image, fileobj: IO[bytes], name: str, size: int) -> InspectedMedia:
    content_type = IMAGE_CONTENT_TYPES[image.format or ""]
    _check_bytes(name, size, settings.REFERENCE_IMAGE_MAX_BYTES, "images")
    # Before any decoding: the header's size is all we need to refuse a decompression bomb.
    width, height = image.size
    if width * height > settings.REFERENCE_IMAGE_MAX_PIXELS:
        raise MediaRejected(
            f"{name} is {width}{TIMES}{height} pixels; the limit is {_megapixels()} megapixels."
        )
    try:
        picture, orientation = _decode_reduced(image, fileobj)
        # Turned after shrinking: the box is square, and a thumbnail is cheap to turn.
        picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
        thumbnail = _upright(picture, orientation)
    except Exception as exc:  # decoders raise many types on hostile bytes; all mean unreadable
        raise MediaRejected(DAMAGED_IMAGE.format(name=name)) from exc
    if orientation in _SIDEWAYS_ORIENTATIONS:
        width, height = height, width
    return InspectedMedia(
        kind="image",
        content_type=content_type,
        width=width,
        height=height,
        duration_seconds=None,
        codec="",
        dominant_color=_dominant_color(thumbnail),
        thumbnail=_jpeg(thumbnail),
    )


def _decode_reduced(image: Image.Image, fileobj: IO[bytes]) -> tuple[Image.Image, int]:
    """The whole image decoded, as an RGB picture at least _DECODE_SIDE on its longer side
    (or as it is when smaller), and its EXIF orientation.

    Every byte of pixel data is decoded, so a damaged file still raises here; only the
    picture kept is small. The full-size pixels, where a format needs them, are gone
    before this returns.
    """
    pixels = image.width * image.height
    factor = _shrink_factor(image.size)
    if image.format == "JPEG" and factor > 1:
        # Never smaller than the target: draft picks the largest DCT scale that fits.
        image.draft("RGB", (max(1, image.width // factor), max(1, image.height // factor)))
    with _decode_slot(_decode_bytes(image, fileobj, pixels)):
        if image.format == "WEBP":
            return _webp_reduced(fileobj, factor), _orientation(image)
        image.load()
        orientation = _orientation(image)  # after load(): PNG may keep EXIF after the pixels
        try:
            return _shrink(image, _shrink_factor(image.size)), orientation
        finally:
            # Only the base class's close(): it drops the decoded pixels, while
            # ImageFile.close() would also close the caller's upload.
            Image.Image.close(image)


def _shrink_factor(size: tuple[int, int]) -> int:
    return max(1, max(size) // _DECODE_SIDE)


def _decode_bytes(image: Image.Image, fileobj: IO[bytes], pixels: int) -> int:
    """About the most memory decoding `image` (already drafted) takes at once."""
    if image.format == "JPEG":
        if image.info.get("progressive"):
            # libjpeg holds all of a progressive file's DCT coefficients, 2 bytes each,
            # whatever the draft; components sampled at half size hold a quarter.
            h_max = max(h for _id, h, _v, _q in image.layer)
            v_max = max(v for _id, _h, v, _q in image.layer)
            samples = sum(h * v for _id, h, v, _q in image.layer) / (h_max * v_max)
            return int(2 * samples * pixels)
        return 4 * image.width * image.height
    if image.format == "WEBP":
        fileobj.seek(12)
        simple_lossy = fileobj.read(4) == b"VP8 "
        # Lossy pictures are decoded a few rows at a time; lossless ones (and alpha
        # planes, in the extended format) at full size.
        return 4 * _DECODE_SIDE**2 if simple_lossy else 4 * pixels
    return _PIXEL_BYTES.get(image.mode, 4) * pixels


@contextmanager
def _decode_slot(decode_bytes: int) -> Iterator[None]:
    """Let only one large decode run at a time in this process; small ones never wait."""
    if decode_bytes < _LARGE_DECODE_BYTES:
        yield
        return
    with _LARGE_DECODES:
        yield


def _webp_reduced(fileobj: IO[bytes], factor: int) -> Image.Image:
    fileobj.seek(0)
    # A source over our bytes: webpload_buffer() would copy them once more.
    source = pyvips.Source.new_from_memory(fileobj.read())
    # fail_on="error": libvips would otherwise return what it could read of a damaged
    # file. write_to_memory() runs the whole decode.
    decoded = pyvips.Image.webpload_source(source, scale=1 / factor, fail_on="error")
    mode = {3: "RGB", 4: "RGBA"}[decoded.bands]
    picture = Image.frombytes(mode, (decoded.width, decoded.height), decoded.write_to_memory())
    return _flatten(picture)


def _shrink(picture: Image.Image, factor: int) -> Image.Image:
    """An RGB copy `factor` times smaller, transparent areas white, made a band of rows
    at a time so that no second full-size copy ever exists (flattening a whole RGBA
    picture made three). Averaging after flattening gives what flattening the whole
    picture first would.
    """
    if factor == 1:
        return _flatten(picture)
    width, height = picture.size
    band_rows = factor * max(1, _BAND_BYTES // (4 * width * factor))
    shrunk = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for top in range(0, height, band_rows):
        band = picture.crop((0, top, width, min(height, top + band_rows)))
        shrunk.paste(_flatten(band).reduce(factor), (0, top // factor))
    return shrunk


def _orientation(image: Image.Image) -> int:
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return orientation if orientation in _ORIENTATIONS else 1


def _upright(picture: Image.Image, orientation: int) -> Image.Image:
    """The picture turned as its EXIF orientation says it is shown."""
    method = _ORIENTATIONS.get(orientation)
    return picture.transpose(method) if method is not None else picture


def _megapixels() -> str:
    return f"{settings.REFERENCE_IMAGE_MAX_PIXELS / 1_000_000:g}"


def _refused_format(head: bytes) -> str | None:
    """Name common formats we refuse, so the message can say what the file is."""
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "a HEIC image"
    if head[4:8] == b"ftyp" and head[8:12] in _AVIF_BRANDS:
        return "an AVIF image"
    return None


# --- Clips --------------------------------------------------------------------------------


def _clip_container(head: bytes) -> tuple[str, str] | None:
    """The FFmpeg demuxer and content type for an MP4/MOV or WebM/Matroska header."""
    if head.startswith(_EBML_MAGIC):
        return "matroska", "video/webm"
    if head[4:8] in _QUICKTIME_ATOMS:
        quicktime = head[4:8] != b"ftyp" or head[8:12] == b"qt  "
        return "mov", "video/quicktime" if quicktime else "video/mp4"
    return None


def _inspect_clip(
    fileobj: IO[bytes], name: str, size: int, demuxer: str, content_type: str
) -> InspectedMedia:
    _check_bytes(name, size, settings.REFERENCE_CLIP_MAX_BYTES, "clips")
    try:
        # Naming the demuxer stops FFmpeg from probing its way into formats that
        # fetch other files or URLs (playlists, concat lists).
        with av.open(fileobj, mode="r", format=demuxer) as container:
            return _probe_clip(container, name, content_type)
    except MediaRejected:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise MediaRejected(DAMAGED_CLIP.format(name=name)) from exc


def _probe_clip(
    container: av.container.InputContainer, name: str, content_type: str
) -> InspectedMedia:
    if not set(container.format.name.split(",")) <= _CLIP_FORMAT_NAMES:
        raise MediaRejected(NOT_MEDIA.format(name=name))
    if not container.streams.video:
        raise MediaRejected(f"{name} has no video in it.")
    stream = container.streams.video[0]
    # PyAV gives no codec context when this FFmpeg build has no decoder for the stream.
    codec = stream.codec_context.codec.canonical_name if stream.codec_context else "unknown"
    if codec not in CLIP_CODECS:
        raise MediaRejected(
            f"{name} uses the {codec} video codec; use H.264, HEVC, VP8, VP9 or AV1."
        )
    duration = _clip_seconds(container, stream)
    if duration is None:
        raise MediaRejected(f"{name} does not say how long it lasts; try exporting it again.")
    max_seconds = settings.REFERENCE_CLIP_MAX_SECONDS
    # Compare what the message shows, so "30.0 s" is never refused for being over 30 s.
    if round(duration, 1) > max_seconds:
        raise MediaRejected(
            f"{name} lasts {duration:.1f} s; reference clips may last at most {max_seconds} s."
        )
    width, height = stream.codec_context.width, stream.codec_context.height
    max_side = settings.REFERENCE_CLIP_MAX_SIDE
    if max(width, height) > max_side:
        raise MediaRejected(
            f"{name} is {width}{TIMES}{height} pixels; "
            f"clips may be at most {max_side} pixels on each side."
        )
    frame = _first_frame(container, stream, name)
    picture = frame.to_image()
    if frame.rotation:
        # Phones store portrait video sideways plus a rotation; show it as it plays.
        picture = picture.rotate(frame.rotation, expand=True)
    thumbnail = _thumbnail(picture)
    return InspectedMedia(
        kind="clip",
        content_type=content_type,
        width=picture.width,
        height=picture.height,
        duration_seconds=round(duration, 3),
        codec=codec,
        dominant_color=_dominant_color(thumbnail),
        thumbnail=_jpeg(thumbnail),
    )


def _clip_seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if container.duration:
        seconds = container.duration / av.time_base
    elif stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    else:
        return None
    return seconds if seconds > 0 else None


def _first_frame(
    container: av.container.InputContainer, stream: av.VideoStream, name: str
) -> av.VideoFrame:
    for frame in container.decode(stream):
        return frame
    raise MediaRejected(f"{name} has no pictures we could read.")


# --- Thumbnails ---------------------------------------------------------------------------


def _thumbnail(picture: Image.Image) -> Image.Image:
    thumbnail = _flatten(picture)
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return thumbnail


def _flatten(picture: Image.Image) -> Image.Image:
    """An RGB copy; transparent areas become white, as they look on the page."""
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, "white")
        background.alpha_composite(rgba)
        return background.convert("RGB")
    return picture.convert("RGB")


def _jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def _dominant_color(picture: Image.Image) -> str:
    # A box filter down to one pixel is the mean colour of the picture.
    red, green, blue = picture.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    return f"#{red:02x}{green:02x}{blue:02x}"
