"""The editor's handoff: the OTIO timeline, its FCP XML and EDL renderings, and the zip."""

from __future__ import annotations

import zipfile

import opentimelineio as otio
import pytest

from studio.assembly import (
    AssemblyError,
    LineIn,
    Plan,
    layout,
    media_files,
    package,
    timeline,
    timeline_files,
)


def seconds(time_range: otio.opentime.TimeRange) -> tuple[float, float]:
    return (time_range.start_time.to_seconds(), time_range.duration.to_seconds())


def flat(pairs) -> list[float]:
    return [value for pair in pairs for value in pair]


@pytest.fixture
def plan(takes):
    return Plan(
        scenes=takes.scenes(),
        lines=(
            LineIn(0, "Launch in ten.", "Mina Okafor", start=0.5, audio=takes.speech),
            LineIn(0, "Nine.", start=0.9, audio=takes.speech, media_name="audio/line-2.wav"),
            LineIn(2, "Only words, no speech."),
        ),
        crossfade=0.5,
        title_card="Episode 1 — Launch",
        end_card="The end",
        card_seconds=1.0,
    )


@pytest.fixture
def files(plan):
    return timeline_files(timeline(plan, layout(plan), name="Episode 1 — Launch"))


def test_the_otio_file_lists_the_scenes_in_order_with_what_each_take_gives(files):
    read = otio.adapters.read_from_string(files["episode.otio"].decode(), "otio_json")

    video = read.video_tracks()[0]
    clips = list(video.find_clips())
    assert read.name == "Episode 1 — Launch"
    assert [clip.name for clip in clips] == ["1. Launch day", "2. Rain", "Night falls"]
    assert [clip.media_reference.target_url for clip in clips] == [
        "media/scene-01-take-1.mp4",
        "media/scene-02-take-4.mp4",
        "media/scene-03-take-2.mp4",
    ]
    # Each take is used whole but for the half crossfades it lends its neighbours.
    assert flat(seconds(clip.source_range) for clip in clips) == pytest.approx(
        flat([(0.0, 1.75), (0.25, 1.0), (0.25, 2.25)])
    )
    transitions = [item for item in video if isinstance(item, otio.schema.Transition)]
    assert [(t.in_offset.to_seconds(), t.out_offset.to_seconds()) for t in transitions] == [
        (0.25, 0.25),
        (0.25, 0.25),
    ]
    assert [marker.name for clip in clips for marker in clip.markers] == [
        "1. Launch day",
        "2. Rain",
        "Night falls",
    ]
    assert video.duration().to_seconds() == pytest.approx(1.0 + 6.0 - 1.0 + 1.0)
    assert clips[0].metadata["castboard"]["source_url"] == "https://x/1"


def test_the_clips_sit_where_the_chapters_are(plan, files):
    chapters = layout(plan).chapters
    read = otio.adapters.read_from_string(files["episode.otio"].decode(), "otio_json")

    video = read.video_tracks()[0]
    placed = [seconds(video.range_of_child(clip)) for clip in video.find_clips()]
    assert flat(placed) == pytest.approx(flat((c.start, c.end - c.start) for c in chapters))


def test_dubbed_lines_are_on_dialogue_tracks_at_their_cues(plan, files):
    cut = layout(plan)
    read = otio.adapters.read_from_string(files["episode.otio"].decode(), "otio_json")

    dialogue = [track for track in read.audio_tracks() if track.name.startswith("Dialogue")]
    # The two lines overlap (0.5-1.3 s and 0.9-1.7 s into scene 1): one track each.
    assert [track.name for track in dialogue] == ["Dialogue", "Dialogue 2"]
    lines = [(track, clip) for track in dialogue for clip in track.find_clips()]
    assert [clip.media_reference.target_url for _, clip in lines] == [
        "audio/line.wav",
        "audio/line-2.wav",
    ]
    assert flat(seconds(track.range_of_child(clip)) for track, clip in lines) == pytest.approx(
        flat((s.start, s.end - s.start) for s in cut.speech), abs=1 / 24
    )
    takes_audio = next(track for track in read.audio_tracks() if track.name == "Takes audio")
    assert [clip.name for clip in takes_audio.find_clips()] == ["1. Launch day", "2. Rain"]


