"""The emulators' renderer: real H.264 MP4s, WebP thumbnails and spritesheets, padded downloads."""

from __future__ import annotations

import io
import itertools
import struct
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from jobs.emulators import render
from jobs.emulators.render import (
    CHUNK_SIZE,
    DRIFT_AXES,
    PICTURE_MAX_SIDE,
    CastMember,
    RenderedVideo,
    dominant_color,
    first_frame,
    first_frame_color,
    mp4_with_padding,
    padded_length,
    reference_picture,
    render_video,
)

PROMPT = "Mira and Otto walk through a rainy neon market at night, arguing about dumplings."
RED = CastMember("Red", "#ff0000")
GREEN = CastMember("Verdant", "#20c040")


def tiny(**overrides) -> RenderedVideo:
    arguments = {"prompt": PROMPT, "seconds": 1, "width": 320, "height": 180, "fps": 12}
    return render_video(**(arguments | overrides))


@dataclass(frozen=True)
class StreamFacts:
    """What the video stream says of itself, read while its container is open.

    PyAV 18 refuses to read a stream's attributes once its container is closed.
    """

    codec: str
    pix_fmt: str
    profile: str
    width: int
    height: int
    seconds: float
    average_rate: Fraction


def decode(video: bytes) -> tuple[StreamFacts, list[Image.Image], float]:
    """The stream's facts, every frame as an image, and the container's duration in seconds."""
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_image() for frame in container.decode(stream)]
        facts = StreamFacts(
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
            profile=stream.codec_context.profile,
            width=stream.width,
            height=stream.height,
            seconds=float(stream.duration * stream.time_base),
            average_rate=stream.average_rate,
        )
        return facts, frames, container.duration / av.time_base


def top_level_boxes(data: bytes) -> list[tuple[str, int]]:
    """(type, size) of each top-level ISO-BMFF box, following 64-bit and to-the-end sizes."""
    boxes, position = [], 0
    while position < len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[position + 8 : position + 16])
        elif size == 0:
            size = len(data) - position
        assert size >= 8, f"corrupt box {kind!r} at {position}"
        boxes.append((kind.decode("latin-1"), size))
        position += size
    assert position == len(data), "boxes overrun the file"
    return boxes


def rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def webp(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "WEBP"
    return image


# --- the video -----------------------------------------------------------------------------------


def test_it_renders_a_playable_h264_mp4_of_the_requested_length():
    result = render_video(prompt=PROMPT, seconds=2, width=320, height=180, cast=[RED], fps=12)

    stream, frames, duration = decode(result.video)

    assert stream.codec == "h264"
    assert stream.pix_fmt == "yuv420p"
    assert (stream.width, stream.height) == (320, 180) == (result.width, result.height)
    assert len(frames) == 24
    assert result.seconds == 2
    assert abs(duration - 2) <= 1 / 12
    assert abs(stream.seconds - 2) <= 1 / 12
    assert stream.average_rate == 12


def test_it_puts_the_moov_atom_before_the_media_data_so_browsers_can_start_playing_at_once():
    kinds = [kind for kind, _ in top_level_boxes(tiny().video)]

    assert kinds[0] == "ftyp"
    assert kinds.index("moov") < kinds.index("mdat")


def test_it_uses_a_profile_every_browser_decodes():
    stream, _, _ = decode(tiny().video)

    assert stream.profile in {"Constrained Baseline", "Baseline", "Main", "High"}


def test_the_duration_is_exact_to_the_frame_and_reported_as_rendered():
    result = tiny(seconds=1.3)  # 15.6 frames at 12 fps: 16 frames

    _, frames, duration = decode(result.video)

    assert len(frames) == 16
    assert result.seconds == pytest.approx(16 / 12)
    assert abs(duration - 16 / 12) <= 1 / 12


def test_odd_sizes_are_rounded_down_to_even_and_the_real_size_is_reported():
    result = tiny(width=321, height=181)

    stream, frames, _ = decode(result.video)

    assert (result.width, result.height) == (320, 180)
    assert (stream.width, stream.height) == (320, 180)
    assert frames[0].size == (320, 180)


def test_it_renders_portrait_clips_too():
    result = tiny(width=180, height=320, cast=[RED, GREEN])

    stream, _, _ = decode(result.video)

    assert (stream.width, stream.height) == (180, 320)


def test_a_tiny_clip_renders_well_under_a_second():
    tiny()  # warm up: the first call loads the font and x264
    started = time.perf_counter()
    tiny(cast=[RED, GREEN], label="openai · video_123")
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("prompt", "label"),
    [
        ("", ""),
        ("word" * 200, "x" * 500),
        ("Émilie 🎬 日本語 — “quotes” " * 40, "sora-2 · video_68d7512d07848190"),
        ("  lots \n\n of\twhitespace  ", "  "),
    ],
)
def test_any_prompt_or_label_renders(prompt, label):
    result = tiny(prompt=prompt, label=label, cast=[CastMember("🙂" * 80, "#123456")])

    assert len(decode(result.video)[1]) == 12


