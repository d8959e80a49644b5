"""Cuts as services: the preflight (missing selections, lines to dub at a price, lines with no
voice, the length), starting a cut (numbered, its manifest, speech first or straight to
assembly, refused while a scene lacks a take or over budget), the worker's claim and lease,
failures in plain words, and a cut going stale when the episode changes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone

from characters.voices import character_voice_clear, character_voice_known
from jobs.models import Budget, Job, JobKind, JobState
from jobs.services import budget_set
from studio import cut_assembly, cuts, services, tasks
from studio.dialogue import scene_dialogue_set
from studio.models import Cut, LineReading, Take, TakeScore, series_scope
from tests.factories import CharacterFactory, SceneFactory, TakeFactory
from tests.jobs.factories import JobFactory, ProviderAccountFactory
from tests.support.cuts import FPS, episode_to_cut, give_voice, stored_bytes, take_with_video

pytestmark = pytest.mark.django_db

OPTIONS = cuts.CutOptions()  # title and end cards, no crossfade, subtitles as files


@pytest.fixture
def episode(workspace):
    return episode_to_cut(workspace, seconds=(1.0, 1.5))


@pytest.fixture
def speech(workspace):
    """An ElevenLabs account (quoting asks it nothing; tests/studio/test_cuts_assembly.py
    speaks through the emulator)."""
    return ProviderAccountFactory(
        workspace=workspace,
        name="ElevenLabs",
        kind="elevenlabs",
        base_url="http://127.0.0.1:9/v1",
        model="eleven_multilingual_v2",
    )


@pytest.fixture
def mina(workspace):
    return CharacterFactory(workspace=workspace, name="Mina Okafor", handle="mina")


def _scene(episode, number: int):
    return episode.scenes.get(position=number - 1)


# --- Preflight -------------------------------------------------------------------------------


def test_the_preflight_lists_each_scene_without_a_usable_selected_take(episode):
    unchosen = SceneFactory(episode=episode, title="Night")
    take_with_video(unchosen, _scene(episode, 1).takes.get().job.provider_account, seconds=1.0,
                    selected=False)  # fmt: skip
    failed = SceneFactory(episode=episode, title="Home")
    TakeFactory(scene=failed, state=JobState.FAILED, is_selected=True)

    preflight = cuts.cut_preflight(episode)

    assert not preflight.ready
    assert preflight.missing == [
        "Scene 3 has no selected take.",
        "Scene 4's selected take has no video.",
    ]
    assert [entry.take is not None for entry in preflight.scenes] == [True, True, False, False]


def test_an_episode_without_scenes_is_not_ready(workspace, episode):
    episode.scenes.all().delete()
    assert cuts.cut_preflight(episode).missing == ["The episode has no scenes yet."]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (cuts.CutOptions(), 1.0 + 1.5 + 2 * cuts.CARD_SECONDS),
        (cuts.CutOptions(title_card=False, end_card=False), 2.5),
        (cuts.CutOptions(title_card=False, end_card=False, crossfade=0.4), 2.1),
        # A crossfade takes at most half of the shortest take.
        (cuts.CutOptions(title_card=False, end_card=False, crossfade=2.0), 2.0),
    ],
)
def test_the_preflight_says_how_long_the_cut_will_be(episode, options, expected):
    assert cuts.cut_preflight(episode, options=options).duration == pytest.approx(expected)


def test_a_crossfade_longer_than_two_seconds_is_refused_in_plain_words():
    with pytest.raises(ValidationError, match="A crossfade lasts 0 to 2 seconds, not 3"):
        cuts.CutOptions(crossfade=3)


def test_lines_of_a_silent_take_are_dubbed_in_the_speakers_voice_at_a_price(episode, mina, speech):
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")

    preflight = cuts.cut_preflight(episode)

    [entry] = preflight.to_dub
    assert (entry.line.text, entry.speaker, entry.version.voice_id) == (
        "We launch at dawn.",
        "Mina Okafor",
        "21m00Tcm4TlvDq8ikWAM",
    )
    assert entry.quote.account == speech
    assert entry.quote.estimate > 0
    assert preflight.speech_cost == entry.quote.estimate
    assert preflight.undubbable == []


def test_lines_nobody_can_voice_are_listed_with_why_and_kept_as_subtitles(episode, mina):
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.\n: The sea waits.")

    preflight = cuts.cut_preflight(episode)

    assert preflight.to_dub == []
    assert [(e.line.text, e.problem) for e in preflight.undubbable] == [
        ("We launch at dawn.", "Mina Okafor has no voice yet: choose one on Mina Okafor's page."),
        ("The sea waits.", "A voice off screen has no voice to read it."),
    ]
    cut = cuts.cut_start(episode=episode, options=OPTIONS)
    assert [line["text"] for line in cut.manifest["lines"]] == [
        "We launch at dawn.",
        "The sea waits.",
    ]
    assert cut.state == Cut.State.RENDERING  # nothing to speak: straight to assembly


def test_lines_of_a_take_that_speaks_are_not_dubbed(workspace, mina, speech):
    kling = ProviderAccountFactory(workspace=workspace, name="Kling", kind="kling")
    assert kling.capabilities.audio
    episode = episode_to_cut(workspace, seconds=(1.0,), account=kling)
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")

    preflight = cuts.cut_preflight(episode)

    assert preflight.to_dub == []
    assert preflight.undubbable == []
    assert [entry.dub for entry in preflight.lines] == [False]


# --- Starting ---------------------------------------------------------------------------------


def test_a_cut_is_refused_while_a_scene_has_no_selected_take_and_nothing_is_made(episode):
    SceneFactory(episode=episode, title="Night")

    with pytest.raises(ValidationError) as refused:
        cuts.cut_start(episode=episode, options=OPTIONS)

    assert refused.value.messages == [
        "This episode cannot be assembled yet.",
        "Scene 3 has no selected take.",
    ]
    assert not Cut.objects.exists()


def test_cuts_are_numbered_per_episode_and_every_one_is_kept(workspace, episode, owner):
    first = cuts.cut_start(episode=episode, options=OPTIONS, user=owner)
    second = cuts.cut_start(
        episode=episode, options=cuts.CutOptions(crossfade=0.5, end_card=False), user=owner
    )
    other = cuts.cut_start(episode=episode_to_cut(workspace, seconds=(1.0,)), options=OPTIONS)

    assert (first.number, second.number, other.number) == (1, 2, 1)
    assert list(episode.cuts.values_list("number", flat=True)) == [2, 1]
    assert second.options == {
        "crossfade": 0.5,
        "title_card": True,
        "end_card": False,
        "burn_subtitles": False,
        "size": "320x180",
        "fps": FPS,
    }
    assert cuts.cut_current(episode) == second
    assert second.created_by == owner


def test_the_manifest_records_each_scenes_take_and_each_line(episode, mina):
    scene_dialogue_set(scene=_scene(episode, 2), text="[0.5] @mina: Lights on the water.")
    takes = [_scene(episode, n).takes.get() for n in (1, 2)]

    cut = cuts.cut_start(episode=episode, options=OPTIONS)

    assert cut.manifest["scenes"] == [
        {
            "scene": take.scene_id,
            "number": n,
            "title": title,
            "take": take.pk,
            "job": take.job_id,
            "video": take.job.video.name,
            "duration": seconds,
            "silent": True,
        }
        for n, (take, title, seconds) in enumerate(
            zip(takes, ["Launch", "The harbour"], [1.0, 1.5], strict=True), start=1
        )
    ]
    [line] = cut.manifest["lines"]
    assert {k: line[k] for k in ("text", "speaker", "start", "scene_index", "reading")} == {
        "text": "Lights on the water.",
        "speaker": "Mina Okafor",
        "start": 0.5,
        "scene_index": 1,
        "reading": None,
    }


def test_a_silent_scenes_lines_start_their_readings_and_the_cut_waits_for_them(
    episode, mina, speech, owner
):
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")

    cut = cuts.cut_start(episode=episode, options=OPTIONS, user=owner)

    reading = LineReading.objects.get()
    assert (reading.text, reading.job.kind, reading.job.provider_account) == (
        "We launch at dawn.",
        JobKind.SPEECH,
        speech,
    )
    assert reading.job.budget_scope == series_scope(episode.series_id)
    assert cut.state == Cut.State.DUBBING
    assert cut.manifest["lines"][0]["reading"] == reading.pk
    assert cuts.cut_status(cut) == "Making speech 0 of 1 line"
    # A second cut reuses the reading on its way: the line is not paid for twice.
    again = cuts.cut_start(episode=episode, options=OPTIONS, user=owner)
    assert LineReading.objects.count() == 1
    assert again.manifest["lines"][0] | {"new": None} == cut.manifest["lines"][0] | {"new": None}
    assert (cut.manifest["lines"][0]["new"], again.manifest["lines"][0]["new"]) == (True, False)


def test_speech_over_the_series_budget_starts_nothing_and_says_why(episode, mina, speech):
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")
    scene_dialogue_set(scene=_scene(episode, 2), text="@mina: And sleep at noon.")
    budget_set(
        workspace=episode.series.workspace,
        scope=series_scope(episode.series_id),
        cap=Decimal("0"),
        period=Budget.Period.MONTH,
        label="Harbour Lights",
    )

    with pytest.raises(ValidationError) as refused:
        cuts.cut_start(episode=episode, options=OPTIONS)

    [message] = refused.value.messages
    assert message.startswith("The speech for this cut was not started: This would cost about $")
    assert "Harbour Lights has $0.00 left this month" in message
    assert not Cut.objects.exists()
    assert not LineReading.objects.exists()
    assert not Job.objects.filter(kind=JobKind.SPEECH).exists()


# --- Dubbing, then assembly -------------------------------------------------------------------


def _dubbing_cut(episode, mina, speech) -> Cut:
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")
    return cuts.cut_start(episode=episode, options=OPTIONS)


def test_a_dubbing_cut_waits_until_every_reading_has_ended(episode, mina, speech):
    cut = _dubbing_cut(episode, mina, speech)
    job = LineReading.objects.get().job

    assert cuts.cuts_after_speech(job_id=job.pk) == []
    assert cuts.cuts_sweep()["continued"] == []
    job.move(JobState.RUNNING)
    assert not cuts.cut_continue(cut_id=cut.pk)

    job.move(JobState.FAILED, error_message="The voice was refused.")
    assert cuts.cuts_sweep()["continued"] == [cut.pk]
    cut.refresh_from_db()
    assert cut.state == Cut.State.RENDERING
    assert not cuts.cut_continue(cut_id=cut.pk)  # moved once only


def test_a_dubbing_cut_stops_waiting_for_a_line_deleted_meanwhile(episode, mina, speech):
    cut = _dubbing_cut(episode, mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="")  # its reading goes with the line

    assert cuts.cut_speech_progress(cut) == (1, 1)
    assert cuts.cuts_sweep()["continued"] == [cut.pk]
    done = cut_assembly.cut_assemble(cut_id=cut.pk)
    assert done.state == Cut.State.DONE
    assert cuts.cut_is_stale(done) == ["Scene 1's dialogue changed."]


def test_a_line_whose_speech_failed_is_assembled_as_a_subtitle_and_named(episode, mina, speech):
    cut = _dubbing_cut(episode, mina, speech)
    LineReading.objects.get().job.move(JobState.FAILED, error_message="The voice was refused.")
    cuts.cuts_sweep()

    done = cut_assembly.cut_assemble(cut_id=cut.pk)

    assert done.state == Cut.State.DONE
    assert done.message == (
        "Scene 1's line “We launch at dawn.” has no speech (ElevenLabs: The voice was "
        "refused.); its subtitle is in the cut. Assembling again asks for it again."
    )
    assert "We launch at dawn." in stored_bytes(done.subtitles_vtt.name).decode()
    # Assembling again asks for the line's speech again.
    cuts.cut_start(episode=episode, options=OPTIONS)
    assert LineReading.objects.count() == 2


def test_a_speech_job_of_no_take_is_no_drift_score_and_no_error(episode, mina, speech):
    _dubbing_cut(episode, mina, speech)
    job = LineReading.objects.get().job

    tasks.score_take(job.pk)

    assert not TakeScore.objects.exists()


# --- The worker's claim -----------------------------------------------------------------------


def test_a_second_delivery_of_an_assembly_does_nothing(episode):
    cut = cuts.cut_start(episode=episode, options=OPTIONS)

    done = cut_assembly.cut_assemble(cut_id=cut.pk, worker="first")
    names = {done.video.name, done.package.name}

    assert (done.state, done.progress) == (Cut.State.DONE, 100)
    assert cut_assembly.cut_assemble(cut_id=cut.pk, worker="second") is None
    done.refresh_from_db()
    assert done.claimed_by == "first"
    assert {done.video.name, done.package.name} == names


def test_a_worker_whose_cut_was_taken_over_stops_and_keeps_nothing(episode, monkeypatch):
    cut = cuts.cut_start(episode=episode, options=OPTIONS)
    render = cut_assembly.assembly.render

    def taken_over_while_rendering(plan, out, *, progress=None):
        # Another worker took the cut over (this one's lease lapsed mid-render).
        Cut.objects.filter(pk=cut.pk).update(claimed_by="other", claimed_at=timezone.now())
        return render(plan, out, progress=progress)

    monkeypatch.setattr(cut_assembly.assembly, "render", taken_over_while_rendering)

    assert cut_assembly.cut_assemble(cut_id=cut.pk, worker="first") is None
    cut.refresh_from_db()
    assert (cut.state, cut.claimed_by, cut.video.name) == (Cut.State.RENDERING, "other", "")
    assert not default_storage.exists(f"workspaces/{episode.series.workspace_id}/episodes")


def test_a_cut_claimed_by_a_live_worker_is_left_alone_and_taken_over_once_its_lease_lapses(
    episode, settings
):
    cut = cuts.cut_start(episode=episode, options=OPTIONS)
    Cut.objects.filter(pk=cut.pk).update(claimed_by="busy", claimed_at=timezone.now())

    assert cut_assembly.cut_assemble(cut_id=cut.pk, worker="second") is None
    assert cuts.cuts_sweep()["resent"] == []

    lapsed = timezone.now() - timedelta(seconds=settings.CUTS_LEASE_SECONDS + 1)
    Cut.objects.filter(pk=cut.pk).update(claimed_at=lapsed)
    assert cuts.cuts_sweep()["resent"] == [cut.pk]
    assert cut_assembly.cut_assemble(cut_id=cut.pk, worker="second").state == Cut.State.DONE


def test_the_sweep_sends_again_an_assembly_nobody_took(episode, settings):
    cut = cuts.cut_start(episode=episode, options=OPTIONS)
    assert cuts.cuts_sweep()["resent"] == []  # sent a moment ago: a worker may be on its way

    long_ago = timezone.now() - timedelta(seconds=settings.CUTS_SWEEP_AFTER_SECONDS + 1)
    Cut.objects.filter(pk=cut.pk).update(claimed_at=long_ago)

    assert cuts.cuts_sweep()["resent"] == [cut.pk]
    cut.refresh_from_db()
    assert cut.claimed_at > long_ago
    assert cut.claimed_by == ""


def test_a_take_whose_video_is_gone_fails_the_cut_in_plain_words_keeping_no_files(episode):
    cut = cuts.cut_start(episode=episode, options=OPTIONS)
    default_storage.delete(_scene(episode, 2).takes.get().job.video.name)

    failed = cut_assembly.cut_assemble(cut_id=cut.pk)

    assert failed.state == Cut.State.FAILED
    assert failed.message == "Scene 2's take is missing its video file."
    assert not failed.video
    assert not failed.package
    assert not default_storage.exists(f"workspaces/{episode.series.workspace_id}/episodes")


def test_an_unexpected_error_fails_the_cut_without_a_traceback(episode, monkeypatch):
    cut = cuts.cut_start(episode=episode, options=OPTIONS)

    def broken(*args, **kwargs):
        raise RuntimeError("codec exploded at frame 12")

    monkeypatch.setattr(
        cut_assembly.assembly, "contact_sheet", broken
    )  # outside our control: a codec
    failed = cut_assembly.cut_assemble(cut_id=cut.pk)

    assert failed.state == Cut.State.FAILED
    assert failed.message == cut_assembly.INTERNAL_ERROR
    assert "codec" not in failed.message
    assert not default_storage.exists(f"workspaces/{episode.series.workspace_id}/episodes")


# --- Stale -----------------------------------------------------------------------------------


@pytest.fixture
def cut(episode, mina):
    scene_dialogue_set(scene=_scene(episode, 2), text="@mina: Lights on the water.")
    return cut_assembly.cut_assemble(cut_id=cuts.cut_start(episode=episode, options=OPTIONS).pk)


def test_a_fresh_cut_is_not_stale(cut):
    assert cut.state == Cut.State.DONE
    assert cuts.cut_is_stale(cut) == []


def test_selecting_another_take_makes_the_cut_stale(episode, cut):
    scene = _scene(episode, 2)
    other = take_with_video(scene, scene.takes.get().job.provider_account, seconds=1.0,
                            selected=False)  # fmt: skip
    services.take_select(take=other)

    assert cuts.cut_is_stale(cut) == ["Scene 2's selected take changed since this cut."]


def test_changing_a_scenes_dialogue_makes_the_cut_stale(episode, cut):
    scene_dialogue_set(scene=_scene(episode, 2), text="@mina: Lights on the sea.")
    assert cuts.cut_is_stale(cut) == ["Scene 2's dialogue changed."]
    scene_dialogue_set(scene=_scene(episode, 2), text="@mina: Lights on the water.")
    assert cuts.cut_is_stale(cut) == []


def test_adding_deleting_and_moving_scenes_make_the_cut_stale(episode, cut):
    added = SceneFactory(episode=episode, title="Night")
    assert cuts.cut_is_stale(cut) == ["Scene 3 was added since this cut."]
    services.scene_delete(scene=added)
    services.scene_move(scene=_scene(episode, 2), to_position=0)
    assert cuts.cut_is_stale(cut) == ["The scenes were reordered since this cut."]
    services.scene_delete(scene=_scene(episode, 2))
    assert cuts.cut_is_stale(cut) == ["Scene 1 was deleted since this cut."]


def test_unselecting_a_take_makes_the_cut_stale(episode, cut):
    Take.objects.filter(scene=_scene(episode, 1)).update(is_selected=False)
    assert cuts.cut_is_stale(cut) == ["Scene 1's selected take changed since this cut."]


def test_another_voice_for_a_dubbed_speaker_makes_the_cut_stale(episode, mina, speech):
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")
    cut = cuts.cut_start(episode=episode, options=OPTIONS)  # dubbing: Mina speaks as Rachel
    assert cuts.cut_is_stale(cut) == []

    character_voice_known(
        character=mina, account=speech, voice_id="pNInz6obpgDQGcFmaJgB", voice_name="Adam"
    )
    assert cuts.cut_is_stale(cut) == ["Mina Okafor's voice changed since this cut."]
    character_voice_clear(character=mina)
    assert cuts.cut_is_stale(cut) == ["Mina Okafor's voice changed since this cut."]
    give_voice(mina, speech)
    assert cuts.cut_is_stale(cut) == []


def test_a_job_of_another_kind_is_ignored_after_speech(episode):
    job = JobFactory(provider_account=ProviderAccountFactory(workspace=episode.series.workspace))
    assert cuts.cuts_after_speech(job_id=job.pk) == []


def test_assembly_runs_beside_the_downloads_and_beat_sweeps_the_cuts(settings):
    from studio.project.celery import app

    route = app.amqp.router.route({}, cuts.ASSEMBLE_TASK, (1,), {})
    assert route["queue"].name == settings.CELERY_MEDIA_QUEUE
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "studio.tasks.sweep_cuts" in schedule
    assert {cuts.ASSEMBLE_TASK, "studio.tasks.sweep_cuts", "studio.tasks.cut_speech_finished"} <= (
        set(app.tasks)
    )
