"""A cut end to end on a real worker and Redis: one start makes an MP4 as long as its takes
and cards with its subtitles, chapters, contact sheet, timelines and handoff zip stored;
a silent scene's line is spoken at the ElevenLabs emulator over HTTP, mixed in, and
charged in the ledger."""

from __future__ import annotations

import io
import zipfile

import av
import opentimelineio as otio
import pytest
from PIL import Image

from jobs.models import JobKind, JobState, LedgerEntry
from studio import cuts
from studio.dialogue import scene_dialogue_set
from studio.models import Cut, LineReading
from tests.factories import CharacterFactory
from tests.support.cuts import (
    FPS,
    elevenlabs_account,
    episode_to_cut,
    give_voice,
    stored_bytes,
    wait_for_cut,
)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

FRAME = 1 / FPS


def _video_facts(data: bytes) -> tuple[float, bool, tuple[int, int]]:
    """(seconds, has sound, (width, height)) of an MP4."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        seconds = float(video.duration * video.time_base)
        return seconds, bool(container.streams.audio), (video.width, video.height)


@pytest.fixture
def speech(workspace):
    with elevenlabs_account(workspace) as account:
        yield account


def _timeline(cut: Cut) -> otio.schema.Timeline:
    return otio.adapters.read_from_string(
        stored_bytes(cut.timeline_otio.name).decode(), "otio_json"
    )


def test_one_start_assembles_the_selected_takes_into_an_mp4_with_everything_stored(
    workspace, celery_worker, owner
):
    episode = episode_to_cut(workspace, seconds=(1.0, 1.5))
    CharacterFactory(workspace=workspace, name="Mina Okafor", handle="mina")
    scene_dialogue_set(scene=episode.scenes.get(position=1), text="[0.2] @mina: Lights, there.")

    cut = cuts.cut_start(episode=episode, options=cuts.CutOptions(crossfade=0.25), user=owner)
    cut = wait_for_cut(cut)

    assert (cut.state, cut.message, cut.progress) == (Cut.State.DONE, "", 100)
    expected = cuts.CARD_SECONDS + 1.0 + 1.5 - 0.25 + cuts.CARD_SECONDS
    assert cut.duration == pytest.approx(expected, abs=FRAME)
    seconds, has_sound, size = _video_facts(stored_bytes(cut.video.name))
    assert seconds == pytest.approx(expected, abs=FRAME)
    assert (has_sound, size) == (True, (320, 180))

    vtt = stored_bytes(cut.subtitles_vtt.name).decode()
    assert vtt.startswith("WEBVTT")
    assert "<v Mina Okafor>Lights, there.</v>" in vtt
    assert "Mina Okafor: Lights, there." in stored_bytes(cut.subtitles_srt.name).decode()
    chapters = stored_bytes(cut.chapters_vtt.name).decode()
    assert "1. Launch" in chapters
    assert "2. The harbour" in chapters
    assert Image.open(io.BytesIO(stored_bytes(cut.contact_sheet.name))).format == "JPEG"

    takes = [s["take"] for s in cut.manifest["scenes"]]
    media = [f"media/scene-01-take-{takes[0]}.mp4", f"media/scene-02-take-{takes[1]}.mp4"]
    timeline = _timeline(cut)
    [video] = [track for track in timeline.tracks if track.name == "Video"]
    assert [clip.media_reference.target_url for clip in video.find_clips()] == media
    assert b"<xmeml" in stored_bytes(cut.timeline_fcpxml.name)
    assert b"SCN001" in stored_bytes(cut.timeline_edl.name)
    with zipfile.ZipFile(io.BytesIO(stored_bytes(cut.package.name))) as package:
        assert set(package.namelist()) == {
            *media,
            "episode.mp4",
            "episode.vtt",
            "episode.srt",
            "chapters.vtt",
            "contact-sheet.jpg",
            "episode.otio",
            "episode.xml",
            "episode.edl",
        }

    chapters = cuts.chapters_of(cut)
    assert [(c["title"], c["scene"]) for c in chapters] == [
        ("1. Launch", cut.manifest["scenes"][0]["scene"]),
        ("2. The harbour", cut.manifest["scenes"][1]["scene"]),
    ]
    assert chapters[0]["start"] == pytest.approx(cuts.CARD_SECONDS)


def test_a_silent_scenes_line_is_spoken_in_the_characters_voice_and_charged(
    workspace, celery_worker, fast_engine, speech, settings, wait_for_job, owner
):
    settings.JOBS_SUCCEEDED_TASKS = ("studio.tasks.cut_speech_finished",)
    episode = episode_to_cut(workspace, seconds=(1.5, 1.0))
    mina = CharacterFactory(workspace=workspace, name="Mina Okafor", handle="mina")
    give_voice(mina, speech)
    scene_dialogue_set(scene=episode.scenes.get(position=0), text="@mina: Dawn.")

    cut = cuts.cut_start(episode=episode, options=cuts.CutOptions(title_card=False), user=owner)
    assert cut.state == Cut.State.DUBBING

    reading = LineReading.objects.get()
    job = wait_for_job(reading.job)
    assert (job.kind, job.state) == (JobKind.SPEECH, JobState.SUCCEEDED)
    cut = wait_for_cut(cut)

    assert cut.state == Cut.State.DONE, cut.message
    assert cut.duration == pytest.approx(1.5 + 1.0 + cuts.CARD_SECONDS, abs=FRAME)
    charge = LedgerEntry.objects.get(job=job, kind=LedgerEntry.Kind.CHARGE)
    assert charge.amount > 0
    assert charge.scope == f"series:{episode.series_id}"
    [row] = cuts.cut_speech_charges(cut)
    assert (row.scene, row.speaker, row.text, row.new, row.charged) == (
        1,
        "Mina Okafor",
        "Dawn.",
        True,
        charge.amount,
    )
    # The speech travels with the handoff: its file in the zip, a dialogue track in the timeline.
    with zipfile.ZipFile(io.BytesIO(stored_bytes(cut.package.name))) as package:
        assert [n for n in package.namelist() if n.startswith("audio/")] == [
            "audio/scene-01-line-01.mp3"
        ]
    timeline = _timeline(cut)  # held: a timeline's tracks go with it
    assert "Dialogue" in [track.name for track in timeline.tracks]
    assert "<v Mina Okafor>Dawn.</v>" in stored_bytes(cut.subtitles_vtt.name).decode()
