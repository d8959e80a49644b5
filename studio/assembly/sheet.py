"""The cut's contact sheet: a JPEG grid with a frame from the middle of each scene, captioned.

One frame is decoded per chapter (a seek to the keyframe before the scene's middle,
then decoding up to it), scaled to the cell at once, so the sheet costs a few frames of
memory whatever the cut's length. Cells run left to right, top to bottom, in scene order.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import av
from PIL import Image, ImageDraw

from studio.assembly.media import AssemblyError
from studio.assembly.plan import Chapter
from studio.assembly.text import CARD_BACKGROUND, draw_caption

__all__ = ["SHEET_COLUMNS", "cell_box", "contact_sheet"]

SHEET_COLUMNS = 5
THUMB_WIDTH = 320
GUTTER = 8
CAPTION_SIZE = 15
CAPTION_HEIGHT = 2 * 19 + 8  # two lines of the caption font and a margin
JPEG_QUALITY = 85


def contact_sheet(video: Path, chapters: Sequence[Chapter]) -> bytes:
    """A JPEG: one cell per chapter, the frame at its middle with "number. title" under it."""
    if not chapters:
        raise AssemblyError("The cut has no scenes to put on a contact sheet.")
    try:
        container = av.open(str(video), mode="r")
    except (av.FFmpegError, OSError) as error:
        raise AssemblyError("The cut is not a video we can read.") from error
    with container:
        if not container.streams.video:
            raise AssemblyError("The cut has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        ratio = stream.codec_context.height / max(1, stream.codec_context.width)
        thumb_height = max(2, round(THUMB_WIDTH * ratio))
        columns = min(SHEET_COLUMNS, len(chapters))
        rows = math.ceil(len(chapters) / columns)
        sheet = Image.new(
            "RGB",
            (
                columns * (THUMB_WIDTH + GUTTER) + GUTTER,
                rows * (thumb_height + CAPTION_HEIGHT + GUTTER) + GUTTER,
            ),
            CARD_BACKGROUND,
        )
        draw = ImageDraw.Draw(sheet)
        for index, chapter in enumerate(chapters):
            left, top, right, bottom = cell_box(index, thumb_height)
            picture = _frame_at(container, stream, (chapter.start + chapter.end) / 2)
            if picture is not None:
                sheet.paste(picture, (left, top))
            draw_caption(
                draw,
                _caption(chapter),
                (left, top + thumb_height + 4, right, bottom),
                size=CAPTION_SIZE,
            )
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def cell_box(index: int, thumb_height: int) -> tuple[int, int, int, int]:
    """Where the `index`-th cell sits (left, top, right, bottom); the frame fills its top."""
    row, column = divmod(index, SHEET_COLUMNS)
    left = GUTTER + column * (THUMB_WIDTH + GUTTER)
    top = GUTTER + row * (thumb_height + CAPTION_HEIGHT + GUTTER)
    return left, top, left + THUMB_WIDTH, top + thumb_height + CAPTION_HEIGHT


def _caption(chapter: Chapter) -> str:
    title = " ".join(chapter.title.split())
    prefix = f"{chapter.number}."
    if title.startswith((prefix, f"{chapter.number} ")):
        return title  # "1. Launch day" already says its number
    return f"{prefix} {title}" if title else f"Scene {chapter.number}"


def _frame_at(container, stream, seconds: float) -> Image.Image | None:
    """The frame on screen at `seconds`, scaled to the cell's width."""
    if stream.time_base is None:
        return None
    try:
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
        chosen = None
        for frame in container.decode(stream):
            if frame.time is not None and frame.time > seconds and chosen is not None:
                break
            chosen = frame
        if chosen is None:
            return None
        height = max(2, round(THUMB_WIDTH * chosen.height / chosen.width))
        return chosen.to_image(width=THUMB_WIDTH, height=height, interpolation="AREA")
    except av.FFmpegError as error:
        raise AssemblyError("The cut cannot be decoded for its contact sheet.") from error
