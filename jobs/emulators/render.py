"""Renders real, playable H.264 MP4 clips, thumbnails and spritesheets for the emulators."""

# No Django here on purpose: the emulators also run as plain Python processes.

from __future__ import annotations

import io
import math
import operator
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
from PIL import Image, ImageColor, ImageDraw, ImageFont, ImageStat

__all__ = [
    "CHUNK_SIZE",
    "CastMember",
    "RenderedVideo",
    "dominant_color",
    "first_frame_color",
    "mp4_with_padding",
    "padded_length",
    "render_video",
]

CHUNK_SIZE = 1 << 20  # 1 MiB, the size of every chunk `mp4_with_padding` yields (but the last)

MIN_SIDE = 16  # libx264 refuses smaller frames; nobody asks for them anyway
MAX_SIDE = 3840  # 4K: larger is a bug in the caller, not a request we should honour

SPRITE_COLUMNS = 5
SPRITE_ROWS = 2
SPRITE_TILE_WIDTH = 160

X264_OPTIONS = {"preset": "ultrafast", "crf": "28"}
WEBP_OPTIONS = {"quality": 80, "method": 2}

_NEUTRAL_TOP = (58, 64, 78)
_NEUTRAL_BOTTOM = (16, 18, 24)
_TEXT = (242, 242, 236)
_DIM_TEXT = (200, 204, 212)
_ELLIPSIS = "…"

# A top-level ISO-BMFF box whose size does not fit the 32-bit size field needs the 64-bit form.
# Module-level so a test can lower it and check the demuxer copes with the 64-bit header.
_MAX_32BIT_BOX = 2**32 - 1
# Image formats FFmpeg happily "demuxes" as a one-frame video: they are not videos to us.
_IMAGE_FORMATS = ("image2", "_pipe")


@dataclass(frozen=True)
class CastMember:
    name: str
    color: str  # "#rrggbb", taken from the character's reference images


@dataclass(frozen=True)
class RenderedVideo:
    video: bytes  # MP4 (H.264, yuv420p, moov atom at the front: "faststart"), plays in browsers
    thumbnail: bytes  # WebP image, the middle frame at full size
    spritesheet: bytes  # WebP image: 5 x 2 tiles, 160 px wide, sampled evenly across the clip
    seconds: float  # the real duration: frames / fps
    width: int  # the real size: odd sizes are rounded down to even
    height: int


