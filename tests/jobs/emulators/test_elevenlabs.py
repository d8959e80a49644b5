"""The ElevenLabs emulator speaks ElevenLabs' API as strictly as the real one: its key
header, paths, fields, limits and error bodies; real MP3 speech that lasts as long as its
words and sounds like its voice; a history of every synthesis."""

from __future__ import annotations

import httpx
import pytest

from tests.jobs.audio import ADAM, ANTONI, RACHEL, SARAH, pitch_of, seconds_of, voice_sample
from tests.support.emulators import emulator_control, emulator_state

KEY = {"xi-api-key": "sk-eleven-test"}
LINE = "The lamp turns over a grey sea, and the gulls cry out."


@pytest.fixture
def api(elevenlabs_emulator):
    with httpx.Client(base_url=elevenlabs_emulator.api_url, headers=KEY, timeout=30) as client:
        yield client


def _speak(api, text: str = LINE, voice: str = RACHEL, **body) -> httpx.Response:
    return api.post(
        f"/text-to-speech/{voice}",
        params={"output_format": "mp3_44100_128"},
        json={"text": text, "model_id": "eleven_multilingual_v2", **body},
    )


def _detail(response: httpx.Response) -> dict:
    return response.json()["detail"]


# --- Voices ----------------------------------------------------------------------------------


def test_the_premade_voices_have_elevenlabs_own_ids_and_a_preview_to_hear(api):
    response = api.get("/voices")

    assert response.status_code == 200
    voices = {v["voice_id"]: v for v in response.json()["voices"]}
    assert {voice_id: voices[voice_id]["name"] for voice_id in (RACHEL, SARAH, ADAM, ANTONI)} == {
        RACHEL: "Rachel",
        SARAH: "Sarah",
        ADAM: "Adam",
        ANTONI: "Antoni",
    }
    rachel = voices[RACHEL]
    assert rachel["category"] == "premade"
    assert rachel["labels"]["gender"] == "female"
    preview = httpx.get(rachel["preview_url"])  # a public file, like ElevenLabs' storage
    assert preview.headers["content-type"] == "audio/mpeg"
    assert seconds_of(preview.content) > 1


def test_a_voice_is_made_from_a_sample_and_sounds_like_it(api):
    high = api.post(
        "/voices/add",
        data={"name": "Mina"},
        files=[("files", ("mina.mp3", voice_sample(pitch=240), "audio/mpeg"))],
    )
    low = api.post(
        "/voices/add",
        data={"name": "Bram"},
        files=[("files", ("bram.mp3", voice_sample(pitch=100), "audio/mpeg"))],
    )

    assert high.status_code == 200, high.text
    assert set(high.json()) == {"voice_id", "requires_verification"}
    mina = api.get(f"/voices/{high.json()['voice_id']}").json()
    assert (mina["name"], mina["category"]) == ("Mina", "cloned")
    assert mina["samples"][0]["file_name"] == "mina.mp3"
    assert pitch_of(_speak(api, voice=high.json()["voice_id"]).content) > 1.6 * pitch_of(
        _speak(api, voice=low.json()["voice_id"]).content
    )


def test_a_sample_that_is_not_audio_makes_no_voice(api, elevenlabs_emulator):
    response = api.post(
        "/voices/add",
        data={"name": "Mina"},
        files=[("files", ("mina.mp3", b"ID3 but not really audio at all", "audio/mpeg"))],
    )

    assert response.status_code == 400
    assert _detail(response)["status"] == "invalid_audio_file"
    assert "mina.mp3" in _detail(response)["message"]
    assert emulator_state(elevenlabs_emulator)["cloned_voices"] == 0


def test_a_voice_needs_a_name_and_files(api):
    response = api.post("/voices/add", data={"description": "no name"}, files={"x": ("a", b"b")})

    assert response.status_code == 422
    assert [error["loc"] for error in _detail(response)] == [["body", "name"], ["body", "files"]]


# --- Synthesis -------------------------------------------------------------------------------


def test_speech_is_real_mp3_as_long_as_its_words_with_its_cost_and_history_headers(api):
    response = _speak(api)

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.content[:3] == b"ID3"
    assert seconds_of(response.content) == pytest.approx(len(LINE) / 14, abs=0.15)
    assert response.headers["character-cost"] == str(len(LINE))
    item = api.get(f"/history/{response.headers['history-item-id']}").json()
    assert item["request_id"] == response.headers["request-id"]
    assert (item["voice_id"], item["text"], item["model_id"]) == (
        RACHEL,
        LINE,
        "eleven_multilingual_v2",
    )
    assert item["character_count_change_to"] - item["character_count_change_from"] == len(LINE)


def test_a_word_lasts_at_least_six_tenths_of_a_second(api):
    assert seconds_of(_speak(api, text="No.").content) == pytest.approx(0.6, abs=0.1)


def test_each_voice_speaks_at_its_own_pitch(api):
    rachel, adam = pitch_of(_speak(api).content), pitch_of(_speak(api, voice=ADAM).content)

    assert rachel == pytest.approx(205, rel=0.15)
    assert adam == pytest.approx(102, rel=0.15)


def test_a_faster_voice_setting_makes_shorter_speech(api):
    fast = _speak(api, voice_settings={"speed": 1.2, "stability": 0.5})

    assert fast.status_code == 200, fast.text
    assert seconds_of(fast.content) == pytest.approx(len(LINE) / 14 / 1.2, abs=0.15)


def test_an_unknown_voice_is_elevenlabs_404(api, elevenlabs_emulator):
    response = _speak(api, voice="nope")

    assert response.status_code == 404
    assert response.json() == {
        "detail": {
            "status": "voice_not_found",
            "message": "A voice with the voice_id nope was not found.",
        }
    }
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 0


