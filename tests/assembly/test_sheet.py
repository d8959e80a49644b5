"""The contact sheet of a rendered cut: a grid with one captioned frame per scene."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from studio.assembly import AssemblyError, Plan, SceneClip, contact_sheet, render
from studio.assembly.sheet import SHEET_COLUMNS, cell_box
from tests.assembly.takes import make_take

COLORS = [
    (200, 40, 40),
    (40, 200, 40),
    (40, 40, 200),
    (220, 220, 40),
    (200, 40, 200),
    (40, 200, 200),
]


@pytest.fixture(scope="module")
def six_scene_cut(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sheet")
    scenes = tuple(
        SceneClip(
            make_take(folder / f"{n}.mp4", size=(64, 36), seconds=0.5, color=color, tone=None),
            f"{n}. Scene with a title long enough to need a second line of its caption",
            n,
            f"media/{n}.mp4",
        )
        for n, color in enumerate(COLORS, start=1)
    )
    plan = Plan(scenes=scenes, width=160, height=90, title_card="Episode", card_seconds=0.5)
    cut = render(plan, folder / "cut.mp4")
    return folder / "cut.mp4", cut


def test_the_sheet_is_a_jpeg_with_one_cell_per_scene_in_order(six_scene_cut):
    video, cut = six_scene_cut

    sheet = Image.open(io.BytesIO(contact_sheet(video, cut.chapters)))

    assert sheet.format == "JPEG"
    thumb_height = 180  # 320 px wide at the cut's 16:9
    last = cell_box(5, thumb_height)
    assert sheet.size == (cell_box(SHEET_COLUMNS - 1, thumb_height)[2] + 8, last[3] + 8)
    pixels = np.asarray(sheet.convert("RGB")).astype(int)
    for index, color in enumerate(COLORS):
        left, top, right, _ = cell_box(index, thumb_height)
        middle = pixels[top + thumb_height // 2, (left + right) // 2]
        assert np.all(np.abs(middle - color) < 40), (index, middle)
        caption = pixels[top + thumb_height + 4 : top + thumb_height + 40, left:right]
        assert caption.max() > 180  # the number and title are written under it
    left, top, right, bottom = cell_box(6, thumb_height)  # where a seventh scene would be
    assert pixels[top:bottom, left:right].max() < 60


def test_a_sheet_needs_a_readable_cut(tmp_path, six_scene_cut):
    _, cut = six_scene_cut
    broken = tmp_path / "cut.mp4"
    broken.write_bytes(b"not a video")

    with pytest.raises(AssemblyError, match="The cut is not a video we can read"):
        contact_sheet(broken, cut.chapters)
