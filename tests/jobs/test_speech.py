"""Speech jobs through the engine, as the studio makes them: quoted, routed only to speech
accounts, reserved against the budgets, claimed, spoken once by a real worker on a real
Redis at the ElevenLabs emulator over real HTTP, stored, charged once; and a synthesis
whose answer was lost found in the history instead of being paid for twice."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from jobs import engine, pipeline
from jobs.models import Budget, ErrorCode, Job, JobState, ProviderAccount, Registration
from jobs.providers import provider_for
from jobs.providers.speech import SpeechRequest
from tests.jobs.audio import ADAM, RACHEL, seconds_of, voice_sample
from tests.jobs.factories import ProviderAccountFactory
from tests.support.emulators import emulator_control, emulator_log, emulator_state
from tests.support.engine import elevenlabs_account_at

LINE = "Bring the boats in before the storm."
PER_CREDIT = Decimal("0.0003")  # the price book's line (jobs 0014)


def _speech(text: str = LINE, *, voice_id: str = RACHEL, sample: str = "") -> engine.JobRequest:
    """Mina's line, in a voice of ElevenLabs' own or one made from her sample."""
    voice = engine.Voice(
        subject="voice:character:1:v1",
        name="Mina",
        voice_id=voice_id,
        sample=engine.Asset(file=sample, kind=engine.AUDIO, content_type="audio/mpeg")
        if sample
        else None,
    )
    return engine.JobRequest(kind=engine.SPEECH, prompt=text, seconds=0, size="", voice=voice)


def _video() -> engine.JobRequest:
    return engine.JobRequest(kind=engine.GENERATE, prompt="A harbour.", seconds=4, size="1280x720")


def _stored_sample(pitch: float = 200) -> str:
    return default_storage.save("voices/mina.mp3", ContentFile(voice_sample(pitch=pitch)))


def _start(request: engine.JobRequest, account: ProviderAccount) -> Job:
    return engine.start(engine.quote(request, account), policy="manual", reason="By hand.")


def _ledger(job: Job) -> list[tuple[str, Decimal]]:
    return list(job.ledger_entries.order_by("pk").values_list("kind", "amount"))


@pytest.fixture
def speaker(workspace, elevenlabs_emulator):
    return elevenlabs_account_at(workspace, elevenlabs_emulator)


@pytest.fixture
def filmmaker(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")


@pytest.fixture
def worker(fast_engine, celery_worker):
    return celery_worker


# --- Quotes and routes ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_line_is_priced_at_a_credit_a_character(speaker):
    quote = engine.quote(_speech(), speaker)

    assert quote.problems == []
    assert quote.estimate == Decimal(len(LINE)) * PER_CREDIT


@pytest.mark.django_db
def test_speech_and_video_are_each_refused_where_they_are_not_made(speaker, filmmaker):
    assert engine.quote(_video(), speaker).problems == ["ElevenLabs makes speech, not video."]
    assert engine.quote(_speech(), filmmaker).problems == ["OpenAI makes video, not speech."]


@pytest.mark.django_db
def test_words_longer_than_the_model_speaks_at_once_are_refused_before_sending(speaker):
    problems = engine.quote(_speech("a" * 5001), speaker).problems

    assert problems == [
        "ElevenLabs (eleven_multilingual_v2) speaks at most 5,000 characters at a time; "
        "these words have 5,001. Split the line."
    ]


@pytest.mark.django_db
def test_a_scene_is_never_routed_to_a_speech_account_nor_a_line_to_a_video_one(speaker, filmmaker):
    accounts = [speaker, filmmaker]

    scene = engine.routes(_video(), accounts=accounts, policy="cost")
    line = engine.routes(_speech(), accounts=accounts, policy="characters")
    dubbing = engine.routes(None, accounts=accounts, policy="cost", output="speech", problems=["x"])

    assert scene.accounts == [filmmaker]
    assert [option.account_id for option, _ in scene.ranking.excluded] == []
    assert scene.chosen.account == filmmaker
    assert line.accounts == [speaker]
    assert line.chosen.account == speaker  # its speaker needs no saved character
    assert dubbing.accounts == [speaker]


# --- Voices ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_voice_picker_lists_the_accounts_voices(speaker):
    choices = {choice.voice_id: choice for choice in engine.voices(speaker)}

    assert choices[RACHEL].name == "Rachel"
    assert choices[RACHEL].category == "premade"
    assert choices[ADAM].preview_url.endswith(f"/previews/{ADAM}.mp3")


@pytest.mark.django_db
def test_the_voice_picker_says_plainly_why_it_has_no_voices(
    speaker, filmmaker, elevenlabs_emulator
):
    emulator_control(elevenlabs_emulator, "config", {"accepted_api_keys": ["sk-other"]})

    with pytest.raises(engine.ProviderError) as video:
        engine.voices(filmmaker)
    with pytest.raises(engine.ProviderError) as refused:
        engine.voices(speaker)

    assert video.value.message == "OpenAI makes video, not speech: it has no voices."
    assert refused.value.kind == "auth"
    assert refused.value.message == "ElevenLabs refused the API key: Invalid API key"


# --- Speaking --------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_line_is_spoken_once_stored_and_charged_what_elevenlabs_says(
    speaker, worker, elevenlabs_emulator, wait_for_job
):
    job = _start(_speech(), speaker)

    job = wait_for_job(job)

    assert job.state == JobState.SUCCEEDED, job.error_message
    with default_storage.open(job.audio.name, "rb") as stored:
        audio = stored.read()
    assert job.audio.name == f"workspaces/{job.workspace_id}/jobs/{job.pk}/speech.mp3"
    assert seconds_of(audio) == pytest.approx(len(LINE) / 14, abs=0.15)
    assert job.result["duration"] == pytest.approx(seconds_of(audio), abs=0.05)
    assert (job.result["characters"], job.result["content_type"], job.result["voice_id"]) == (
        len(LINE),
        "audio/mpeg",
        RACHEL,
    )
    (synthesis,) = emulator_log(elevenlabs_emulator, "create")
    assert job.provider_job_id == synthesis["job_id"]  # its history item
    price = Decimal(len(LINE)) * PER_CREDIT
    assert job.cost_actual == price
    assert _ledger(job) == [("reserve", price), ("release", price), ("charge", price)]
    assert job.prompt == LINE
    assert f"voice_id: {RACHEL}" in job.sent.inputs


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_voice_from_a_sample_is_made_once_per_account_and_reused(
    speaker, worker, elevenlabs_emulator, wait_for_job
):
    sample = _stored_sample()
    first = wait_for_job(_start(_speech("Ahoy.", voice_id="", sample=sample), speaker))
    second = wait_for_job(_start(_speech("Ahoy again.", voice_id="", sample=sample), speaker))

    assert (first.state, second.state) == (JobState.SUCCEEDED, JobState.SUCCEEDED)
    (registration,) = Registration.objects.all()
    assert (registration.subject, registration.source) == ("voice:character:1:v1", sample)
    assert first.result["voice_id"] == second.result["voice_id"] == registration.external_id
    state = emulator_state(elevenlabs_emulator)
    assert (state["cloned_voices"], state["syntheses"]) == (1, 2)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_voice_the_provider_lost_is_made_again(
    speaker, worker, elevenlabs_emulator, wait_for_job
):
    sample = _stored_sample()
    wait_for_job(_start(_speech("Ahoy.", voice_id="", sample=sample), speaker))
    emulator_control(elevenlabs_emulator, "reset", {})  # ElevenLabs forgets the clone

    job = wait_for_job(_start(_speech("Ahoy again.", voice_id="", sample=sample), speaker))

    assert job.state == JobState.SUCCEEDED, job.error_message
    old, new = Registration.objects.order_by("created_at")
    assert old.status == "failed"
    assert new.status == "active"
    assert job.result["voice_id"] == new.external_id
    assert emulator_state(elevenlabs_emulator)["cloned_voices"] == 1


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_sample_that_is_not_audio_fails_saying_so_and_nothing_is_spoken(
    speaker, worker, elevenlabs_emulator, wait_for_job
):
    sample = default_storage.save("voices/mina.mp3", ContentFile(b"ID3 not really a recording"))

    job = wait_for_job(_start(_speech(voice_id="", sample=sample), speaker))

    assert job.state == JobState.FAILED
    assert job.error_message.startswith("ElevenLabs could not make Mina's voice from its sample: ")
    assert "could not be read as audio" in job.error_message
    assert not Registration.objects.exists()
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 0
    assert _ledger(job)[-1] == ("charge", Decimal("0"))


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_voice_whose_answer_was_lost_is_found_by_its_name_not_made_twice(
    speaker, worker, elevenlabs_emulator, wait_for_job, settings
):
    settings.JOBS_PROVIDER_TIMEOUT_SECONDS = 1
    emulator_control(
        elevenlabs_emulator,
        "faults",
        {"faults": [{"op": "character", "kind": "timeout", "timeout_seconds": 2}]},
    )

    job = wait_for_job(_start(_speech(voice_id="", sample=_stored_sample()), speaker))

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert emulator_state(elevenlabs_emulator)["cloned_voices"] == 1
    (registration,) = Registration.objects.all()
    assert job.result["voice_id"] == registration.external_id


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_line_over_budget_is_refused_and_nothing_is_spoken(speaker, worker, elevenlabs_emulator):
    Budget.objects.create(workspace=speaker.workspace, scope="workspace", cap=Decimal("0.005"))

    with pytest.raises(engine.OverBudget) as over:
        _start(_speech(), speaker)

    assert "left this month" in over.value.message
    assert not Job.objects.exists()
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 0


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_an_unknown_voice_fails_in_plain_words_keeps_the_words_and_costs_nothing(
    speaker, worker, wait_for_job
):
    job = wait_for_job(_start(_speech(voice_id="gone"), speaker))

    assert (job.state, job.error_code) == (JobState.FAILED, ErrorCode.INVALID_REQUEST)
    assert job.error_message == (
        "ElevenLabs has no such voice: A voice with the voice_id gone was not found."
    )
    assert job.job_request.request.prompt == LINE
    assert _ledger(job)[-1] == ("charge", Decimal("0"))


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_busy_elevenlabs_is_waited_for_and_the_line_spoken_once(
    speaker, worker, elevenlabs_emulator, wait_for_job
):
    emulator_control(elevenlabs_emulator, "faults", {"faults": [{"op": "create", "kind": "429"}]})

    job = wait_for_job(_start(_speech(), speaker))

    assert job.state == JobState.SUCCEEDED, job.error_message
    statuses = [entry["status"] for entry in emulator_log(elevenlabs_emulator, "create")]
    assert statuses == [429, 200]
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 1


# --- Never paid twice ------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_synthesis_whose_answer_was_lost_is_taken_from_the_history_not_spoken_again(
    speaker, worker, elevenlabs_emulator, wait_for_job, settings
):
    settings.JOBS_PROVIDER_TIMEOUT_SECONDS = 1
    emulator_control(
        elevenlabs_emulator,
        "faults",
        {"faults": [{"op": "create", "kind": "timeout", "timeout_seconds": 2}]},
    )

    job = wait_for_job(_start(_speech(), speaker))

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 1
    (synthesis,) = emulator_log(elevenlabs_emulator, "create")
    assert synthesis.get("dropped") is True
    assert emulator_log(elevenlabs_emulator, "list"), "it looked in the history"
    assert job.provider_job_id == synthesis["job_id"]
    with default_storage.open(job.audio.name, "rb") as stored:
        assert seconds_of(stored.read()) == pytest.approx(len(LINE) / 14, abs=0.15)
    assert [kind for kind, _ in _ledger(job)] == ["reserve", "release", "charge"]


def _held(request: engine.JobRequest, account: ProviderAccount) -> Job:
    """A speech job the worker leaves alone (not due yet), for a test to play a crash on."""
    with transaction.atomic():
        job = _start(request, account)
        Job.objects.filter(pk=job.pk).update(not_before=timezone.now() + timedelta(days=1))
    Job.objects.filter(pk=job.pk).update(not_before=None)
    return job


def _dies_after_recording(job: Job, *, sent_at: float) -> SpeechRequest:
    """What a worker did before it died: claimed the job and recorded what it would send."""
    assert pipeline.claim_for_submit(job.pk) is not None
    request = SpeechRequest(text=LINE, voice_id=RACHEL)
    with provider_for(job.provider_account) as adapter:
        recorded = adapter.sent_payload(request)
    Job.objects.filter(pk=job.pk).update(sent_payload=recorded, result={"sent_at": sent_at})
    return request


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_died_after_sending_is_answered_from_the_history(
    speaker, worker, elevenlabs_emulator, wait_for_job
):
    job = _held(_speech(), speaker)
    request = _dies_after_recording(job, sent_at=time.time())
    # Its request reached ElevenLabs, which spoke the line; then the worker was killed.
    with provider_for(speaker) as adapter:
        spoken, _ = adapter.synthesize(request)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())  # its lease ran out

    job = wait_for_job(job)

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 1
    assert job.provider_job_id == spoken.item_id
    with default_storage.open(job.audio.name, "rb") as stored:
        assert stored.read() == spoken.audio
    assert job.cost_actual == Decimal(len(LINE)) * PER_CREDIT
    assert [kind for kind, _ in _ledger(job)] == ["reserve", "release", "charge"]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_send_the_history_does_not_have_is_waited_for_then_spoken_once(
    speaker, worker, elevenlabs_emulator, wait_for_job
):
    job = _held(_speech(), speaker)
    _dies_after_recording(job, sent_at=time.time())
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())

    pipeline.reconcile(job.pk)  # its send could still be under way: not spoken again yet

    job.refresh_from_db()
    assert job.state == JobState.UNKNOWN
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 0

    # Once its send could no longer be running, the history's silence means it never arrived.
    Job.objects.filter(pk=job.pk).update(
        result={"sent_at": time.time() - 3600}, next_poll_at=timezone.now()
    )
    job = wait_for_job(job)

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 1
    assert [kind for kind, _ in _ledger(job)] == ["reserve", "release", "charge"]
