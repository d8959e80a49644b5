"""Renders real, playable H.264 MP4 clips, thumbnails and spritesheets for the emulators."""

# No Django here on purpose: the emulators also run as plain Python processes.

from __future__ import annotations

import colorsys
import hashlib
import io
import itertools
import math
import operator
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from PIL import (
    Image,
    ImageChops,
    ImageColor,
    ImageDraw,
    ImageFilter,
    ImageFont,
    ImageOps,
    ImageStat,
)

__all__ = [
    "CHUNK_SIZE",
    "DRIFT_AXES",
    "CastMember",
    "RenderedVideo",
    "check_drift",
    "dominant_color",
    "figures",
    "first_frame",
    "first_frame_color",
    "mp4_with_padding",
    "name_before_label",
    "padded_length",
    "picture_digest",
    "reference_picture",
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

PICTURE_MAX_SIDE = 768  # a reference picture is kept at most this large (`reference_picture`)
# What a take can drift on (`render_video(drift=...)`, the `[[emulate:drift=...]]` marker).
DRIFT_AXES = frozenset({"face", "clothing", "style"})


@dataclass(frozen=True)
class CastMember:
    name: str
    color: str  # "#rrggbb", taken from the character's reference images
    # The character's own reference picture (RGB, see `reference_picture`): when given, the
    # figure *is* this picture, so a faithful take shows the character as referenced.
    picture: Image.Image | None = None

    def __hash__(self) -> int:
        # Images are compared by content and are not hashable: hash what equal members share.
        shape = None if self.picture is None else (self.picture.mode, self.picture.size)
        return hash((self.name, self.color, shape))


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
    drift: Iterable[str] = frozenset(),
) -> RenderedVideo:
    """Draw a clip of `seconds` (exact to the frame) and encode it as browser-friendly H.264.

    Cast members with a `picture` are shown as that picture. `drift` makes the take drift
    from the references on some of DRIFT_AXES (ValueError for any other):

    - "face": with two or more people in the pictures, they trade faces (the wrong person);
      with one, the face is disguised past recognition (dlib's descriptor distance >= 0.6)
      and still found; a picture without a face (dlib's HOG detector) stays as it is;
    - "clothing": the body below the face changes colour (hue turned half way round) and
      takes on a check pattern;
    - "style": the whole frame is graded differently (hue, posterized, harder contrast,
      coarse grain), faces still recognisable.
    """
    axes = check_drift(drift)
    if not seconds > 0 or math.isinf(seconds):  # also rejects NaN
        raise ValueError(f"seconds must be a positive number, not {seconds!r}")
    if fps < 1:
        raise ValueError(f"fps must be at least 1, not {fps!r}")
    width, height = int(width) - int(width) % 2, int(height) - int(height) % 2
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ValueError(f"a video is {MIN_SIDE}..{MAX_SIDE} px a side, not {width}x{height}")
    frame_count = max(1, round(seconds * fps))

    style = _Style(width, height) if "style" in axes else None
    if any(member.picture is not None for member in cast):
        pictures = _drifted_pictures([member.picture for member in cast], axes)
        scene: _Scene | _PictureScene = _PictureScene(
            prompt=prompt,
            label=label,
            width=width,
            height=height,
            cast=cast,
            pictures=pictures,
            fps=fps,
            style=style,
        )
    else:
        scene = _Scene(
            prompt=prompt,
            label=label,
            width=width,
            height=height,
            cast=cast,
            fps=fps,
            style=style,
        )
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


def figures(references: Sequence[tuple[str | None, CastMember]]) -> tuple[CastMember, ...]:
    """The people a take shows, from its references as (the name the prompt gives it, or None;
    the member): one figure per name, from its first reference, as a provider draws a character
    once however many pictures show it; only when the prompt names none, every reference."""
    named: dict[str, CastMember] = {}
    for name, member in references:
        if name is not None:
            named.setdefault(name, member)
    return tuple(named.values()) if named else tuple(member for _, member in references)


