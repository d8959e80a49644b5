"""Previews made from downloaded results, and clips cut from takes."""

from __future__ import annotations

import io

import av
import pytest
from PIL import Image

from jobs import video_files
from jobs.emulators.render import render_video


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "take.mp4"
    path.write_bytes(
        render_video(prompt="Harbour", seconds=4, width=1792, height=1024, fps=6).video
    )
    return path


def test_probing_reports_duration_size_and_codec(video):
    facts = video_files.probe_video(video)
    assert (facts.width, facts.height, facts.codec) == (1792, 1024, "h264")
    assert facts.duration == pytest.approx(4, abs=0.2)


def test_a_non_video_is_unusable(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(video_files.ResultUnusable):
        video_files.probe_video(junk)


def test_the_thumbnail_is_a_640_wide_jpeg(video):
    image = Image.open(io.BytesIO(video_files.make_thumbnail(video)))
    assert (image.format, image.width) == ("JPEG", 640)


def test_the_spritesheet_is_a_five_by_two_grid_of_160_pixel_frames(video):
    image = Image.open(io.BytesIO(video_files.make_spritesheet(video)))
    assert image.format == "JPEG"
    assert image.size == (video_files.SPRITE_TILE_WIDTH * 5, round(160 * 1024 / 1792) * 2)


def test_a_cut_clip_has_the_chosen_length(video):
    clip = video_files.cut_clip(video, start=1.0, end=3.5)
    with av.open(io.BytesIO(clip)) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(2.5, abs=0.3)


def test_an_empty_span_is_refused(video):
    with pytest.raises(ValueError, match="end after it starts"):
        video_files.cut_clip(video, start=2, end=2)
