"""Where scenes, cues and chapters fall in the cut, worked out without rendering."""

from __future__ import annotations

import pytest

from studio.assembly import AssemblyError, LineIn, Plan, layout

FRAME = 1 / 24


def test_scenes_follow_the_title_card_and_overlap_by_the_crossfade(takes):
    plan = Plan(scenes=takes.scenes(), title_card="Episode 1", card_seconds=2.0, crossfade=0.5)

    cut = layout(plan)

    assert cut.scene_starts == pytest.approx((2.0, 3.5, 4.5))
    assert cut.durations == pytest.approx((2.0, 1.5, 2.5))
    assert cut.duration == pytest.approx(2.0 + 6.0 - 1.0)
    assert cut.has_audio == (True, True, False)


def test_chapters_are_the_scenes_meeting_in_the_middle_of_each_crossfade(takes):
    cut = layout(Plan(scenes=takes.scenes(), crossfade=0.5, end_card="The end"))

    assert [(c.number, c.title) for c in cut.chapters] == [
        (1, "1. Launch day"),
        (2, "2. Rain"),
        (3, "Night falls"),
    ]
    assert [c.start for c in cut.chapters] == pytest.approx([0.0, 1.75, 2.75])
    assert [c.end for c in cut.chapters] == pytest.approx([1.75, 2.75, 5.0])
    assert cut.duration == pytest.approx(5.0 + 2.0)  # the end card after the last chapter


def test_lines_without_a_start_follow_each_other_from_just_after_the_scene_starts(takes):
    plan = Plan(
        scenes=takes.scenes(),
        lines=(
            LineIn(2, "Who's there?", "Mina Okafor", audio=takes.speech),
            LineIn(2, "Only me.", audio=takes.speech),
            LineIn(0, "Launch in ten.", start=1.0),
        ),
    )

    cut = layout(plan)

    night = cut.scene_starts[2]  # 3.5
    assert [(cue.text, cue.speaker) for cue in cut.cues] == [
        ("Launch in ten.", ""),
        ("Who's there?", "Mina Okafor"),
        ("Only me.", ""),
    ]
    first, second = cut.cues[1], cut.cues[2]
    assert first.start == pytest.approx(night + 0.3, abs=FRAME)
    assert first.end - first.start == pytest.approx(0.8, abs=FRAME)  # the speech's length
    assert second.start == pytest.approx(first.end + 0.2, abs=FRAME)


def test_a_line_without_speech_stays_for_its_reading_time(takes):
    plan = Plan(scenes=takes.scenes(), lines=(LineIn(0, "Hi."), LineIn(2, "x" * 30, start=0)))

    short, long = layout(plan).cues

    assert short.end - short.start == pytest.approx(1.2, abs=FRAME)  # the shortest cue
    assert long.end - long.start == pytest.approx(0.4 + 30 / 15, abs=FRAME)  # 15 characters/s


def test_a_cue_that_would_run_past_its_scene_moves_earlier_to_fit(takes):
    long_line = "This line is far too long to be read in what is left of the scene. " * 2
    plan = Plan(scenes=takes.scenes(), lines=(LineIn(1, long_line, start=1.4),))

    (cue,) = layout(plan).cues

    rain_start, rain_end = 2.0, 3.5
    assert rain_start <= cue.start < cue.end <= rain_end + 1e-9


def test_a_dubbed_line_lasts_as_long_as_its_speech(takes):
    plan = Plan(scenes=takes.scenes(), lines=(LineIn(0, "Go.", audio=takes.speech, start=0.5),))

    cut = layout(plan)

    (cue,) = cut.cues
    (speech,) = cut.speech
    assert cue.end - cue.start == pytest.approx(0.8, abs=FRAME)
    assert (speech.start, speech.end) == (cue.start, cue.end)
    assert speech.media_name == "audio/line.wav"


def test_a_line_for_a_scene_the_episode_lacks_is_refused(takes):
    plan = Plan(scenes=takes.scenes(), lines=(LineIn(5, "Hello"),))

    with pytest.raises(AssemblyError, match=r"^Line 1 belongs to no scene of this episode"):
        layout(plan)


def test_the_layout_summary_is_plain_data(takes):
    import json

    cut = layout(Plan(scenes=takes.scenes(), lines=(LineIn(0, "Hi"),)))

    summary = json.loads(json.dumps(cut.to_dict()))
    assert summary["duration"] == pytest.approx(6.0)
    assert [chapter["number"] for chapter in summary["chapters"]] == [1, 2, 3]
    assert summary["cues"][0]["text"] == "Hi"