def test_multilingual_v2_speaks_at_most_5000_characters_and_flash_more(api):
    too_long = _speak(api, text="a" * 5001)
    flash = api.post(
        f"/text-to-speech/{RACHEL}", json={"text": "a" * 5001, "model_id": "eleven_flash_v2_5"}
    )

    assert too_long.status_code == 400
    assert _detail(too_long)["status"] == "max_character_limit_exceeded"
    assert flash.status_code == 200
    assert flash.headers["character-cost"] == "2501"  # half a credit a character


@pytest.mark.parametrize(
    ("body", "where", "kind"),
    [
        ({"model_id": "eleven_multilingual_v2"}, ["body", "text"], "missing"),
        ({"text": ""}, ["body", "text"], "string_too_short"),
        ({"text": 12}, ["body", "text"], "string_type"),
        ({"text": "Hi.", "voice": RACHEL}, ["body", "voice"], "extra_forbidden"),
        (
            {"text": "Hi.", "voice_settings": {"stability": 1.5}},
            ["body", "voice_settings", "stability"],
            "less_than_equal",
        ),
    ],
)
def test_a_malformed_body_is_a_422_naming_the_field(api, body, where, kind):
    response = api.post(f"/text-to-speech/{RACHEL}", json=body)

    assert response.status_code == 422
    (error,) = _detail(response)
    assert (error["loc"], error["type"]) == (where, kind)


def test_an_unknown_output_format_or_model_is_refused(api):
    wrong_format = api.post(
        f"/text-to-speech/{RACHEL}", params={"output_format": "ogg_1"}, json={"text": "Hi."}
    )
    wrong_model = api.post(f"/text-to-speech/{RACHEL}", json={"text": "Hi.", "model_id": "v9"})

    assert wrong_format.status_code == 422
    assert _detail(wrong_format)[0]["loc"] == ["query", "output_format"]
    assert wrong_model.status_code == 400
    assert _detail(wrong_model)["status"] == "model_not_found"


def test_pcm_is_raw_16_bit_samples_at_its_rate(api):
    response = api.post(
        f"/text-to-speech/{RACHEL}", params={"output_format": "pcm_16000"}, json={"text": LINE}
    )

    assert response.headers["content-type"] == "audio/pcm"
    assert len(response.content) / 2 / 16000 == pytest.approx(len(LINE) / 14, abs=0.01)


# --- Keys and faults -------------------------------------------------------------------------


def test_a_request_without_xi_api_key_needs_authorization(elevenlabs_emulator):
    bearer = {"Authorization": "Bearer sk-eleven-test"}  # not ElevenLabs' header
    response = httpx.get(f"{elevenlabs_emulator.api_url}/voices", headers=bearer)

    assert response.status_code == 401
    assert _detail(response)["status"] == "needs_authorization"


def test_a_wrong_key_is_invalid_api_key(api, elevenlabs_emulator):
    emulator_control(elevenlabs_emulator, "config", {"accepted_api_keys": ["sk-other"]})

    response = api.get("/voices")

    assert response.status_code == 401
    assert response.json() == {
        "detail": {"status": "invalid_api_key", "message": "Invalid API key"}
    }


def test_out_of_credits_is_a_401_quota_exceeded_and_busy_a_429(api, elevenlabs_emulator):
    emulator_control(
        elevenlabs_emulator,
        "faults",
        {"faults": [{"op": "create", "kind": "quota"}, {"op": "create", "kind": "429"}]},
    )

    quota, busy, spoken = _speak(api), _speak(api), _speak(api)

    assert (quota.status_code, _detail(quota)["status"]) == (401, "quota_exceeded")
    assert (busy.status_code, _detail(busy)["status"]) == (429, "too_many_concurrent_requests")
    assert spoken.status_code == 200
    assert emulator_state(elevenlabs_emulator)["syntheses"] == 1


# --- History ---------------------------------------------------------------------------------


def test_the_history_lists_each_synthesis_newest_first_and_pages(api):
    first, second = _speak(api, text="One."), _speak(api, text="Two.", voice=ADAM)

    page = api.get("/history", params={"page_size": 1}).json()
    rest = api.get(
        "/history",
        params={"page_size": 1, "start_after_history_item_id": page["last_history_item_id"]},
    ).json()
    adams = api.get("/history", params={"voice_id": ADAM}).json()

    assert [i["history_item_id"] for i in page["history"]] == [second.headers["history-item-id"]]
    assert page["has_more"] is True
    assert [i["history_item_id"] for i in rest["history"]] == [first.headers["history-item-id"]]
    assert rest["has_more"] is False
    assert [i["text"] for i in adams["history"]] == ["Two."]
    assert api.get("/history", params={"page_size": 1001}).status_code == 422


def test_a_history_items_audio_is_the_speech_it_answered(api):
    spoken = _speak(api)

    audio = api.get(f"/history/{spoken.headers['history-item-id']}/audio")

    assert audio.headers["content-type"] == "audio/mpeg"
    assert audio.content == spoken.content
    assert api.get("/history/nothing/audio").status_code == 404


def test_a_reset_forgets_clones_and_history_but_keeps_the_premade_voices(api, elevenlabs_emulator):
    api.post(
        "/voices/add",
        data={"name": "Mina"},
        files=[("files", ("mina.mp3", voice_sample(), "audio/mpeg"))],
    )
    _speak(api)

    emulator_control(elevenlabs_emulator, "reset", {})

    state = emulator_state(elevenlabs_emulator)
    assert (state["voices"], state["cloned_voices"], state["syntheses"]) == (4, 0, 0)
    assert api.get("/history").json()["history"] == []