def render_video(
    *,
    prompt: str,
    seconds: float,
    width: int,
    height: int,
    cast: Sequence[CastMember] = (),
    fps: int = 12,
    label: str = "",
) -> RenderedVideo:
    """Draw a clip of `seconds` (exact to the frame) and encode it as browser-friendly H.264."""
    if not seconds > 0 or math.isinf(seconds):  # also rejects NaN
        raise ValueError(f"seconds must be a positive number, not {seconds!r}")
    if fps < 1:
        raise ValueError(f"fps must be at least 1, not {fps!r}")
    width, height = int(width) - int(width) % 2, int(height) - int(height) % 2
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ValueError(f"a video is {MIN_SIDE}..{MAX_SIDE} px a side, not {width}x{height}")
    frame_count = max(1, round(seconds * fps))

    scene = _Scene(prompt=prompt, label=label, width=width, height=height, cast=cast, fps=fps)
    middle = frame_count // 2
    tiles = SPRITE_COLUMNS * SPRITE_ROWS
    tile_frames = [
        min(frame_count - 1, (k * 2 + 1) * frame_count // (tiles * 2)) for k in range(tiles)
    ]
    tile_size = (SPRITE_TILE_WIDTH, max(1, round(SPRITE_TILE_WIDTH * height / width)))
    kept: dict[int, Image.Image] = {}  # the frames the thumbnail and the spritesheet need

    buffer = io.BytesIO()

    def reopen_for_reading(url: str, flags: int, options: dict) -> io.BytesIO:
        # "+faststart" moves the moov atom to the front when the file is closed, by re-opening
        # the output *by name* to read it back. An in-memory output has no name, so hand the
        # muxer a snapshot: it flushes first and only reads data it wrote before the shift.
        return io.BytesIO(buffer.getvalue())

    with av.open(
        buffer,
        mode="w",
        format="mp4",
        options={"movflags": "+faststart"},
        io_open=reopen_for_reading,
    ) as container:
        stream = container.add_stream("libx264", rate=fps, options=dict(X264_OPTIONS))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = 2 * fps  # a keyframe every 2 s keeps scrubbing snappy
        for index in range(frame_count):
            image = scene.frame(index)
            if index == middle or index in tile_frames:
                kept[index] = image
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    sheet = Image.new("RGB", (tile_size[0] * SPRITE_COLUMNS, tile_size[1] * SPRITE_ROWS))
    for k, index in enumerate(tile_frames):
        row, column = divmod(k, SPRITE_COLUMNS)
        tile = kept[index].resize(tile_size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        sheet.paste(tile, (column * tile_size[0], row * tile_size[1]))

    return RenderedVideo(
        video=buffer.getvalue(),
        thumbnail=_webp(kept[middle]),
        spritesheet=_webp(sheet),
        seconds=frame_count / fps,
        width=width,
        height=height,
    )


def dominant_color(image: Image.Image) -> str:
    """The average colour of `image` as "#rrggbb", ignoring transparent pixels."""
    if image.mode in ("RGBA", "LA", "PA") or image.has_transparency_data:
        image = image.convert("RGBA")
    elif image.mode != "RGB":
        image = image.convert("RGB")
    factor = max(1, max(image.size) // 64)
    small = image.reduce(factor) if factor > 1 else image
    mask = None
    if small.mode == "RGBA":
        mask = small.getchannel("A").point(lambda alpha: 255 if alpha >= 128 else 0)
        if mask.getbbox() is None:  # fully transparent: fall back to every pixel
            mask = None
        small = small.convert("RGB")
    red, green, blue = (min(255, max(0, round(mean))) for mean in ImageStat.Stat(small, mask).mean)
    return f"#{red:02x}{green:02x}{blue:02x}"


def first_frame_color(video: bytes) -> str:
    """Decode the first frame of an MP4/WebM given as bytes and return its `dominant_color`."""
    if not video:
        raise ValueError("The file is empty, not a video.")
    try:
        with av.open(io.BytesIO(video), mode="r") as container:
            if any(marker in container.format.name for marker in _IMAGE_FORMATS):
                raise ValueError("The file is an image, not a video.")
            if not container.streams.video:
                raise ValueError("The file has no video stream.")
            for frame in container.decode(video=0):
                return dominant_color(frame.to_image())
    except av.FFmpegError as error:
        raise ValueError(f"The file is not a video we can read ({error.strerror}).") from error
    raise ValueError("The video has no frames.")


def padded_length(video: bytes, pad_bytes: int) -> int:
    """How many bytes `mp4_with_padding(video, pad_bytes)` yields in total."""
    pad_bytes = _check_pad(pad_bytes)
    if pad_bytes == 0:
        return len(video)
    return len(video) + len(_free_box_header(pad_bytes)) + pad_bytes


def mp4_with_padding(video: bytes, pad_bytes: int) -> Iterator[bytes]:
    """Yield `video` then a top-level `free` box holding `pad_bytes` zeros, CHUNK_SIZE at a time.

    The padding is never held in memory as a whole (pad_bytes may be gigabytes); players skip
    `free` boxes, so the result is still the same playable MP4. pad_bytes=0 yields `video` as is.
    """
    pad_bytes = _check_pad(pad_bytes)  # here, not in the generator, so bad input fails at once
    return _padded_chunks(video, pad_bytes)


# --- drawing -------------------------------------------------------------------------------------


class _Scene:
    """A pre-rendered backdrop (gradient, prompt, label) plus sprites moved over it per frame."""

    def __init__(
        self,
        *,
        prompt: str,
        label: str,
        width: int,
        height: int,
        cast: Sequence[CastMember],
        fps: int,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        unit = min(width, height)  # portrait frames would get giant text if we scaled by height
        self.pad = max(2, round(unit * 0.035))
        prompt_font = _font(unit / 16)
        self.small_font = _font(unit / 22)
        name_font = _font(unit / 18)
        colors = [_rgb(member.color) for member in cast]

        backdrop = _gradient(width, height, colors).convert("RGBA")
        bands = Image.new("RGBA", backdrop.size, (0, 0, 0, 0))
        bands_draw = ImageDraw.Draw(bands)
        prompt_lines = _wrap(
            " ".join(prompt.split()) or "(no prompt)",
            prompt_font,
            width - 2 * self.pad,
            max_lines=3 if height >= 240 else 2,
        )
        prompt_line_height = _line_height(prompt_font)
        top = 2 * self.pad + prompt_line_height * len(prompt_lines)
        small_line_height = _line_height(self.small_font)
        bottom = height - (2 * self.pad + small_line_height)
        bands_draw.rectangle((0, 0, width, top), fill=(0, 0, 0, 120))
        bands_draw.rectangle((0, bottom, width, height), fill=(0, 0, 0, 120))
        backdrop = Image.alpha_composite(backdrop, bands).convert("RGB")

        draw = ImageDraw.Draw(backdrop)
        for row, line in enumerate(prompt_lines):
            draw.text(
                (self.pad, self.pad + row * prompt_line_height), line, fill=_TEXT, font=prompt_font
            )
        self.timecode_width = math.ceil(self.small_font.getlength("00:00.00"))
        self.text_mid_y = (bottom + height) // 2
        if label:
            label_width = width - 3 * self.pad - self.timecode_width
            draw.text(
                (self.pad, self.text_mid_y),
                _truncate(" ".join(label.split()), self.small_font, label_width),
                fill=_DIM_TEXT,
                font=self.small_font,
                anchor="lm",
            )
        self.backdrop = backdrop

        # Figures: one sprite per cast member, sized to the stage between the two bands.
        stage = max(1, bottom - top)
        count = len(cast)
        figure_height = stage * 0.62 / max(1.0, count**0.35)
        figure_width = min(figure_height * 0.62, width / max(1, count) * 0.7)
        name_room = width / max(1, count) * 0.95
        self.sprites = [
            _figure(member.name, color, figure_width, figure_height, name_font, name_room, unit)
            for member, color in zip(cast, colors, strict=True)
        ]
        self.stage_floor = bottom - max(1, round(stage * 0.06))
        self.bob = figure_height * 0.07
        self.speed = width * 0.08  # px per second: a walk, visible even in a one-second clip

    def frame(self, index: int) -> Image.Image:
        seconds = index / self.fps
        image = self.backdrop.copy()
        count = len(self.sprites)
        for member, sprite in enumerate(self.sprites):
            sprite_width, sprite_height = sprite.size
            start = (member + 0.5) / count * self.width
            # All walk right in step (nobody overlaps), leave on the right, come back on the left.
            span = self.width + sprite_width
            centre = (start + self.speed * seconds + sprite_width / 2) % span
            centre -= sprite_width / 2
            hop = abs(math.sin(math.tau * 1.2 * seconds + member * 0.9)) * self.bob
            left = round(centre - sprite_width / 2)
            top = round(self.stage_floor - sprite_height - hop)
            image.paste(sprite, (left, top), sprite)
        draw = ImageDraw.Draw(image)
        draw.text(
            (self.width - self.pad, self.text_mid_y),
            _timecode(seconds),
            fill=_TEXT,
            font=self.small_font,
            anchor="rm",
        )
        return image


def _figure(
    name: str,
    color: tuple[int, int, int],
    figure_width: float,
    figure_height: float,
    font: ImageFont.FreeTypeFont,
    name_room: float,
    unit: int,
) -> Image.Image:
    """A character: a disc for the head on a rounded body, in their colour, their name below."""
    body_width = max(4, round(figure_width))
    radius = max(2, round(body_width * 0.34))
    body_height = max(4, round(figure_height - 2 * radius * 0.9))
    name = _truncate(" ".join(name.split()) or "?", font, max(10, name_room))
    stroke = max(1, round(font.size / 10))
    name_box = font.getbbox(name, stroke_width=stroke)
    name_width = name_box[2] - name_box[0]
    gap = max(1, round(unit * 0.01))
    outline = max(1, round(unit / 160))
    sprite_width = max(body_width, name_width) + 2 * outline + 2
    head_top = outline
    body_top = head_top + round(2 * radius * 0.9)
    name_top = body_top + body_height + gap
    sprite_height = name_top + _line_height(font) + stroke * 2
    sprite = Image.new("RGBA", (sprite_width, sprite_height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sprite)
    centre = sprite_width // 2
    edge = _mix(color, (0, 0, 0), 0.45)
    draw.rounded_rectangle(
        (centre - body_width // 2, body_top, centre + body_width // 2, body_top + body_height),
        radius=max(1, body_width // 3),
        fill=color,
        outline=edge,
        width=outline,
    )
    draw.ellipse(
        (centre - radius, head_top, centre + radius, head_top + 2 * radius),
        fill=_mix(color, (255, 255, 255), 0.12),
        outline=edge,
        width=outline,
    )
    eye = max(1, radius // 6)
    for side in (-1, 1):
        x, y = centre + side * radius // 2.5, head_top + radius * 0.85
        draw.ellipse((x - eye, y - eye, x + eye, y + eye), fill=(250, 250, 250))
    draw.text(
        (centre, name_top),
        name,
        fill=_TEXT,
        font=font,
        anchor="ma",
        stroke_width=stroke,
        stroke_fill=(0, 0, 0),
    )
    return sprite


def _gradient(width: int, height: int, colors: list[tuple[int, int, int]]) -> Image.Image:
    """Left to right through the cast's colours (or a neutral tone), darkening towards the floor."""
    tints = [_mix(_NEUTRAL_TOP, color, 0.55) for color in colors] or [_NEUTRAL_TOP]
    strip = Image.new("RGB", (len(tints), 1))
    for x, tint in enumerate(tints):
        strip.putpixel((x, 0), tint)
    base = strip.resize((width, height), Image.Resampling.BILINEAR)
    shade = Image.new("RGB", (width, height), _NEUTRAL_BOTTOM)
    ramp = Image.linear_gradient("L").point(lambda v: round(v * 0.55))
    return Image.composite(shade, base, ramp.resize((width, height), Image.Resampling.BILINEAR))


def _font(size: float) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=max(8, round(size)))
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("Rendering text needs Pillow with FreeType support.")
    return font


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def _truncate(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + _ELLIPSIS) > width:
        text = text[:-1]
    return text.rstrip() + _ELLIPSIS


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float, *, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` px; the last line ends in an ellipsis if text was cut."""
    lines: list[str] = []
    words = text.split(" ")
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and font.getlength(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words:  # ran out of lines: the next word did not fit, so this cuts and adds "…"
        lines[-1] = _truncate(f"{lines[-1]} {' '.join(words)}", font, width)
    return [_truncate(line, font, width) for line in lines]  # a single over-long word


def _timecode(seconds: float) -> str:
    centis = round(seconds * 100)
    return f"{centis // 6000:02d}:{centis // 100 % 60:02d}.{centis % 100:02d}"


def _rgb(color: str) -> tuple[int, int, int]:
    red, green, blue = ImageColor.getrgb(color)[:3]
    return red, green, blue


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    red, green, blue = (round(x + (y - x) * amount) for x, y in zip(a, b, strict=True))
    return red, green, blue


def _webp(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", **WEBP_OPTIONS)
    return out.getvalue()


# --- padding -------------------------------------------------------------------------------------


def _check_pad(pad_bytes: int) -> int:
    pad_bytes = operator.index(pad_bytes)
    if not 0 <= pad_bytes <= 2**64 - 1 - 16:
        raise ValueError(f"pad_bytes must be between 0 and 2**64 - 17, not {pad_bytes}")
    return pad_bytes


def _free_box_header(pad_bytes: int) -> bytes:
    if 8 + pad_bytes <= _MAX_32BIT_BOX:
        return struct.pack(">I4s", 8 + pad_bytes, b"free")
    return struct.pack(">I4sQ", 1, b"free", 16 + pad_bytes)  # size 1: a 64-bit largesize follows


def _padded_chunks(video: bytes, pad_bytes: int) -> Iterator[bytes]:
    view = memoryview(video)
    for start in range(0, len(view), CHUNK_SIZE):
        yield bytes(view[start : start + CHUNK_SIZE])
    if pad_bytes == 0:
        return
    yield _free_box_header(pad_bytes)
    zeros = bytes(min(CHUNK_SIZE, pad_bytes))  # the one buffer we reuse for every full chunk
    full, rest = divmod(pad_bytes, CHUNK_SIZE)
    for _ in range(full):
        yield zeros
    if rest:
        yield zeros[:rest]
