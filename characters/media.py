"""Checks reference images and clips by their content, and makes their thumbnails."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

import av
from django.conf import settings
from PIL import Image, ImageOps

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
            return _inspect_image(image, name, size)
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


def _inspect_image(image: Image.Image, name: str, size: int) -> InspectedMedia:
    content_type = IMAGE_CONTENT_TYPES[image.format or ""]
    _check_bytes(name, size, settings.REFERENCE_IMAGE_MAX_BYTES, "images")
    # Before load(): the header's size is all we need to refuse a decompression bomb.
    width, height = image.size
    if width * height > settings.REFERENCE_IMAGE_MAX_PIXELS:
        raise MediaRejected(
            f"{name} is {width}{TIMES}{height} pixels; the limit is {_megapixels()} megapixels."
        )
    try:
        image.load()
        upright = ImageOps.exif_transpose(image, in_place=True) or image
        thumbnail = _thumbnail(upright)
    except Exception as exc:  # decoders raise many types on hostile bytes; all mean unreadable
        raise MediaRejected(DAMAGED_IMAGE.format(name=name)) from exc
    return InspectedMedia(
        kind="image",
        content_type=content_type,
        width=image.width,
        height=image.height,
        duration_seconds=None,
        codec="",
        dominant_color=_dominant_color(thumbnail),
        thumbnail=_jpeg(thumbnail),
    )


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