def name_before_label(text: str) -> str:
    """The capitalised run of words that ends a text ("waves at Captain Rae" -> "Captain Rae"),
    as a prompt names the reference it labels next; a word ending a clause ("Point;") ends it."""
    run: list[str] = []
    for word in reversed(text.split()):
        if not word[:1].isupper() or word[-1] in ",;:.!?)":
            break
        run.insert(0, word)
    return " ".join(run or text.split()[-1:])


def check_drift(drift: Iterable[str]) -> frozenset[str]:
    """`drift` as a frozenset of DRIFT_AXES; ValueError names any other axis."""
    if isinstance(drift, str):
        raise ValueError("drift is a set of axes, not a string")
    axes = frozenset(drift)
    unknown = axes - DRIFT_AXES
    if unknown:
        raise ValueError(
            f"unknown drift axis {', '.join(sorted(map(repr, unknown)))}: "
            f"use {', '.join(sorted(DRIFT_AXES))}"
        )
    return axes


def reference_picture(image: Image.Image) -> Image.Image:
    """A reference image as the renderer keeps it: upright (EXIF), RGB (transparency over
    grey), at most PICTURE_MAX_SIDE px on its long side. Cheap on a picture already so."""
    image = ImageOps.exif_transpose(image) if image.getexif() else image
    if image.mode in ("RGBA", "LA", "PA") or image.has_transparency_data:
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (128, 128, 128))
        image.paste(rgba, (0, 0), rgba)
    elif image.mode != "RGB":
        image = image.convert("RGB")
    if max(image.size) > PICTURE_MAX_SIDE:
        scale = PICTURE_MAX_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def picture_digest(picture: Image.Image) -> bytes:
    """What tells pictures apart: a hash of their size, mode and pixels (a cache of rendered
    clips keys on it, with the drift: the same shape with other pictures is another clip)."""
    digest = hashlib.blake2b(picture.tobytes(), digest_size=16)
    digest.update(f"{picture.mode}{picture.size}".encode())
    return digest.digest()


def first_frame_color(video: bytes) -> str:
    """Decode the first frame of an MP4/WebM given as bytes and return its `dominant_color`."""
    return dominant_color(first_frame(video))


def first_frame(video: bytes) -> Image.Image:
    """The first frame of an MP4/WebM given as bytes (a clip's `reference_picture` is made
    from it); ValueError for anything that is not a readable video."""
    if not video:
        raise ValueError("The file is empty, not a video.")
    try:
        with av.open(io.BytesIO(video), mode="r") as container:
            if any(marker in container.format.name for marker in _IMAGE_FORMATS):
                raise ValueError("The file is an image, not a video.")
            if not container.streams.video:
                raise ValueError("The file has no video stream.")
            for frame in container.decode(video=0):
                return frame.to_image()
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


class _Bands:
    """The prompt band across the top and the label and timecode band across the bottom, on a
    scene's backdrop (both scenes share them; needs width, height, pad and small_font)."""

    width: int
    height: int
    pad: int
    small_font: ImageFont.FreeTypeFont

    def _with_bands(
        self,
        backdrop: Image.Image,
        *,
        prompt: str,
        label: str,
        prompt_font: ImageFont.FreeTypeFont,
        max_lines: int,
    ) -> tuple[Image.Image, int, int]:
        """The backdrop with its bands drawn, and the stage between them (top, bottom)."""
        width, height = self.width, self.height
        backdrop = backdrop.convert("RGBA")
        bands = Image.new("RGBA", backdrop.size, (0, 0, 0, 0))
        bands_draw = ImageDraw.Draw(bands)
        prompt_lines = _wrap(
            " ".join(prompt.split()) or "(no prompt)",
            prompt_font,
            width - 2 * self.pad,
            max_lines=max_lines,
        )
        prompt_line_height = _line_height(prompt_font)
        top = 2 * self.pad + prompt_line_height * len(prompt_lines)
        bottom = height - (2 * self.pad + _line_height(self.small_font))
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
            draw.text(
                (self.pad, self.text_mid_y),
                _truncate(
                    " ".join(label.split()),
                    self.small_font,
                    width - 3 * self.pad - self.timecode_width,
                ),
                fill=_DIM_TEXT,
                font=self.small_font,
                anchor="lm",
            )
        return backdrop, top, bottom

    def _with_timecode(self, image: Image.Image, seconds: float) -> Image.Image:
        """The frame with its time at the right of the bottom band."""
        ImageDraw.Draw(image).text(
            (self.width - self.pad, self.text_mid_y),
            _timecode(seconds),
            fill=_TEXT,
            font=self.small_font,
            anchor="rm",
        )
        return image


