"""Readings: a line spoken in its speaker's voice by a speech job at the voice's account,
reserved in the ledger, made once for the same words and voice, and made anew when either
changes. The job itself runs at the real ElevenLabs emulator over HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from characters.models import CharacterVersion
from characters.voices import character_voice_known
from jobs import engine
from jobs.models import Budget, JobKind, JobState, LedgerEntry, ProviderAccount
from jobs.requests import SPEECH
from jobs.services import budget_set
from studio.dialogue import scene_dialogue_set
from studio.generation import budget_scope_of, series_versions
from studio.models import LineReading
from studio.speech import (
    reading_for,
    reading_start,
    speaker_version,
    speech_quote,
    speech_request,
    voice_key,
)
from tests.factories import CharacterFactory, EpisodeFactory, SceneFactory, SeriesFactory
from tests.support.engine import elevenlabs_account_at

RACHEL = "21m00Tcm4TlvDq8ikWAM"
ADAM = "pNInz6obpgDQGcFmaJgB"


@pytest.fixture
def speech(workspace, elevenlabs_emulator) -> ProviderAccount:
    return elevenlabs_account_at(workspace, elevenlabs_emulator)


@pytest.fixture
def mina(workspace):
    character = CharacterFactory(workspace=workspace, name="Mina", handle="mina")
    CharacterVersion.objects.create(character=character, number=1, change="Created.")
    return character


@pytest.fixture
def scene(workspace, mina):
    series = SeriesFactory(workspace=workspace)
    scene = SceneFactory(episode=EpisodeFactory(series=series), prompt="@mina at the lamp.")
    scene_dialogue_set(scene=scene, text="[1] @mina: We launch at dawn.\n: The sea remembers.")
    return scene


def _spoken(scene):
    """(Mina's line, the off-screen line, Mina's version for the series)."""
    mina_line, narration = scene.lines.order_by("position")
    versions = series_versions(series=scene.episode.series, characters=[mina_line.character])
    return mina_line, narration, speaker_version(mina_line, versions)


def _voiced(mina, speech, voice_id: str = RACHEL, name: str = "Rachel") -> CharacterVersion:
    return character_voice_known(character=mina, account=speech, voice_id=voice_id, voice_name=name)


def _start(line, version):
    return reading_start(
        line=line, version=version, user=None, budget_scope=budget_scope_of(line.scene)
    )


# --- Who speaks, in which voice ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_speaker_is_the_series_version_and_nobody_speaks_off_screen(scene, mina):
    line, narration, version = _spoken(scene)
    assert speaker_version(line, {mina.pk: version}) == version
    assert version == mina.versions.get(number=1)
    assert speaker_version(narration, {mina.pk: version}) is None


@pytest.mark.django_db
def test_the_request_speaks_the_words_in_the_versions_voice(scene, mina, speech):
    version = _voiced(mina, speech)
    line, _, _ = _spoken(scene)
    request = speech_request(line, version)
    assert (request.kind, request.prompt, request.seconds, request.size) == (
        SPEECH,
        "We launch at dawn.",
        0,
        "",
    )
    assert [member.subject for member in request.cast] == [version.subject]
    assert request.voice == engine.Voice(
        subject=f"voice:character:{mina.pk}", name="Rachel", voice_id=RACHEL, sample=None
    )


@pytest.mark.django_db
def test_a_sample_voice_travels_as_an_audio_asset(scene, mina, speech):
    version = _voiced(mina, speech)
    version.voice_id = ""
    version.voice_sample.save("sample.wav", ContentFile(b"RIFF"), save=True)
    line, _, _ = _spoken(scene)
    voice = speech_request(line, version).voice
    assert voice.voice_id == ""
    assert voice.sample == engine.Asset(
        file=version.voice_sample.name, kind=engine.AUDIO, content_type="audio/wav"
    )


@pytest.mark.django_db
def test_the_voice_key_changes_with_the_account_the_voice_or_the_sample(mina, speech):
    version = _voiced(mina, speech)
    rachel = voice_key(version)
    adam = voice_key(_voiced(mina, speech, ADAM, "Adam"))
    version.voice_sample = "voices/one.mp3"
    one = voice_key(version)
    version.voice_sample = "voices/two.mp3"
    assert len({rachel, adam, one, voice_key(version)}) == 4


@pytest.mark.django_db
def test_a_quote_prices_the_words_at_the_voice_account(scene, mina, speech):
    version = _voiced(mina, speech)
    line, _, _ = _spoken(scene)
    quote = speech_quote(line, version)
    assert quote.account == speech
    assert quote.problems == []
    assert quote.estimate > 0


# --- Refusals, in plain words -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_speaker_without_a_voice_is_refused_saying_where_to_choose_one(scene, mina):
    line, _, version = _spoken(scene)
    with pytest.raises(ValidationError) as refused:
        _start(line, version)
    assert refused.value.messages == ["Mina has no voice yet: choose one on Mina's page."]
    assert not LineReading.objects.exists()


@pytest.mark.django_db
def test_a_switched_off_voice_account_is_refused(scene, mina, speech):
    version = _voiced(mina, speech)
    ProviderAccount.objects.filter(pk=speech.pk).update(enabled=False)
    version.refresh_from_db()
    line, _, _ = _spoken(scene)
    with pytest.raises(ValidationError) as refused:
        _start(line, version)
    assert "ElevenLabs is switched off, so Mina cannot speak" in refused.value.messages[0]


@pytest.mark.django_db
def test_a_reading_over_budget_lets_the_refusal_through_and_creates_nothing(
    scene, mina, speech, workspace
):
    version = _voiced(mina, speech)
    budget_set(
        workspace=workspace,
        scope=budget_scope_of(scene),
        cap=Decimal("0"),
        period=Budget.Period.MONTH,
        label="The series",
    )
    line, _, _ = _spoken(scene)
    with pytest.raises(engine.OverBudget):
        _start(line, version)
    assert not LineReading.objects.exists()


# --- Made once, made anew when the words or the voice change -----------------------------------


@pytest.mark.django_db
def test_a_reading_starts_a_speech_job_with_its_estimate_reserved(scene, mina, speech):
    version = _voiced(mina, speech)
    line, _, _ = _spoken(scene)
    reading = _start(line, version)
    job = reading.job
    assert (reading.line, reading.text, reading.voice_key) == (
        line,
        "We launch at dawn.",
        voice_key(version),
    )
    assert (job.kind, job.provider_account, job.state) == (JobKind.SPEECH, speech, JobState.PENDING)
    assert job.budget_scope == budget_scope_of(scene)
    assert job.routing["reason"] == "The character's voice."
    reserved = LedgerEntry.objects.get(job=job, kind=LedgerEntry.Kind.RESERVE)
    assert reserved.amount == job.cost_estimate > 0
    assert job.job_request.request.prompt == "We launch at dawn."


@pytest.mark.django_db
def test_the_same_words_in_the_same_voice_are_never_paid_twice(scene, mina, speech):
    version = _voiced(mina, speech)
    line, _, _ = _spoken(scene)
    first = _start(line, version)
    assert reading_for(line, version) == first  # still pending: it counts
    again = _start(line, version)
    assert again == first
    scene_dialogue_set(scene=scene, text="[2] @mina: We launch at dawn.")  # moved, same words
    line.refresh_from_db()
    assert _start(line, version) == first
    assert LineReading.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RESERVE).count() == 1


@pytest.mark.django_db
def test_new_words_make_a_new_reading(scene, mina, speech):
    version = _voiced(mina, speech)
    line, _, _ = _spoken(scene)
    first = _start(line, version)
    line.text = "We launch at noon."
    line.save()
    second = _start(line, version)
    assert second != first
    assert second.job.job_request.request.prompt == "We launch at noon."


@pytest.mark.django_db
def test_a_new_voice_makes_a_new_reading(scene, mina, speech):
    line, _, _ = _spoken(scene)
    first = _start(line, _voiced(mina, speech))
    second = _start(line, _voiced(mina, speech, ADAM, "Adam"))
    assert second != first
    assert second.job.job_request.request.voice.voice_id == ADAM


@pytest.mark.django_db
@pytest.mark.parametrize("state", [JobState.FAILED, JobState.CANCELLED])
def test_a_reading_whose_job_stopped_is_made_again(scene, mina, speech, state):
    version = _voiced(mina, speech)
    line, _, _ = _spoken(scene)
    first = _start(line, version)
    type(first.job).objects.filter(pk=first.job.pk).update(state=state)
    assert reading_for(line, version) is None
    assert _start(line, version) != first


def test_the_reading_is_spoken_at_the_emulator(
    fast_engine, celery_worker, wait_for_job, live_server, scene, mina, speech, elevenlabs_emulator
):
    fast_engine.PUBLIC_BASE_URL = live_server.url
    version = _voiced(mina, speech)
    line, _, _ = _spoken(scene)
    reading = _start(line, version)
    job = wait_for_job(reading.job)
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.audio
    assert [item.text for item in elevenlabs_emulator.app.history.values()] == [
        "We launch at dawn."
    ]