@pytest.mark.parametrize(
    "arguments",
    [
        {"seconds": 0},
        {"seconds": -1},
        {"seconds": float("nan")},
        {"seconds": float("inf")},
        {"fps": 0},
        {"width": 8},
        {"height": 15},  # rounds down to 14
        {"width": 8000},
    ],
)
def test_it_refuses_impossible_clips(arguments):
    with pytest.raises(ValueError, match=r"seconds|fps|px a side"):
        tiny(**arguments)


def test_it_refuses_a_colour_it_cannot_read():
    with pytest.raises(ValueError, match="color"):
        tiny(cast=[CastMember("Nobody", "not a colour")])


# --- what is in the frames -----------------------------------------------------------------------


def test_the_cast_colours_tint_the_frame():
    _, plain, _ = decode(tiny().video)
    _, green, _ = decode(tiny(cast=[GREEN]).video)

    plain_red, plain_green, _ = ImageStat.Stat(plain[0]).mean
    red, green_, _ = ImageStat.Stat(green[0]).mean

    assert green_ - red > plain_green - plain_red + 20


def test_each_cast_member_is_drawn_in_their_colour():
    _, frames, _ = decode(tiny(cast=[GREEN], prompt="").video)

    # At the start the only cast member stands in the middle of the stage: sample their body.
    body = ImageStat.Stat(frames[0].crop((152, 90, 168, 105))).mean

    assert all(abs(a - b) <= 30 for a, b in zip(body, rgb(GREEN.color), strict=True))


def test_the_cast_moves_over_time():
    _, frames, _ = decode(tiny(cast=[RED, GREEN]).video)
    stage = (0, 60, 320, 140)  # between the prompt band and the label/timecode band

    difference = ImageChops.difference(frames[0].crop(stage), frames[-1].crop(stage))

    assert max(ImageStat.Stat(difference).mean) > 5


def test_the_timecode_runs():
    _, frames, _ = decode(tiny().video)
    timecode = (240, 160, 320, 180)

    difference = ImageChops.difference(frames[0].crop(timecode), frames[6].crop(timecode))

    assert difference.getbbox() is not None


def test_the_timecode_reads_minutes_seconds_and_hundredths():
    assert render._timecode(15 / 12) == "00:01.25"
    assert render._timecode(0) == "00:00.00"
    assert render._timecode(75.5) == "01:15.50"


def test_a_long_prompt_is_wrapped_and_ends_with_an_ellipsis():
    font = render._font(20)
    lines = render._wrap("many words " * 100, font, 300, max_lines=3)

    assert len(lines) == 3
    assert lines[-1].endswith("…")
    assert all(font.getlength(line) <= 300 for line in lines)


# --- pictures ------------------------------------------------------------------------------------

MAGENTA, YELLOW, CYAN = (255, 0, 255), (255, 230, 0), (0, 230, 255)