class _Scene(_Bands):
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
        style: _Style | None = None,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        unit = min(width, height)  # portrait frames would get giant text if we scaled by height
        self.pad = max(2, round(unit * 0.035))
        prompt_font = _font(unit / 16)
        self.small_font = _font(unit / 22)
        name_font = _font(unit / 18)
        colors = [_rgb(member.color) for member in cast]

        backdrop, top, bottom = self._with_bands(
            _gradient(width, height, colors),
            prompt=prompt,
            label=label,
            prompt_font=prompt_font,
            max_lines=3 if height >= 240 else 2,
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
        if style is not None:
            self.backdrop = style.apply(self.backdrop)
            self.sprites = [style.apply(sprite) for sprite in self.sprites]
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
        return self._with_timecode(image, seconds)


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


class _PictureScene(_Bands):
    """The cast as their own pictures, side by side over a backdrop blurred from the first one.

    Everything is scaled once; a frame only pastes. The pictures sway together and bob a
    little, always whole and inside the frame, so a face in them stays whole and large.
    """

    def __init__(
        self,
        *,
        prompt: str,
        label: str,
        width: int,
        height: int,
        cast: Sequence[CastMember],
        pictures: list[Image.Image | None],
        fps: int,
        style: _Style | None,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        unit = min(width, height)
        # Slimmer bands than the figures' scene: the pictures need the height.
        self.pad = max(2, round(unit * 0.02))
        prompt_font = _font(unit / 24)
        self.small_font = _font(unit / 26)
        name_font = _font(unit / 26)
        first = next(picture for picture in pictures if picture is not None)

        backdrop, top, bottom = self._with_bands(
            _blurred_cover(first, width, height),
            prompt=prompt,
            label=label,
            prompt_font=prompt_font,
            max_lines=2,
        )

        # Sizes: one height for every picture, as large as the stage and the width allow.
        count = len(cast)
        gap = max(2, round(width * 0.02))
        stroke = max(1, round(name_font.size / 10))
        name_height = _line_height(name_font) + 2 * stroke + max(1, round(unit * 0.006))
        self.bob = max(1, round(height * 0.008))
        room = max(8, bottom - top - 2 * self.pad - name_height - 2 * self.bob)
        aspects = [
            picture.width / picture.height if picture is not None else _FIGURE_ASPECT
            for picture in pictures
        ]
        across = width - 2 * self.pad - gap * (count - 1)
        figure_height = max(8, min(room, round(height * _PICTURE_HEIGHT), across / sum(aspects)))
        widths = [max(4, round(figure_height * aspect)) for aspect in aspects]
        figure_height = round(figure_height)

        self.pictures: list[Image.Image | None] = []
        self.sprites: list[Image.Image] = []  # names (and figures without a picture), RGBA
        self.slots: list[int] = []  # the left edge of each at rest
        self.sprite_offsets: list[tuple[int, int]] = []  # the sprite's place from the slot
        left = (width - sum(widths) - gap * (count - 1)) / 2
        for member, picture, figure_width in zip(cast, pictures, widths, strict=True):
            self.slots.append(round(left))
            name_room = figure_width + gap
            if picture is None:
                sprite = _figure(
                    member.name,
                    _rgb(member.color),
                    figure_width * 0.9,
                    figure_height,
                    name_font,
                    name_room,
                    unit,
                )
                self.pictures.append(None)
                self.sprite_offsets.append(((figure_width - sprite.width) // 2, 0))
            else:
                framed = _framed(picture, figure_width, figure_height, unit)
                self.pictures.append(framed)
                sprite = _name_tag(member.name, name_font, name_room, stroke)
                self.sprite_offsets.append(((figure_width - sprite.width) // 2, figure_height))
            self.sprites.append(sprite)
            left += figure_width + gap
        self.figure_height = figure_height
        self.floor = bottom - self.pad - name_height - self.bob  # where the pictures end at rest
        # The group sways as one, as far as the frame allows (at most 3.5% of the width).
        spare = min(self.slots[0], width - (self.slots[-1] + widths[-1])) - self.pad
        self.sway = max(0.0, min(width * 0.035, spare))

        if style is not None:
            backdrop = style.apply(backdrop)
            self.pictures = [None if p is None else style.apply(p) for p in self.pictures]
            self.sprites = [style.apply(sprite) for sprite in self.sprites]
        self.backdrop = backdrop

    def frame(self, index: int) -> Image.Image:
        seconds = index / self.fps
        image = self.backdrop.copy()
        shift = self.sway * math.sin(math.tau * seconds / _SWAY_PERIOD)
        for member, (picture, sprite) in enumerate(zip(self.pictures, self.sprites, strict=True)):
            hop = self.bob * math.sin(math.tau * seconds / _BOB_PERIOD + member * 1.3)
            left = round(self.slots[member] + shift)
            top = round(self.floor - self.figure_height + hop)
            if picture is not None:
                image.paste(picture, (left, top))
            dx, dy = self.sprite_offsets[member]
            image.paste(sprite, (left + dx, top + dy), sprite)
        return self._with_timecode(image, seconds)


_PICTURE_HEIGHT = 0.72  # of the frame's height, when the stage and the width allow
_FIGURE_ASPECT = 0.55  # width / height of a figure drawn for a member without a picture
_SWAY_PERIOD = 6.0  # seconds for the group to sway right, left and back
_BOB_PERIOD = 2.5


def _framed(picture: Image.Image, width: int, height: int, unit: int) -> Image.Image:
    """`picture` scaled to width x height with a thin dark frame (drawn inside the size)."""
    scaled = picture.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    border = max(1, round(unit / 360))
    draw = ImageDraw.Draw(scaled)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(12, 12, 16), width=border)
    return scaled


def _name_tag(name: str, font: ImageFont.FreeTypeFont, room: float, stroke: int) -> Image.Image:
    name = _truncate(" ".join(name.split()) or "?", font, max(10, room))
    box = font.getbbox(name, stroke_width=stroke)
    tag = Image.new("RGBA", (box[2] - box[0] + 2 * stroke + 2, _line_height(font) + 2 * stroke))
    ImageDraw.Draw(tag).text(
        (tag.width // 2, stroke),
        name,
        fill=_TEXT,
        font=font,
        anchor="ma",
        stroke_width=stroke,
        stroke_fill=(0, 0, 0),
    )
    return tag


def _blurred_cover(picture: Image.Image, width: int, height: int) -> Image.Image:
    """`picture` scaled to cover width x height, strongly blurred and a little darkened."""
    small = ImageOps.fit(
        picture,
        (max(2, width // 24), max(2, height // 24)),
        Image.Resampling.BOX,
    )
    small = small.filter(ImageFilter.GaussianBlur(1.2))
    cover = small.resize((width, height), Image.Resampling.BICUBIC)
    return cover.point(_DARKEN)


_DARKEN = [round(v * 0.7) for v in range(256)] * 3


# --- drift -------------------------------------------------------------------------------------


class _Style:
    """A different look for the whole frame: hue turned, harder contrast, posterized, coarse
    grain. Applied once to the backdrop and each picture, so a frame still only pastes."""

    HUE_DEGREES = 160
    CONTRAST = 1.35
    POSTERIZE_BITS = 3  # 8 levels a channel
    GRAIN = 24  # levels either way (uniform: a standard deviation of about 14)
    GRAIN_BLOCK = 2  # px: coarse enough to outlive H.264 and the scorer's downscaling

    def __init__(self, width: int, height: int) -> None:
        rotation = _hue_matrix(self.HUE_DEGREES)
        contrast, offset = self.CONTRAST, 128 * (1 - self.CONTRAST)
        self.matrix = tuple(
            value * contrast if column < 3 else offset
            for row in range(3)
            for column, value in enumerate((*rotation[row], 0.0))
        )
        shift = 8 - self.POSTERIZE_BITS
        self.lut = [(v >> shift << shift) + (1 << shift) // 2 for v in range(256)] * 3
        self.size = (width, height)
        self._grain: Image.Image | None = None

    def grain(self, size: tuple[int, int]) -> Image.Image:
        """Monochrome noise around 128 (uniform, +-GRAIN), the same for every render of a
        size: a take renders the same every time."""
        if self._grain is None or self._grain.width < size[0] or self._grain.height < size[1]:
            block = self.GRAIN_BLOCK
            width = -(-max(size[0], self.size[0]) // block)
            height = -(-max(size[1], self.size[1]) // block)
            noise = Image.frombytes(
                "L", (width, height), hashlib.shake_256(b"grain").digest(width * height)
            ).point([128 + round((v - 127.5) * self.GRAIN / 128) for v in range(256)])
            noise = noise.resize((width * block, height * block), Image.Resampling.NEAREST)
            self._grain = Image.merge("RGB", (noise, noise, noise))
        return self._grain.crop((0, 0, *size))

    def apply(self, image: Image.Image) -> Image.Image:
        alpha = image.getchannel("A") if image.mode == "RGBA" else None
        graded = image.convert("RGB").convert("RGB", self.matrix).point(self.lut)
        graded = ImageChops.add(graded, self.grain(graded.size), 1.0, -128)
        if alpha is not None:
            graded.putalpha(alpha)
        return graded


def _hue_matrix(degrees: float) -> tuple[tuple[float, float, float], ...]:
    """The RGB matrix turning hues by `degrees` about the grey axis (greys stay as they are)."""
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    third, root = (1 - cos) / 3, math.sqrt(1 / 3) * sin
    return (
        (cos + third, third - root, third + root),
        (third + root, cos + third, third - root),
        (third - root, third + root, cos + third),
    )


def _hue_turned(image: Image.Image, degrees: float) -> Image.Image:
    matrix = tuple(value for row in _hue_matrix(degrees) for value in (*row, 0.0))
    return image.convert("RGB", matrix)


Box = tuple[int, int, int, int]  # left, top, right, bottom

_detector: Any = None
_detector_lock = threading.Lock()
_faces: OrderedDict[bytes, Box | None] = OrderedDict()  # picture digest -> its face
_FACES_KEPT = 64  # the emulators render the same characters' pictures again and again


def _face_box(picture: Image.Image) -> Box | None:
    """The face dlib's HOG detector (upsampled once) is surest of, or None: none found, or
    dlib not installed (then face and clothing drift work without faces)."""
    global _detector  # one detector per process, made on first need
    key = picture_digest(picture)
    with _detector_lock:
        if key in _faces:
            _faces.move_to_end(key)
            return _faces[key]
    try:
        import dlib
        import numpy
    except ImportError:
        return None
    pixels = numpy.asarray(picture.convert("RGB"))
    with _detector_lock:  # dlib's objects are not documented as safe across threads
        if _detector is None:
            _detector = dlib.get_frontal_face_detector()
        rects, scores, _kinds = _detector.run(pixels, 1, 0)
    box = None
    if len(rects):
        rect = max(zip(scores, rects, strict=True), key=operator.itemgetter(0))[1]
        box = (
            max(0, rect.left()),
            max(0, rect.top()),
            min(picture.width, rect.right()),
            min(picture.height, rect.bottom()),
        )
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            box = None
    with _detector_lock:
        _faces[key] = box
        while len(_faces) > _FACES_KEPT:
            _faces.popitem(last=False)
    return box


def _drifted_pictures(
    pictures: list[Image.Image | None], axes: frozenset[str]
) -> list[Image.Image | None]:
    """The cast's pictures as this take shows them: as referenced, or drifted on `axes`
    (the frame-wide style is applied later, by _Style)."""
    pictures = [None if p is None else reference_picture(p) for p in pictures]
    if not axes & {"face", "clothing"}:
        return pictures
    faces = [None if p is None else _face_box(p) for p in pictures]
    if "face" in axes:
        # Every face becomes someone else's. (Trading faces between two characters was tried:
        # a scorer then finds each face on the other's body, and the drift reads as clothes.)
        pictures = [
            picture if picture is None or box is None else _disguised(picture, box)
            for picture, box in zip(pictures, faces, strict=True)
        ]
    if "clothing" in axes:
        pictures = [
            None if picture is None else _reclothed(picture, box)
            for picture, box in zip(pictures, faces, strict=True)
        ]
    return pictures


def _grown(box: Box, amount: float, size: tuple[int, int]) -> Box:
    left, top, right, bottom = box
    dx, dy = (right - left) * amount, (bottom - top) * amount
    return (
        max(0, round(left - dx)),
        max(0, round(top - dy)),
        min(size[0], round(right + dx)),
        min(size[1], round(bottom + dy)),
    )


def _oval_mask(size: tuple[int, int], feather: float = 0.16) -> Image.Image:
    width, height = size
    inset = max(1, round(min(width, height) * feather / 2))
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((inset, inset, width - inset, height - inset), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(max(1.0, inset / 1.5)))


# The face made into someone else, in face-box units: sunglasses and heavy brows over the
# eyes, a moustache under the nose, then the middle of the face (0.39-0.61 of the box grown
# by 15%: nose and mouth) pulled long over 0.25-0.75, so the eyes ride up and the chin drops.
# Chosen by measuring dlib's descriptors on the fixture portraits (studio/demo_media): the
# drawn features alone move the descriptor 0.5-0.6, the pull alone 0.55-0.65; together the
# rendered face is 0.68-0.72 from the original (another person to dlib, which says "same"
# under 0.6) and is still found, so a scorer has a face to measure. Pulling harder (0.41)
# loses the face: a take with nobody in it measures nothing.
_EYES = ((0.28, 0.30), (0.72, 0.30))  # where dlib's box has the eyes of a frontal face
_NOSE = (0.5, 0.63)  # the tip of the nose
_PULL = ((0.0, 0.0), (0.39, 0.25), (0.5, 0.5), (0.61, 0.75), (1.0, 1.0))  # (from, to)


def _disguised(picture: Image.Image, box: Box) -> Image.Image:
    """`picture` with the face in `box` made into someone else's (see _PULL)."""
    left, top, right, bottom = box
    fw, fh = right - left, bottom - top
    ink = (20, 17, 16, 240)
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    (ax, ay), (bx, by) = ((left + x * fw, top + y * fh) for x, y in _EYES)
    spacing = bx - ax
    lens_w, lens_h = 0.42 * spacing, 0.30 * spacing
    for x, y in ((ax, ay), (bx, by)):
        draw.ellipse((x - lens_w, y - lens_h, x + lens_w, y + lens_h), fill=ink)
        draw.rectangle(
            (x - 0.38 * spacing, y - 0.50 * spacing, x + 0.38 * spacing, y - 0.34 * spacing),
            fill=ink,
        )
    draw.line((ax + lens_w, ay, bx - lens_w, by), fill=ink, width=max(2, round(0.07 * spacing)))
    nose_x, nose_y = left + _NOSE[0] * fw, top + _NOSE[1] * fh
    draw.ellipse(
        (
            nose_x - 0.45 * spacing,
            nose_y + 0.06 * spacing,
            nose_x + 0.45 * spacing,
            nose_y + 0.30 * spacing,
        ),
        fill=ink,
    )
    layer = layer.filter(ImageFilter.GaussianBlur(max(0.6, spacing * 0.025)))
    out = Image.alpha_composite(picture.convert("RGBA"), layer).convert("RGB")

    area = _grown(box, 0.15, picture.size)
    face = out.crop(area)
    pulled = Image.new("RGB", face.size)
    for (from0, to0), (from1, to1) in itertools.pairwise(_PULL):
        source = (round(from0 * face.height), round(from1 * face.height))
        target = (round(to0 * face.height), round(to1 * face.height))
        if source[1] > source[0] and target[1] > target[0]:
            band = face.crop((0, source[0], face.width, source[1]))
            pulled.paste(
                band.resize((face.width, target[1] - target[0]), Image.Resampling.BICUBIC),
                (0, target[0]),
            )
    out.paste(pulled, area[:2], _oval_mask(face.size, 0.12))
    return out


def _reclothed(picture: Image.Image, face: Box | None) -> Image.Image:
    """The clothes changed: the body below the face (three face widths across, down to the
    bottom; without a face, the lower 55%) hue-turned half way round and woven into a check
    of that new colour, so even grey or dark clothes clearly change colour and texture."""
    if face is None:
        area = (0, round(picture.height * 0.45), picture.width, picture.height)
        check = max(3, round(min(picture.size) / 24))
    else:
        left, top, right, bottom = face
        fw, fh = right - left, bottom - top
        centre = (left + right) / 2
        area = (
            max(0, round(centre - 1.5 * fw)),
            min(picture.height, round(bottom + 0.12 * fh)),
            min(picture.width, round(centre + 1.5 * fw)),
            picture.height,
        )
        check = max(3, round(fw / 5))
    if area[2] - area[0] < 2 or area[3] - area[1] < 2:
        return picture
    region = _hue_turned(picture.crop(area), 180)
    tint = Image.new("RGB", region.size, _vivid(_rgb(dominant_color(region))))
    width, height = region.size
    columns = Image.new("1", region.size, 0)
    draw = ImageDraw.Draw(columns)
    for x in range(0, width, 2 * check):
        draw.rectangle((x, 0, x + check - 1, height), fill=1)
    rows = Image.new("1", region.size, 0)
    draw = ImageDraw.Draw(rows)
    for y in range(0, height, 2 * check):
        draw.rectangle((0, y, width, y + check - 1), fill=1)
    pattern = ImageChops.logical_xor(columns, rows).convert("L")
    light = Image.blend(region.point(_LIGHTEN), tint, 0.5)
    dark = Image.blend(region.point(_SHADE), tint.point(_SHADE), 0.35)
    out = picture.copy()
    out.paste(Image.composite(light, dark, pattern), area[:2])
    return out


_LIGHTEN = [min(255, round(v * 1.1 + 40)) for v in range(256)] * 3
_SHADE = [round(v * 0.5) for v in range(256)] * 3


def _vivid(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """`color` made strong and bright; a grey (no hue to keep) becomes orange."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255 for c in color))
    if saturation < 0.08:
        hue = 0.08
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.8, max(value, 0.75))
    return round(red * 255), round(green * 255), round(blue * 255)


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
