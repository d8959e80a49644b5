"""Text drawn into the cut: title and end cards, burned-in subtitles, contact sheet captions.

Titles and lines are user input, so text is wrapped to the room it has (a word too long
for a line is broken), cut to a few lines with an ellipsis, and drawn with a font that
has no missing-glyph crash (a glyph the font lacks is drawn as its box). The font is
DejaVu Sans when the system has it (wide coverage), else Pillow's own default font.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from studio.assembly.media import planes
from studio.assembly.plan import clean

__all__ = ["Overlay", "card_picture", "draw_caption", "font", "subtitle_overlay", "wrap"]

_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)
ELLIPSIS = "…"
CARD_BACKGROUND = (14, 16, 22)
CARD_TEXT = (238, 238, 232)
SUBTITLE_TEXT = (255, 255, 255)
SUBTITLE_BOX = (0, 0, 0, 150)


@functools.lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont:
    size = max(8, int(size))
    for name in _FONT_FILES:
        if Path(name).is_file():
            return ImageFont.truetype(name, size)
    default = ImageFont.load_default(size=size)
    if not isinstance(default, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("Drawing text needs Pillow with FreeType support.")
    return default


def wrap(text: str, face: ImageFont.FreeTypeFont, width: float, *, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` px, at most `max_lines` lines; an ellipsis ends cut text."""
    lines: list[str] = []
    cut = False
    for paragraph in clean(text).split("\n"):
        words = paragraph.split(" ")
        line = ""
        for word in words:
            candidate = f"{line} {word}" if line else word
            if face.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            # A word wider than the line is broken where it must be.
            while face.getlength(word) > width and len(word) > 1:
                split = _fitting_prefix(word, face, width)
                lines.append(word[:split])
                word = word[split:]
            line = word
        if line:
            lines.append(line)
    if len(lines) > max_lines:
        lines, cut = lines[:max_lines], True
    if cut:
        lines[-1] = _with_ellipsis(lines[-1], face, width)
    return lines


def _fitting_prefix(word: str, face: ImageFont.FreeTypeFont, width: float) -> int:
    low, high = 1, len(word)
    while low < high:  # the longest prefix that fits (at least one character)
        middle = (low + high + 1) // 2
        if face.getlength(word[:middle]) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _with_ellipsis(line: str, face: ImageFont.FreeTypeFont, width: float) -> str:
    while line and face.getlength(line + ELLIPSIS) > width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS


def _line_height(face: ImageFont.FreeTypeFont) -> int:
    ascent, descent = face.getmetrics()
    return ascent + descent


def card_picture(text: str, width: int, height: int) -> np.ndarray:
    """A card: the text centred on a dark background, as a yuv420p picture."""
    image = Image.new("RGB", (width, height), CARD_BACKGROUND)
    face = font(max(10, height // 12))
    lines = wrap(text, face, width * 0.8, max_lines=4)
    step = round(_line_height(face) * 1.15)
    draw = ImageDraw.Draw(image)
    top = (height - step * len(lines)) / 2
    for index, line in enumerate(lines):
        draw.text(
            (width / 2, top + index * step + step / 2), line, font=face, fill=CARD_TEXT, anchor="mm"
        )
    return av.VideoFrame.from_image(image).reformat(format="yuv420p").to_ndarray()


@dataclass(frozen=True)
class Overlay:
    """Subtitle text ready to lay over yuv420p pictures: a band of rows from `top`."""

    top: int
    luma: np.ndarray
    u: np.ndarray
    v: np.ndarray
    alpha: np.ndarray  # 0..1, full size
    alpha_half: np.ndarray  # 0..1, chroma size

    def apply(self, picture: np.ndarray, height: int) -> None:
        """Blend the text into `picture` (changed in place)."""
        luma, u, v = planes(picture, height)
        rows = self.luma.shape[0]
        for target, source, alpha, top in (
            (luma, self.luma, self.alpha, self.top),
            (u, self.u, self.alpha_half, self.top // 2),
            (v, self.v, self.alpha_half, self.top // 2),
        ):
            band = target[top : top + (rows if target is luma else rows // 2)]
            mixed = band * (1 - alpha) + source * alpha
            band[:] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def subtitle_overlay(text: str, width: int, height: int) -> Overlay:
    """The subtitle band for `text`: wrapped, outlined white text on a translucent box."""
    face = font(max(10, round(height / 18)))
    stroke = max(1, face.size // 14)
    lines = wrap(text, face, width * 0.86, max_lines=3)
    step = _line_height(face) + stroke * 2
    pad = max(2, face.size // 4)
    band_height = step * len(lines) + pad * 2
    band_height += band_height % 2
    margin = max(2, round(height * 0.05))
    top = max(0, height - margin - band_height)
    top -= top % 2
    band_height = min(band_height, height - top)

    image = Image.new("RGBA", (width, band_height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    widest = max((face.getlength(line) for line in lines), default=0)
    left = max(0, (width - widest) / 2 - pad * 2)
    right = min(width, (width + widest) / 2 + pad * 2)
    draw.rectangle((left, 0, right, band_height), fill=SUBTITLE_BOX)
    for index, line in enumerate(lines):
        draw.text(
            (width / 2, pad + index * step + step / 2),
            line,
            font=face,
            fill=SUBTITLE_TEXT,
            anchor="mm",
            stroke_width=stroke,
            stroke_fill=(0, 0, 0),
        )
    # The colours as drawn (not weighted by alpha): the blend weights them.
    yuv = av.VideoFrame.from_image(image.convert("RGB")).reformat(format="yuv420p").to_ndarray()
    luma, u, v = planes(yuv, band_height)
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255
    alpha_half = alpha.reshape(band_height // 2, 2, width // 2, 2).mean(axis=(1, 3))
    return Overlay(
        top=top,
        luma=luma.astype(np.float32),
        u=u.astype(np.float32),
        v=v.astype(np.float32),
        alpha=alpha,
        alpha_half=alpha_half,
    )


def draw_caption(
    draw: ImageDraw.ImageDraw, text: str, box: tuple[int, int, int, int], *, size: int
) -> None:
    """Up to two lines of `text`, centred at the top of `box` (left, top, right, bottom)."""
    face = font(size)
    left, top, right, bottom = box
    lines = wrap(text, face, right - left - 8, max_lines=2)
    step = _line_height(face)
    for index, line in enumerate(lines):
        y = top + index * step
        if y + step > bottom:
            break
        draw.text(((left + right) / 2, y), line, font=face, fill=CARD_TEXT, anchor="ma")