def framed_picture(size: tuple[int, int] = (300, 400)) -> Image.Image:
    """A magenta picture with a yellow band along its top and a cyan one along its bottom:
    both bands in a frame means the whole picture is in it."""
    picture = Image.new("RGB", size, MAGENTA)
    band = max(4, size[1] // 12)
    picture.paste(YELLOW, (0, 0, size[0], band))
    picture.paste(CYAN, (0, size[1] - band, size[0], size[1]))
    return picture


def box_of(frame: Image.Image, color: tuple[int, int, int]) -> tuple[int, int, int, int] | None:
    """Where pixels within 40 of `color` (per channel) are in the frame, or None."""
    masks = [
        channel.point(lambda v, c=c: 255 if abs(v - c) <= 40 else 0)
        for channel, c in zip(frame.split(), color, strict=True)
    ]
    return ImageChops.multiply(ImageChops.multiply(masks[0], masks[1]), masks[2]).getbbox()


PICTURED = CastMember("Mina", "#ff00ff", framed_picture())


def test_a_member_with_a_picture_is_shown_as_that_picture_whole_and_large():
    result = render_video(prompt=PROMPT, seconds=2, width=640, height=360, cast=[PICTURED], fps=6)

    _, frames, _ = decode(result.video)
    lefts = []
    for frame in frames:
        picture, top, bottom = (box_of(frame, c) for c in (MAGENTA, YELLOW, CYAN))
        assert None not in (picture, top, bottom)  # both ends show: it is whole
        assert top[1] <= picture[1]
        assert bottom[3] >= picture[3]
        height = bottom[3] - top[1]
        assert 0.6 * 360 <= height <= 0.8 * 360
        assert (bottom[2] - bottom[0]) / height == pytest.approx(300 / 400, abs=0.03)
        lefts.append(top[0])
    # It moves, gently: a slow sway of less than 8% of the width.
    assert 2 < max(lefts) - min(lefts) < 0.08 * 640


def test_the_name_is_written_under_the_picture():
    _, frames, _ = decode(
        render_video(prompt="", seconds=0.5, width=640, height=360, cast=[PICTURED], fps=4).video
    )
    bottom = box_of(frames[0], CYAN)

    below = frames[0].crop((bottom[0], bottom[3] + 1, bottom[2], bottom[3] + 30))

    assert box_of(below, (245, 245, 240)) is not None  # white letters


def test_the_backdrop_takes_its_colours_from_the_pictures():
    green = CastMember("Verdant", "#20c040", Image.new("RGB", (300, 400), (30, 200, 60)))
    _, frames, _ = decode(tiny(cast=[green], prompt="").video)

    red, green_, blue = ImageStat.Stat(frames[0].crop((0, 60, 30, 120))).mean  # beside it

    assert green_ > red + 40
    assert green_ > blue + 40


def test_members_with_and_without_pictures_stand_side_by_side():
    _, frames, _ = decode(
        render_video(
            prompt="", seconds=0.5, width=640, height=360, cast=[PICTURED, RED], fps=4
        ).video
    )

    assert box_of(frames[0], MAGENTA) is not None
    assert box_of(frames[0], (255, 0, 0)) is not None  # the figure in its colour


def test_a_tiny_clip_with_a_picture_renders_well_under_a_second():
    tiny(cast=[PICTURED])  # warm up
    started = time.perf_counter()
    tiny(cast=[PICTURED, GREEN], label="openai · video_123")
    assert time.perf_counter() - started < 1.0


def test_a_cast_member_is_still_a_name_and_a_colour_and_compares_by_content():
    assert CastMember("Red", "#ff0000").picture is None
    again = CastMember("Mina", "#ff00ff", framed_picture())
    assert again == PICTURED
    assert hash(again) == hash(PICTURED)
    assert again != CastMember("Mina", "#ff00ff", framed_picture((300, 401)))


def test_a_reference_picture_is_rgb_upright_and_at_most_768_px():
    big = reference_picture(Image.new("RGB", (2000, 1000), "red"))
    assert (big.mode, big.size) == ("RGB", (PICTURE_MAX_SIDE, PICTURE_MAX_SIDE // 2))
    see_through = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    assert reference_picture(see_through).getpixel((0, 0)) == (128, 128, 128)
    assert reference_picture(Image.new("P", (40, 40))).mode == "RGB"
    small = Image.new("RGB", (300, 200))
    assert reference_picture(small) is small  # already fine: nothing to do
    turned = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; the picture is shown rotated
    Image.new("RGB", (60, 40)).save(turned, "JPEG", exif=exif)
    assert reference_picture(Image.open(turned)).size == (40, 60)


def test_a_clips_first_frame_is_its_picture():
    clip = render_video(prompt="", seconds=0.5, width=64, height=48, cast=[RED]).video

    frame = first_frame(clip)

    assert frame.size == (64, 48)
    assert dominant_color(frame) == first_frame_color(clip)


# --- drift ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("drift", [{"hair"}, {"face", "Face"}, "face"])
def test_drift_names_known_axes(drift):
    with pytest.raises(ValueError, match="drift"):
        tiny(drift=drift)


def test_drift_on_each_axis_renders_and_a_drifting_take_renders_the_same_every_time():
    for axes in [*({axis} for axis in DRIFT_AXES), DRIFT_AXES]:
        first = tiny(cast=[PICTURED, GREEN], drift=frozenset(axes)).video
        assert tiny(cast=[PICTURED, GREEN], drift=frozenset(axes)).video == first


def test_without_a_face_face_drift_changes_nothing_and_clothing_drift_the_lower_part():
    faithful = decode(tiny(cast=[PICTURED]).video)[1][0]
    faceless = decode(tiny(cast=[PICTURED], drift={"face"}).video)[1][0]
    reclothed = decode(tiny(cast=[PICTURED], drift={"clothing"}).video)[1][0]

    assert ImageChops.difference(faithful, faceless).getbbox() is None
    picture = box_of(faithful, MAGENTA)
    upper = (picture[0], picture[1], picture[2], picture[1] + (picture[3] - picture[1]) // 3)
    lower = (picture[0], picture[3] - (picture[3] - picture[1]) // 3, picture[2], picture[3])
    assert max(ImageStat.Stat(ImageChops.difference(faithful, reclothed).crop(upper)).mean) < 3
    assert max(ImageStat.Stat(ImageChops.difference(faithful, reclothed).crop(lower)).mean) > 40


def test_style_drift_regrades_every_frame_even_without_pictures():
    plain = decode(tiny(cast=[RED]).video)[1][0]
    styled = decode(tiny(cast=[RED], drift={"style"}).video)[1][0]

    assert max(ImageStat.Stat(ImageChops.difference(plain, styled)).mean) > 20


# --- thumbnail and spritesheet -------------------------------------------------------------------


def test_the_thumbnail_is_a_webp_of_the_middle_frame_at_full_size():
    result = tiny(cast=[RED])
    _, frames, _ = decode(result.video)

    thumbnail = webp(result.thumbnail)

    assert thumbnail.size == (320, 180)
    distances = [
        sum(ImageStat.Stat(ImageChops.difference(thumbnail.convert("RGB"), frame)).mean)
        for frame in frames
    ]
    assert distances.index(min(distances)) == 6


@pytest.mark.parametrize(
    ("width", "height", "sheet_size"),
    [(320, 180, (800, 180)), (180, 320, (800, 568)), (1280, 720, (800, 180))],
)
def test_the_spritesheet_is_a_webp_grid_of_5_by_2_tiles_160_px_wide(width, height, sheet_size):
    result = tiny(width=width, height=height, seconds=0.5)

    assert webp(result.spritesheet).size == sheet_size


def test_the_spritesheet_samples_the_whole_clip():
    result = tiny(seconds=2, cast=[RED])
    sheet = webp(result.spritesheet).convert("RGB")

    first, last = sheet.crop((0, 0, 160, 90)), sheet.crop((640, 90, 800, 180))

    assert ImageChops.difference(first, last).getbbox() is not None


def test_a_clip_shorter_than_the_spritesheet_repeats_frames_instead_of_leaving_gaps():
    result = tiny(seconds=0.25)  # 3 frames for 10 tiles
    sheet = webp(result.spritesheet).convert("RGB")

    for row, column in itertools.product(range(2), range(5)):
        tile = sheet.crop((column * 160, row * 90, column * 160 + 160, row * 90 + 90))
        assert max(ImageStat.Stat(tile).mean) > 10  # not a black gap


# --- colours -------------------------------------------------------------------------------------


def test_first_frame_color_of_a_single_big_red_cast_member_is_reddish():
    result = render_video(prompt="", seconds=0.5, width=64, height=64, cast=[RED])

    red, green, blue = rgb(first_frame_color(result.video))

    assert red > green + 50
    assert red > blue + 50


def test_first_frame_color_reads_webm_too(tmp_path: Path):
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(3):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 64), (20, 40, 200)))
            frame.pts, frame.time_base = index, Fraction(1, 12)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    red, green, blue = rgb(first_frame_color(buffer.getvalue()))

    assert blue > red + 100
    assert blue > green + 100


@pytest.mark.parametrize(
    "junk",
    [b"", b"not a video at all", bytes(range(256)) * 40, b"\x00\x00\x00\x18ftypmp42" + bytes(100)],
)
def test_first_frame_color_of_junk_bytes_raises_a_value_error(junk):
    with pytest.raises(ValueError, match="video"):
        first_frame_color(junk)


def test_first_frame_color_refuses_a_still_image():
    png = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(png, "PNG")

    with pytest.raises(ValueError, match="image, not a video"):
        first_frame_color(png.getvalue())


def test_dominant_color_is_the_average_colour():
    image = Image.new("RGB", (400, 300), (255, 0, 0))
    image.paste((0, 0, 255), (200, 0, 400, 300))

    red, green, blue = rgb(dominant_color(image))

    assert (abs(red - 128), green, abs(blue - 128)) <= (1, 0, 1)


def test_dominant_color_ignores_transparent_pixels():
    image = Image.new("RGBA", (100, 100), (255, 255, 255, 0))
    image.paste((10, 200, 30, 255), (25, 25, 75, 75))

    assert dominant_color(image) == "#0ac81e"


def test_dominant_color_of_a_fully_transparent_image_still_answers():
    assert dominant_color(Image.new("RGBA", (10, 10), (1, 2, 3, 0))) == "#010203"


def test_dominant_color_reads_greyscale_and_palette_images():
    assert dominant_color(Image.new("L", (10, 10), 128)) == "#808080"
    assert dominant_color(Image.new("RGB", (10, 10), (1, 2, 3)).quantize()) == "#010203"


# --- padding -------------------------------------------------------------------------------------


def test_a_padded_mp4_still_opens_with_the_same_duration(tmp_path: Path):
    video = tiny(seconds=2).video
    pad = 5_000_000
    path = tmp_path / "padded.mp4"

    with path.open("wb") as out:
        for chunk in mp4_with_padding(video, pad):
            assert len(chunk) <= CHUNK_SIZE
            out.write(chunk)

    assert path.stat().st_size == padded_length(video, pad) == len(video) + 8 + pad
    assert top_level_boxes(path.read_bytes())[-1] == ("free", 8 + pad)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) == 24
        assert container.duration / av.time_base == pytest.approx(2, abs=1 / 12)


def test_a_pad_past_4_gib_uses_a_64_bit_box_header_that_pyav_reads(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(render, "_MAX_32BIT_BOX", 100)  # make a small pad take the 64-bit path
    video = tiny().video
    path = tmp_path / "padded.mp4"

    path.write_bytes(b"".join(mp4_with_padding(video, 1000)))

    assert path.stat().st_size == padded_length(video, 1000) == len(video) + 16 + 1000
    header = path.read_bytes()[len(video) : len(video) + 16]
    assert struct.unpack(">I4sQ", header) == (1, b"free", 1016)
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12


def test_an_8_gib_pad_streams_lazily_without_allocating_it():
    video = tiny().video
    pad = 2**33

    tracemalloc.start()
    try:
        started = time.perf_counter()
        first = list(itertools.islice(mp4_with_padding(video, pad), 3))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert elapsed < 1
    assert peak < 8 * CHUNK_SIZE
    assert first[0] == video
    assert struct.unpack(">I4sQ", first[1]) == (1, b"free", 16 + pad)
    assert first[2] == bytes(CHUNK_SIZE)
    assert padded_length(video, pad) == len(video) + 16 + pad


def test_the_padding_chunks_add_up_to_the_padded_length():
    video = tiny().video
    pad = 2 * CHUNK_SIZE + 12345

    chunks = list(mp4_with_padding(video, pad))

    assert sum(map(len, chunks)) == padded_length(video, pad)
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)


def test_a_video_bigger_than_a_chunk_is_split_into_chunks():
    video = bytes(range(256)) * (CHUNK_SIZE // 100)

    chunks = list(mp4_with_padding(video, 0))

    assert [len(chunk) for chunk in chunks] == [CHUNK_SIZE, CHUNK_SIZE, len(video) - 2 * CHUNK_SIZE]
    assert b"".join(chunks) == video


def test_no_padding_yields_the_video_unchanged():
    video = tiny().video

    assert b"".join(mp4_with_padding(video, 0)) == video
    assert padded_length(video, 0) == len(video)


def test_a_negative_pad_is_refused_before_anything_is_yielded():
    with pytest.raises(ValueError, match="pad_bytes"):
        mp4_with_padding(b"video", -1)
    with pytest.raises(ValueError, match="pad_bytes"):
        padded_length(b"video", -1)


# --- plain Python --------------------------------------------------------------------------------


def test_the_renderer_does_not_need_django():
    code = "import sys, jobs.emulators.render; sys.exit('django' in sys.modules)"
    root = Path(__file__).resolve().parents[2]

    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)  # noqa: S603


def test_a_take_shows_each_named_character_once_however_many_references_show_it():
    mina_front, mina_side = CastMember("Mina", "#ff0000"), CastMember("image 2", "#ee0000")
    ilse = CastMember("Ilse", "#0000ff")
    shown = render.figures([("Mina", mina_front), (None, mina_side), ("Ilse", ilse)])
    assert shown == (mina_front, ilse)


def test_references_the_prompt_names_none_of_are_all_shown():
    first, second = CastMember("image 1", "#ff0000"), CastMember("image 2", "#00ff00")
    assert render.figures([(None, first), (None, second)]) == (first, second)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("waves at Captain Rae", "Captain Rae"),
        ("toward Gull Point; Mina Okafor", "Mina Okafor"),
        ("the lamp", "lamp"),
    ],
)
def test_the_name_before_a_label_is_the_capitalised_run_that_ends_the_text(text, name):
    assert render.name_before_label(text) == name
