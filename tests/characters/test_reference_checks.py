"""Reference files are judged by their content, capped by size, and given thumbnails."""

from __future__ import annotations

import contextlib
import io
import struct

import av
import pytest
import pyvips
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test import RequestFactory
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from PIL import ExifTags, Image, ImageFile

from characters.reference_checks import InspectedMedia, MediaRejected, inspect_upload
from characters.uploads import CappedUploadHandler, rejected_upload_messages
from tests.samples import (
    bomb_png_bytes,
    clip_bytes,
    detailed_image_bytes,
    gif_bytes,
    image_bytes,
)

BLUE = (20, 40, 220)
RED = (200, 40, 40)
# Large enough that every format is decoded reduced (JPEG at 1/2, PNG and WebP halved).
LARGE = (2000, 1500)


def inspect(data: bytes, name: str) -> InspectedMedia:
    return inspect_upload(io.BytesIO(data), name=name)


def rejection(data: bytes, name: str) -> str:
    with pytest.raises(MediaRejected) as caught:
        inspect(data, name)
    return caught.value.message


def thumbnail_of(media: InspectedMedia) -> Image.Image:
    thumbnail = Image.open(io.BytesIO(media.thumbnail))
    thumbnail.load()
    return thumbnail


def marked_picture(size: tuple[int, int]) -> Image.Image:
    """Red, with a blue top-left quarter, so turning it shows."""
    picture = Image.new("RGB", size, RED)
    picture.paste(BLUE, (0, 0, size[0] // 2, size[1] // 2))
    return picture


def is_blue(pixel: tuple[int, ...]) -> bool:
    red, _green, blue = pixel[:3]
    return blue > 150 and red < 100


def encoded(picture: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()


def damaged_message(name: str) -> str:
    return f"{name} looks like an image but could not be read; it may be damaged or cut short."


# --- Images ---------------------------------------------------------------------------------


def test_it_accepts_a_png_reference_image():
    media = inspect(image_bytes("PNG", size=(64, 48), color=(200, 40, 40)), "front.png")

    assert media.kind == "image"
    assert media.content_type == "image/png"
    assert (media.width, media.height) == (64, 48)
    assert media.duration_seconds is None
    assert media.codec == ""
    assert media.dominant_color == "#c82828"
    assert media.thumbnail_content_type == "image/jpeg"


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_it_accepts_jpeg_and_webp_reference_images(fmt, content_type):
    media = inspect(image_bytes(fmt), "front.bin")

    assert (media.kind, media.content_type) == ("image", content_type)


def test_it_judges_by_content_not_by_the_file_name():
    media = inspect(image_bytes("JPEG"), "front.png")

    assert media.content_type == "image/jpeg"


def test_it_rejects_a_gif_naming_the_file():
    assert rejection(gif_bytes(), "photo.gif") == "photo.gif is a GIF image; use JPEG, PNG or WebP."


def test_it_rejects_a_text_file_renamed_to_png():
    assert rejection(b"shopping list: eggs, milk\n" * 10, "notes.png") == (
        "notes.png is neither an image (JPEG, PNG, WebP) nor a video clip (MP4, MOV, WebM)."
    )


def test_it_rejects_an_empty_file():
    assert rejection(b"", "blank.png") == "blank.png is empty."


def test_it_rejects_a_png_that_is_cut_short():
    data = image_bytes("PNG", size=(300, 300))

    assert "front.png looks like an image but could not be read" in rejection(
        data[: len(data) // 2], "front.png"
    )


def test_it_rejects_a_decompression_bomb_without_decoding_it(monkeypatch):
    loads = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: loads.append(image))

    message = rejection(bomb_png_bytes((20_000, 20_000)), "bomb.png")

    assert message.startswith("bomb.png has too many pixels")
    assert loads == []


def test_it_rejects_an_image_over_the_pixel_cap_naming_its_size(monkeypatch):
    loads = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: loads.append(image))

    message = rejection(bomb_png_bytes((8000, 6000)), "huge.png")

    assert (
        message == "huge.png is 8000\N{MULTIPLICATION SIGN}6000 pixels; the limit is 40 megapixels."
    )
    assert loads == []


def test_it_rejects_an_image_over_the_byte_cap(settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 100
    data = image_bytes("PNG", size=(64, 48))
    assert len(data) > 100

    assert rejection(data, "big.png") == (
        f"big.png is {len(data)} bytes; images may be at most 100 bytes."
    )


def test_it_applies_exif_orientation_to_thumbnails():
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways; shown turned 90° clockwise
    buffer = io.BytesIO()
    marked_picture((64, 48)).save(buffer, "JPEG", exif=exif)

    media = inspect(buffer.getvalue(), "portrait.jpg")
    thumbnail = thumbnail_of(media)

    assert (media.width, media.height) == (48, 64)
    assert thumbnail.size == (48, 64)
    assert is_blue(thumbnail.getpixel((40, 4)))  # the blue corner is now top right


# --- Large images, decoded reduced ----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_it_turns_a_large_image_upright_by_its_exif_orientation(fmt):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways; shown turned 90° clockwise

    media = inspect(encoded(marked_picture(LARGE), fmt, exif=exif), "portrait.bin")
    thumbnail = thumbnail_of(media)

    assert (media.width, media.height) == (1500, 2000)
    assert thumbnail.size == (360, 480)
    assert is_blue(thumbnail.getpixel((300, 20)))  # the blue corner is now top right
    assert not is_blue(thumbnail.getpixel((60, 20)))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_large_images_dominant_color_is_the_mean_of_the_picture(fmt):
    """Three quarters red and one quarter blue average to (155, 40, 85), #9b2855.

    Decoding the whole picture at full size gave exactly that for PNG and JPEG, and
    #9a2855 for this lossy WebP; libwebp's scaled decode gives #9a2854.
    """
    media = inspect(encoded(marked_picture(LARGE), fmt), "front.bin")
    color = bytes.fromhex(media.dominant_color.removeprefix("#"))

    assert all(abs(got - mean) <= 1 for got, mean in zip(color, (155, 40, 85), strict=True))
    if fmt != "WEBP":
        assert media.dominant_color == "#9b2855"


def half_clear(size: tuple[int, int]) -> Image.Image:
    """The marked picture with its right half transparent."""
    picture = marked_picture(size).convert("RGBA")
    picture.paste((0, 0, 0, 0), (size[0] // 2, 0, size[0], size[1]))
    return picture


def blue_and_clear_paletted(size: tuple[int, int]) -> bytes:
    """Palette index 0 transparent (a tRNS chunk), the left half blue."""
    picture = Image.new("P", size, 0)
    picture.putpalette([0, 0, 0, *BLUE])
    picture.paste(1, (0, 0, size[0] // 2, size[1]))
    return encoded(picture, "PNG", transparency=0)


CUTOUTS = {
    "rgba-png": (lambda: encoded(half_clear(LARGE), "PNG"), "#b693c0"),
    "rgba-webp": (lambda: encoded(half_clear(LARGE), "WEBP", lossless=True, method=0), "#b693c0"),
    "paletted-png": (lambda: blue_and_clear_paletted(LARGE), "#8993ed"),
    "clear-png": (lambda: encoded(Image.new("RGBA", LARGE, (0, 0, 0, 0)), "PNG"), "#ffffff"),
    "clear-webp": (lambda: encoded(Image.new("RGBA", LARGE, (0, 0, 0, 0)), "WEBP"), "#ffffff"),
}


@pytest.mark.parametrize("cutout", CUTOUTS)
def test_transparent_areas_of_a_large_image_count_as_white(cutout):
    """As the thumbnail shows them; the same colours as flattening at full size gave."""
    make, color = CUTOUTS[cutout]

    assert inspect(make(), "cutout.bin").dominant_color == color


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("PNG", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True, "method": 0}),
    ],
    ids=["jpeg", "progressive-jpeg", "png", "webp", "lossless-webp"],
)
def test_it_rejects_a_large_image_that_is_cut_short(fmt, options):
    """Decoding reduced still reads every byte of the picture."""
    data = detailed_image_bytes(fmt, LARGE, **options)

    assert rejection(data[: len(data) * 95 // 100], "front.bin") == damaged_message("front.bin")


def test_it_rejects_a_large_png_with_damaged_pixel_data():
    data = bytearray(detailed_image_bytes("PNG", LARGE))
    middle = len(data) * 2 // 3
    data[middle : middle + 64] = bytes(64)

    assert rejection(bytes(data), "front.bin") == damaged_message("front.bin")


def test_it_rejects_a_jpeg_that_is_cut_short():
    data = detailed_image_bytes("JPEG", (300, 300))

    assert rejection(data[: len(data) // 2], "front.jpg") == damaged_message("front.jpg")


def test_it_rejects_a_webp_over_the_pixel_cap_without_decoding_it(settings, monkeypatch):
    settings.REFERENCE_IMAGE_MAX_PIXELS = 1000
    decodes = []
    monkeypatch.setattr(pyvips.Image, "webpload_source", lambda *args, **kw: decodes.append(args))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decodes.append(image))

    message = rejection(image_bytes("WEBP", size=(64, 48)), "big.webp")

    assert (
        message == "big.webp is 64\N{MULTIPLICATION SIGN}48 pixels; the limit is 0.001 megapixels."
    )
    assert decodes == []


# --- Clips ----------------------------------------------------------------------------------


def test_it_probes_an_mp4_clip_for_duration_codec_and_size():
    media = inspect(clip_bytes(seconds=1.0, size=(64, 48)), "walk.mp4")

    assert media.kind == "clip"
    assert media.content_type == "video/mp4"
    assert media.codec == "h264"
    assert (media.width, media.height) == (64, 48)
    assert media.duration_seconds == pytest.approx(1.0, abs=0.1)
    assert media.dominant_color.startswith("#")
    assert len(media.dominant_color) == 7
    assert thumbnail_of(media).format == "JPEG"


def test_it_probes_a_webm_clip():
    media = inspect(clip_bytes(codec="libvpx-vp9", container="webm"), "walk.webm")

    assert (media.content_type, media.codec) == ("video/webm", "vp9")
    assert media.duration_seconds == pytest.approx(1.0, abs=0.1)


def test_it_labels_a_quicktime_clip_as_quicktime():
    media = inspect(clip_bytes(container="mov"), "walk.mov")

    assert (media.content_type, media.codec) == ("video/quicktime", "h264")


def test_it_rejects_a_clip_longer_than_the_cap(settings):
    settings.REFERENCE_CLIP_MAX_SECONDS = 1

    assert rejection(clip_bytes(seconds=2.0), "clip.mp4") == (
        "clip.mp4 lasts 2.0 s; reference clips may last at most 1 s."
    )


def test_it_rejects_a_clip_wider_than_the_cap(settings):
    settings.REFERENCE_CLIP_MAX_SIDE = 32

    assert rejection(clip_bytes(seconds=0.25), "wide.mp4") == (
        "wide.mp4 is 64\N{MULTIPLICATION SIGN}48 pixels; "
        "clips may be at most 32 pixels on each side."
    )


def test_it_rejects_a_clip_in_a_codec_it_does_not_accept():
    assert rejection(clip_bytes(codec="mpeg4"), "old.mp4") == (
        "old.mp4 uses the mpeg4 video codec; use H.264, HEVC, VP8, VP9 or AV1."
    )


def test_it_rejects_a_clip_over_the_byte_cap(settings):
    settings.REFERENCE_CLIP_MAX_BYTES = 1024
    data = clip_bytes(seconds=2.0, size=(320, 240))
    assert len(data) > 1024

    assert rejection(data, "big.mp4").endswith("clips may be at most 1.0 KB.")


def test_it_rejects_a_clip_that_is_cut_short():
    data = clip_bytes()

    assert "walk.mp4 looks like a video clip but could not be read" in rejection(
        data[:200], "walk.mp4"
    )


def test_it_turns_a_rotated_phone_clip_upright():
    media = inspect(rotated_90_clockwise(marked_clip((64, 48))), "portrait.mp4")
    thumbnail = thumbnail_of(media)

    assert (media.width, media.height) == (48, 64)
    assert thumbnail.size == (48, 64)
    assert is_blue(thumbnail.getpixel((40, 4)))


def marked_clip(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=12)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(3):
            output.mux(stream.encode(av.VideoFrame.from_image(marked_picture(size))))
        output.mux(stream.encode())
    return buffer.getvalue()


def rotated_90_clockwise(mp4: bytes) -> bytes:
    """Write the display matrix a phone writes for portrait video into the track header."""
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    turned = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    start = mp4.index(identity, mp4.index(b"tkhd"))
    return mp4[:start] + turned + mp4[start + len(identity) :]


# --- Thumbnails and the file position -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (image_bytes("PNG", size=(1200, 600)), "wide.png"),
        (image_bytes("PNG", size=(300, 900)), "tall.png"),
        (image_bytes("PNG", size=(100, 80)), "small.png"),
        (image_bytes("PNG", size=(4000, 1000)), "wide-shrunk.png"),
        (image_bytes("PNG", size=(1000, 4000)), "tall-shrunk.png"),
        (image_bytes("JPEG", size=(4000, 3000)), "drafted.jpg"),
        (image_bytes("WEBP", size=(3000, 1000)), "scaled.webp"),
        (clip_bytes(seconds=0.25, size=(640, 360)), "wide.mp4"),
    ],
)
def test_thumbnails_are_jpegs_within_480_pixels(data, name):
    media = inspect(data, name)
    thumbnail = thumbnail_of(media)

    assert thumbnail.format == "JPEG"
    assert max(thumbnail.size) <= 480
    assert max(thumbnail.size) == min(480, max(media.width, media.height))


def test_a_transparent_png_gets_a_white_background_in_its_thumbnail():
    buffer = io.BytesIO()
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(buffer, "PNG")

    media = inspect(buffer.getvalue(), "cutout.png")

    assert media.dominant_color == "#ffffff"


@pytest.mark.parametrize(
    ("data", "name"),
    [(image_bytes(), "front.png"), (clip_bytes(seconds=0.25), "walk.mp4"), (gif_bytes(), "x.gif")],
)
def test_it_leaves_the_file_at_the_start_for_saving(data, name):
    fileobj = io.BytesIO(data)
    fileobj.seek(10)

    with contextlib.suppress(MediaRejected):
        inspect_upload(fileobj, name=name)

    assert fileobj.tell() == 0
    assert not fileobj.closed


# --- The streaming upload cap ---------------------------------------------------------------


def parse_multipart(request, data: dict, chunk_size: int | None = None):
    body = encode_multipart(BOUNDARY, data)
    meta = {"CONTENT_TYPE": MULTIPART_CONTENT, "CONTENT_LENGTH": str(len(body))}
    capped = CappedUploadHandler(request)
    if chunk_size:
        capped.chunk_size = chunk_size  # the parser reads in the smallest handler chunk
    handlers = [capped, MemoryFileUploadHandler(request)]
    return MultiPartParser(meta, io.BytesIO(body), handlers).parse()


@pytest.fixture
def small_caps(settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 1000
    settings.REFERENCE_CLIP_MAX_BYTES = 2000  # the larger cap applies while streaming


@pytest.mark.usefixtures("small_caps")
@pytest.mark.parametrize("chunk_size", [None, 512])
def test_the_upload_handler_drops_a_file_over_the_cap_and_keeps_the_rest(chunk_size):
    request = RequestFactory().post("/")
    data = {
        "label": "front",
        "big": SimpleUploadedFile("big.mp4", b"x" * 5000),
        "small": SimpleUploadedFile("small.png", b"y" * 2000),
    }

    post, files = parse_multipart(request, data, chunk_size)

    assert post["label"] == "front"
    assert "big" not in files
    assert files["small"].read() == b"y" * 2000
    assert request.rejected_uploads == [
        ("big", "big.mp4", "big.mp4 is larger than 2.0 KB, the most a reference file may be.")
    ]


@pytest.mark.usefixtures("small_caps")
def test_the_settings_send_uploads_through_the_capped_handler():
    request = RequestFactory().post(
        "/",
        {
            "label": "front",
            "file": SimpleUploadedFile("big.mp4", b"x" * 5000),
            "other": SimpleUploadedFile("ok.png", b"y" * 10),
        },
    )

    assert "file" not in request.FILES
    assert "other" in request.FILES
    assert request.POST["label"] == "front"
    assert rejected_upload_messages(request, "file") == [
        "big.mp4 is larger than 2.0 KB, the most a reference file may be."
    ]
    assert rejected_upload_messages(request, "other") == []
    assert len(rejected_upload_messages(request)) == 1


def test_a_request_nothing_was_rejected_from_has_no_messages():
    assert rejected_upload_messages(RequestFactory().get("/")) == []
