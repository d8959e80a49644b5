"""Rendering a cut from small real takes, checked as a player would read the MP4."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from studio.assembly import AssemblyError, LineIn, Plan, SceneClip, layout, probe, render
from tests.assembly.conftest import BLUE, GREEN, RED, read_streams, top_level_boxes
from tests.assembly.takes import make_take

SIZE = {"width": 192, "height": 108, "fps": 24}
FRAME = 1 / 24


def close_to(color: np.ndarray, expected: tuple[int, int, int], tolerance: int = 30) -> bool:
    return bool(np.all(np.abs(color.astype(int) - np.array(expected)) <= tolerance))


@pytest.fixture(scope="module")
def episode(takes, tmp_path_factory):
    """Three takes (two sizes, one at 30 fps, one silent), both cards and 0.5 s crossfades."""
    plan = Plan(
        scenes=takes.scenes(),
        title_card="Episode 1 — Launch",
        end_card="Thanks for watching",
        card_seconds=1.0,
        crossfade=0.5,
        **SIZE,
    )
    out = tmp_path_factory.mktemp("cut") / "episode.mp4"
    seen: list[float] = []
    cut = render(plan, out, progress=seen.append)
    return plan, cut, read_streams(out), out, seen


def test_the_cut_lasts_the_takes_plus_the_cards_less_the_crossfades(episode):
    _, cut, streams, _, _ = episode

    expected = 1.0 + (2.0 + 1.5 + 2.5) + 1.0 - 2 * 0.5
    assert cut.duration == pytest.approx(expected, abs=FRAME)
    assert streams.video_seconds == pytest.approx(expected, abs=FRAME)
    assert len(streams.frames) == round(expected * 24)


def test_the_cut_is_one_size_and_frame_rate_whatever_the_takes_were(episode):
    _, _, streams, _, _ = episode

    assert (streams.width, streams.height, streams.fps) == (192, 108, 24)
    assert {frame.shape for frame in streams.frames} == {(108, 192, 3)}


def test_the_cut_is_an_mp4_a_browser_plays_while_it_loads(episode):
    _, _, streams, out, _ = episode

    assert (streams.video_codec, streams.pix_fmt) == ("h264", "yuv420p")
    assert streams.audio_codec == "aac"
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart


def test_the_sound_is_stereo_and_as_long_as_the_pictures(episode):
    _, cut, streams, _, _ = episode

    assert (streams.channels, streams.sample_rate) == (2, 48000)
    assert streams.audio_seconds == pytest.approx(cut.duration, abs=FRAME)


def test_cards_and_scenes_follow_each_other_in_order(episode):
    _, cut, streams, _, _ = episode
    red_start, green_start, blue_start = cut.scene_starts

    card = streams.frame_at(0.5)
    assert card.mean() < 60  # the dark card ...
    assert card.max() > 180  # ... with light text on it
    assert close_to(streams.frame_at(red_start + 0.6)[54, 96], RED)
    assert close_to(streams.frame_at(green_start + 0.75)[54, 96], GREEN)
    assert close_to(streams.frame_at(blue_start + 1.5)[54, 96], BLUE)
    assert streams.frame_at(cut.duration - 0.5).mean() < 60


def test_a_crossfade_mixes_the_two_takes_half_way(episode):
    _, cut, streams, _, _ = episode
    middle = cut.chapters[1].start  # scene 2's chapter starts mid-crossfade

    mixed = streams.frame_at(middle)[54, 96].astype(int)
    halfway = (np.array(RED) + np.array(GREEN)) / 2
    assert np.all(np.abs(mixed - halfway) < 45)


def test_a_take_of_another_shape_is_fitted_inside_black_bars(episode):
    _, cut, streams, _, _ = episode
    portrait = streams.frame_at(cut.scene_starts[1] + 0.75)  # 120x160 into 192x108

    assert portrait[:, :40].max() < 40  # pillar-boxed: black at the sides
    assert portrait[:, -40:].max() < 40
    assert close_to(portrait[5, 96], GREEN)  # the take fills the height


def test_each_takes_own_sound_plays_and_a_take_without_any_is_silent(episode):
    _, cut, streams, _, _ = episode
    red_start, green_start, blue_start = cut.scene_starts

    assert streams.rms(0.1, 0.9) < 0.01  # the title card
    assert streams.rms(red_start + 0.2, red_start + 1.2) > 0.15  # a 0.3 amplitude tone
    assert streams.rms(green_start + 0.6, green_start + 0.9) > 0.15
    assert streams.rms(blue_start + 0.6, blue_start + 2.3) < 0.01


def test_progress_is_reported_by_frames_up_to_done(episode):
    *_, seen = episode

    assert len(seen) > 10
    assert seen == sorted(seen)
    assert 0 < seen[0] < 0.1
    assert seen[-1] == 1.0


def test_hard_cuts_without_cards_last_the_sum_of_the_takes(takes, tmp_path):
    plan = Plan(scenes=takes.scenes()[:2], **SIZE)

    cut = render(plan, tmp_path / "cut.mp4")

    streams = read_streams(tmp_path / "cut.mp4")
    assert cut.duration == pytest.approx(3.5)
    assert streams.video_seconds == pytest.approx(3.5, abs=FRAME)
    assert streams.audio_seconds == pytest.approx(3.5, abs=FRAME)


def test_a_dubbed_line_is_heard_at_its_cue_and_not_before(takes, tmp_path):
    silent = SceneClip(takes.blue, "Night", 1, "media/night.mp4")
    plan = Plan(
        scenes=(silent,),
        lines=(LineIn(0, "Who's there?", "Mina Okafor", start=1.0, audio=takes.speech),),
        **SIZE,
    )

    cut = render(plan, tmp_path / "cut.mp4")

    (cue,) = cut.cues
    assert (cue.start, cue.text, cue.speaker) == (1.0, "Who's there?", "Mina Okafor")
    assert cue.end == pytest.approx(1.8, abs=FRAME)  # the speech's own length
    streams = read_streams(tmp_path / "cut.mp4")
    assert streams.rms(0.0, 0.9) < 0.01
    assert streams.rms(1.05, 1.75) > 0.3  # a 0.5 amplitude tone
    assert streams.rms(1.9, 2.5) < 0.01


def test_burned_subtitles_change_the_bottom_of_the_picture_only_while_a_line_shows(takes, tmp_path):
    line = LineIn(0, "At dawn.", "Mina Okafor", start=0.5)  # on screen 0.5 to 1.7 s
    plain = Plan(scenes=(SceneClip(takes.red, "1", 1, "media/1.mp4"),), lines=(line,), **SIZE)
    burned = replace(plain, burn_subtitles=True)

    cut = render(plain, tmp_path / "plain.mp4")
    render(burned, tmp_path / "burned.mp4")

    (cue,) = cut.cues
    assert (cue.start, cue.end) == pytest.approx((0.5, 1.7), abs=FRAME)
    without = read_streams(tmp_path / "plain.mp4")
    with_text = read_streams(tmp_path / "burned.mp4")
    for seconds in (cue.start + 0.2, (cue.start + cue.end) / 2, cue.end - 0.2):
        difference = np.abs(
            with_text.frame_at(seconds).astype(int) - without.frame_at(seconds).astype(int)
        )
        assert difference[-30:].mean() > 10  # the text in the bottom band
        assert difference[:50].mean() < 2  # and nothing at the top
    for seconds in (0.2, cue.end + 0.2):
        difference = np.abs(
            with_text.frame_at(seconds).astype(int) - without.frame_at(seconds).astype(int)
        )
        assert difference.mean() < 2


def test_long_titles_and_emoji_are_wrapped_not_a_crash(takes, tmp_path):
    words = "A very long title with émojis 🚀🎬 and a Wordthatgoesonandonwithoutanyspaceatall " * 8
    plan = Plan(
        scenes=(SceneClip(takes.red, words, 1, "media/1.mp4"),),
        lines=(LineIn(0, words, "🙂 " * 40), LineIn(0, "\n\n\x00 line two \t")),
        title_card=words,
        end_card="🎬",
        card_seconds=0.5,
        burn_subtitles=True,
        **SIZE,
    )

    cut = render(plan, tmp_path / "cut.mp4")

    streams = read_streams(tmp_path / "cut.mp4")
    assert streams.video_seconds == pytest.approx(3.0, abs=FRAME)
    assert cut.cues[1].text == "line two"  # control characters gone, spaces trimmed
    assert streams.frame_at(0.25).max() > 180  # the card's text is drawn


def test_a_file_that_is_not_a_video_is_refused_in_plain_words(takes, tmp_path):
    notes = tmp_path / "take.mp4"
    notes.write_text("these are my notes, not a video")
    plan = Plan(
        scenes=(takes.scenes()[0], SceneClip(notes, "2. Rain", 2, "media/2.mp4")),
        **SIZE,
    )

    with pytest.raises(
        AssemblyError, match=r"^Scene 2's take is not a file we can read as media\.$"
    ):
        render(plan, tmp_path / "cut.mp4")
    assert not (tmp_path / "cut.mp4").exists()
    with pytest.raises(AssemblyError, match="not a file we can read"):
        probe(notes)


def test_a_sound_file_or_a_picture_as_a_take_is_refused(takes, tmp_path):
    from PIL import Image

    picture = tmp_path / "still.png"
    Image.new("RGB", (64, 48), RED).save(picture)

    with pytest.raises(AssemblyError, match=r"^The take has no video stream\.$"):
        probe(takes.speech)
    with pytest.raises(AssemblyError, match=r"^The take is a picture, not a video\.$"):
        probe(picture)
    with pytest.raises(AssemblyError, match=r"is missing"):
        probe(tmp_path / "gone.mp4")


def test_a_broken_line_audio_is_named(takes, tmp_path):
    bad = tmp_path / "line.mp3"
    bad.write_bytes(b"ID3 but nothing after it")
    plan = Plan(scenes=takes.scenes()[:1], lines=(LineIn(0, "Hi", audio=bad),), **SIZE)

    with pytest.raises(AssemblyError, match=r"^The dubbed speech of line 1 is not a file"):
        layout(plan)


def test_probe_gives_a_takes_length(takes):
    assert probe(takes.red) == pytest.approx(2.0, abs=FRAME)
    assert probe(takes.green) == pytest.approx(1.5, abs=1 / 30)


def test_a_crossfade_longer_than_a_scene_is_shortened_to_fit(takes, tmp_path):
    short = make_take(tmp_path / "short.mp4", seconds=0.5, color=GREEN)
    scenes = (takes.scenes()[0], SceneClip(short, "2", 2, "media/2.mp4"))

    cut = layout(Plan(scenes=scenes, crossfade=3.0, **SIZE))

    assert cut.crossfade == pytest.approx(0.25)  # half the shortest scene
    assert cut.duration == pytest.approx(2.0 + 0.5 - 0.25)


def test_an_episode_without_scenes_or_with_an_odd_size_is_refused(takes):
    with pytest.raises(AssemblyError, match="no scenes"):
        layout(Plan(scenes=()))
    with pytest.raises(AssemblyError, match="must be even"):
        layout(Plan(scenes=takes.scenes(), width=191, height=108))


def test_a_take_at_a_low_frame_rate_holds_each_frame_until_the_next(tmp_path):
    slow = make_take(tmp_path / "slow.mp4", size=(64, 36), fps=6, seconds=1.0, moving=True)
    plan = Plan(scenes=(SceneClip(slow, "1", 1, "media/1.mp4"),), width=64, height=36, fps=24)

    render(plan, tmp_path / "cut.mp4")

    frames = read_streams(tmp_path / "cut.mp4").frames
    assert len(frames) == 24
    changes = [
        index
        for index in range(1, 24)
        if np.abs(frames[index].astype(int) - frames[index - 1].astype(int)).mean() > 3
    ]
    assert changes == [4, 8, 12, 16, 20]  # six source frames, each held for four