def test_the_fcp_xml_reads_back_with_the_scenes_in_order(files):
    read = otio.adapters.read_from_string(files["episode.xml"].decode(), "fcp_xml")

    clips = list(read.video_tracks()[0].find_clips())
    assert [clip.name for clip in clips] == ["1. Launch day", "2. Rain", "Night falls"]
    assert flat(seconds(clip.source_range) for clip in clips) == pytest.approx(
        flat([(0.0, 1.75), (0.25, 1.0), (0.25, 2.25)])
    )
    assert clips[0].media_reference.target_url.endswith("media/scene-01-take-1.mp4")


def test_the_edl_reads_back_with_a_reel_per_scene_and_dissolves(files):
    text = files["episode.edl"].decode()
    read = otio.adapters.read_from_string(text, "cmx_3600", rate=24)

    assert len(read.tracks) == 1
    track = read.tracks[0]
    clips = list(track.find_clips())
    assert [clip.name for clip in clips] == ["1. Launch day", "2. Rain", "Night falls"]
    assert [clip.metadata["cmx_3600"]["reel"] for clip in clips] == ["SCN001", "SCN002", "SCN003"]
    dissolves = [item for item in track if isinstance(item, otio.schema.Transition)]
    assert [d.metadata["cmx_3600"]["transition_duration"] for d in dissolves] == [12, 12]
    assert track.duration().to_seconds() == pytest.approx(6.0 - 1.0)
    assert text.startswith("TITLE: Episode 1 - Launch\n")  # plain ASCII, as EDL readers expect
    assert text.isascii()


def test_the_media_the_timeline_references_are_listed_by_their_names_in_it(plan, takes):
    assert media_files(plan, layout(plan)) == {
        "media/scene-01-take-1.mp4": takes.red,
        "media/scene-02-take-4.mp4": takes.green,
        "media/scene-03-take-2.mp4": takes.blue,
        "audio/line.wav": takes.speech,
        "audio/line-2.wav": takes.speech,
    }


def test_the_package_holds_every_file_with_media_stored_as_it_is(tmp_path, takes, files):
    zip_path = tmp_path / "episode.zip"

    package(
        zip_path,
        {
            "episode.mp4": takes.red,
            "media/scene-01-take-1.mp4": takes.red,
            "audio/line.wav": takes.speech,
            "episode.vtt": b"WEBVTT\n",
            **files,
        },
    )

    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        info = {item.filename: item for item in archive.infolist()}
        assert list(info) == [
            "episode.mp4",
            "media/scene-01-take-1.mp4",
            "audio/line.wav",
            "episode.vtt",
            "episode.otio",
            "episode.xml",
            "episode.edl",
        ]
        assert info["episode.mp4"].compress_type == zipfile.ZIP_STORED
        assert info["audio/line.wav"].compress_type == zipfile.ZIP_STORED
        assert info["episode.otio"].compress_type == zipfile.ZIP_DEFLATED
        assert archive.read("episode.mp4") == takes.red.read_bytes()
        assert archive.read("episode.otio") == files["episode.otio"]


@pytest.mark.parametrize("name", ["../escape.mp4", "/etc/passwd", "", "a/../../b"])
def test_the_package_refuses_names_that_leave_its_folder(tmp_path, name):
    with pytest.raises(AssemblyError, match="is not a name a file can have in the package"):
        package(tmp_path / "episode.zip", {name: b"x"})
    assert not (tmp_path / "episode.zip").exists()


def test_a_missing_file_leaves_no_half_written_package(tmp_path):
    with pytest.raises(AssemblyError, match="A file for the package is missing"):
        package(tmp_path / "episode.zip", {"a.txt": b"x", "b.mp4": tmp_path / "gone.mp4"})
    assert not (tmp_path / "episode.zip").exists()
