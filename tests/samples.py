"""Small media files made in memory, for tests that upload references."""

from __future__ import annotations

import io
import struct
import zlib

import av
from PIL import Image

RGB = tuple[int, int, int]


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (64, 48), color: RGB = (200, 40, 40)
) -> bytes:
    """A plain one-colour image in the given Pillow format (PNG, JPEG, WEBP, ...)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def clip_bytes(
    seconds: float = 1.0,
    size: tuple[int, int] = (64, 48),
    fps: int = 12,
    codec: str = "libx264",
    container: str = "mp4",
) -> bytes:
    """A real encoded video, fading from dark to red, e.g. H.264 in MP4 or VP9 in WebM.

    Sizes must be even: the yuv420p pixel format halves the colour planes.
    """
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"clip sizes must be even, not {width}x{height}")
    frames = max(1, round(seconds * fps))
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            shade = 40 + (160 * index) // frames
            picture = Image.new("RGB", size, (shade, 40, 40))
            output.mux(stream.encode(av.VideoFrame.from_image(picture)))
        output.mux(stream.encode())  # flush the encoder's delayed frames
    return buffer.getvalue()


def gif_bytes() -> bytes:
    """A small GIF, a format references refuse."""
    buffer = io.BytesIO()
    Image.new("P", (16, 16), 1).save(buffer, "GIF")
    return buffer.getvalue()


def bomb_png_bytes(size: tuple[int, int] = (20_000, 20_000)) -> bytes:
    """A valid black 1-bit PNG whose pixels would fill far more memory than its bytes.

    Written by hand: Pillow would need the whole picture in memory to save it.
    20000x20000 takes about 50 KB and a fifth of a second to make.
    """
    width, height = size
    row = bytes(1 + (width + 7) // 8)  # filter byte "none", then all-black bits
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def detailed_image_bytes(fmt: str = "PNG", size: tuple[int, int] = (640, 480), **options) -> bytes:
    """An RGB image with detail all over (a Mandelbrot set and two gradients), so its
    encoded pixels run to the end of the file and cutting it short damages them."""
    gradient = Image.linear_gradient("L")
    bands = (
        Image.effect_mandelbrot(size, (-2.0, -1.2, 0.8, 1.2), 40),
        gradient.resize(size),
        gradient.transpose(Image.Transpose.ROTATE_90).resize(size),
    )
    buffer = io.BytesIO()
    Image.merge("RGB", bands).save(buffer, fmt, **options)
    return buffer.getvalue()


def flat_rgba_png_bytes(size: tuple[int, int] = (6300, 6300)) -> bytes:
    """A transparent RGBA PNG with an opaque red band across its middle third.

    Written by hand, a row at a time: 6300x6300 takes about 150 KB and under a second,
    and never holds the 160 MB picture that Pillow would need to save it.
    """
    width, height = size
    clear = b"\x00" + bytes(4 * width)
    band = b"\x00" + bytes((200, 40, 40, 255)) * width
    rows = (band if height // 3 <= y < 2 * height // 3 else clear for y in range(height))
    compressor = zlib.compressobj(6)
    pixels = b"".join(compressor.compress(row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )
