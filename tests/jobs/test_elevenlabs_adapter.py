"""The ElevenLabs adapter against its emulator over real HTTP: voices, speech, voices made
from samples, the history, and each of ElevenLabs' errors in the engine's words."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest

from jobs.providers.base import GenerationRequest, ProviderError
from jobs.providers.elevenlabs import ElevenLabsProvider
from jobs.providers.speech import SpeechRequest, VoiceSample
from tests.jobs.audio import ADAM, RACHEL, seconds_of, voice_sample, wav_sample
from tests.support.emulators import emulator_control, emulator_log, emulator_state

LINE = "Bring the boats in before the storm."


@pytest.fixture
def adapter(elevenlabs_emulator):
    with ElevenLabsProvider(base_url=elevenlabs_emulator.api_url, api_key="sk-eleven") as made:
        yield made


def _faults(emulator, *faults: dict) -> None:
    emulator_control(emulator, "faults", {"faults": list(faults)})


def test_it_lists_the_voices_with_their_category_and_preview(adapter):
    voices = {v.voice_id: v for v in adapter.list_voices()}

    assert voices[RACHEL].name == "Rachel"
    assert voices[RACHEL].category == "premade"
    assert voices[RACHEL].preview_url.endswith(f"/previews/{RACHEL}.mp3")


def test_it_speaks_once_and_says_what_it_cost_and_where_the_history_keeps_it(
    adapter, elevenlabs_emulator
):
    speech, sent = adapter.synthesize(SpeechRequest(text=LINE, voice_id=ADAM))

    assert sent == {
        "voice_id": ADAM,
        "text": LINE,
        "model_id": "eleven_multilingual_v2",
        "output_format": "mp3_44100_128",
    }
    assert speech.content_type == "audio/mpeg"
    assert seconds_of(speech.audio) == pytest.approx(len(LINE) / 14, abs=0.15)
    assert speech.credits == Decimal(len(LINE))
    (entry,) = emulator_log(elevenlabs_emulator, "create")
    assert entry["path"] == f"/v1/text-to-speech/{ADAM}"
    assert speech.item_id == entry["job_id"]
    (item,) = adapter.speech_history(since=int(time.time()) - 60)
    assert (item.item_id, item.voice_id, item.text, item.credits) == (
        speech.item_id,
        ADAM,
        LINE,
        Decimal(len(LINE)),
    )
    assert adapter.history_audio(item.item_id) == speech.audio


def test_the_history_since_a_time_and_for_a_voice(adapter):
    adapter.synthesize(SpeechRequest(text="Rachel's line.", voice_id=RACHEL))
    adapter.synthesize(SpeechRequest(text="Adam's line.", voice_id=ADAM))

    assert [i.text for i in adapter.speech_history(since=0, voice_id=ADAM)] == ["Adam's line."]
    assert adapter.speech_history(since=int(time.time()) + 3600) == []


def test_a_voice_made_from_a_sample_speaks_and_is_found_by_its_name(adapter):
    started = int(time.time()) - 5

    made = adapter.add_voice(VoiceSample(name="Mina", data=voice_sample(), filename="mina.mp3"))
    wav = adapter.add_voice(
        VoiceSample(name="Hum", data=wav_sample(), filename="hum.wav", content_type="audio/wav")
    )

    assert (made.name, made.category) == ("Mina", "cloned")
    assert wav.voice_id != made.voice_id
    assert adapter.find_voice(name="Mina", since=started).voice_id == made.voice_id
    assert adapter.find_voice(name="Mina", since=int(time.time()) + 60) is None
    speech, _ = adapter.synthesize(SpeechRequest(text=LINE, voice_id=made.voice_id))
    assert seconds_of(speech.audio) > 2


def test_a_sample_that_is_not_audio_is_refused_in_plain_words(adapter):
    with pytest.raises(ProviderError) as refused:
        adapter.add_voice(VoiceSample(name="Mina", data=b"not audio", filename="mina.mp3"))

    assert refused.value.kind == "invalid"
    assert refused.value.code == "invalid_audio_file"
    assert "could not be read as audio" in refused.value.message


@pytest.mark.parametrize(
    ("request_", "kind", "code", "words"),
    [
        (
            SpeechRequest(text=LINE, voice_id="gone"),
            "not_found",
            "voice_not_found",
            "no such voice",
        ),
        (
            SpeechRequest(text="a" * 5001, voice_id=RACHEL),
            "invalid",
            "max_character_limit_exceeded",
            "at most 5000 characters",
        ),
    ],
)
def test_a_refused_synthesis_says_why(adapter, elevenlabs_emulator, request_, kind, code, words):
    with pytest.raises(ProviderError) as refused:
        adapter.synthesize(request_)

    assert (refused.value.kind, refused.value.code) == (kind, code)
    assert words in refused.value.message
    assert refused.value.message.startswith("ElevenLabs")
    assert not refused.value.maybe_accepted
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 0


def test_a_wrong_key_is_auth(elevenlabs_emulator):
    emulator_control(elevenlabs_emulator, "config", {"accepted_api_keys": ["sk-right"]})
    with (
        ElevenLabsProvider(base_url=elevenlabs_emulator.api_url, api_key="sk-wrong") as adapter,
        pytest.raises(ProviderError) as refused,
    ):
        adapter.list_voices()

    assert refused.value.kind == "auth"
    assert refused.value.message == "ElevenLabs refused the API key: Invalid API key"


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ("quota", "quota", "quota_exceeded"),  # a 401 that is not about the key
        ("429", "rate_limit", "too_many_concurrent_requests"),
        ("503", "unavailable", "service_unavailable"),
    ],
)
def test_elevenlabs_failures_become_the_engines_kinds(
    adapter, elevenlabs_emulator, fault, kind, code
):
    _faults(elevenlabs_emulator, {"op": "create", "kind": fault})

    with pytest.raises(ProviderError) as failed:
        adapter.synthesize(SpeechRequest(text=LINE, voice_id=RACHEL))

    assert (failed.value.kind, failed.value.code) == (kind, code)
    assert not failed.value.maybe_accepted  # refused outright: safe to send again


def test_a_500_after_sending_may_have_been_spoken(adapter, elevenlabs_emulator):
    _faults(elevenlabs_emulator, {"op": "create", "kind": "500"})

    with pytest.raises(ProviderError) as failed:
        adapter.synthesize(SpeechRequest(text=LINE, voice_id=RACHEL))

    assert failed.value.kind == "unavailable"
    assert failed.value.maybe_accepted


def test_an_answer_lost_on_the_way_may_have_been_spoken_and_the_history_has_it(
    elevenlabs_emulator,
):
    _faults(elevenlabs_emulator, {"op": "create", "kind": "timeout", "timeout_seconds": 3})
    with ElevenLabsProvider(
        base_url=elevenlabs_emulator.api_url, api_key="sk-eleven", timeout=1
    ) as adapter:
        with pytest.raises(ProviderError) as failed:
            adapter.synthesize(SpeechRequest(text=LINE, voice_id=RACHEL))

        assert failed.value.maybe_accepted
        (item,) = adapter.speech_history(since=int(time.time()) - 60)
    assert (item.text, item.voice_id) == (LINE, RACHEL)


@pytest.mark.parametrize("status", ["system_busy", "too_many_concurrent_requests"])
def test_elevenlabs_busy_answers_are_rate_limits(adapter, status):
    # ElevenLabs' own overload answer, as it sends it (the emulator only sends the other).
    answer = httpx.Response(
        429,
        json={"detail": {"status": status, "message": "Please try again."}},
        request=httpx.Request("POST", "https://api.elevenlabs.io/v1/text-to-speech/x"),
    )

    with pytest.raises(ProviderError) as busy:
        adapter._answer(answer)

    assert (busy.value.kind, busy.value.code) == ("rate_limit", status)


def test_it_makes_no_video_and_says_so(adapter):
    request = GenerationRequest(prompt="A harbour.", seconds=4, size="1280x720")

    assert adapter.validate(request) == ["ElevenLabs makes speech, not video."]
    with pytest.raises(ProviderError, match="makes speech, not video"):
        adapter.submit(request)


def test_the_price_counts_credits_per_character_by_model():
    multilingual = ElevenLabsProvider(base_url="https://api.elevenlabs.io/v1", api_key="k")
    flash = ElevenLabsProvider(
        base_url="https://api.elevenlabs.io/v1", api_key="k", model="eleven_flash_v2_5"
    )

    assert multilingual.credits_for("a" * 101) == Decimal(101)
    assert flash.credits_for("a" * 101) == Decimal(51)
    assert multilingual.speech_problems("a" * 5001)
    assert flash.speech_problems("a" * 5001) == []
