"""A voice per character version, chosen on the character's page: one of a speech account's
voices (listed by the real ElevenLabs emulator over HTTP), a typed voice id, or a short
sample checked by its content. Owners and editors only; another team's is a 404."""

from __future__ import annotations

import io
import math

import av
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters.models import CharacterVersion
from characters.services import character_revise
from characters.voices import character_voice_known
from jobs.models import ProviderAccount
from jobs.services import account_save
from studio.models import SeriesCharacter
from tests.factories import CharacterFactory, SeriesFactory, WorkspaceFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes
from tests.support.engine import elevenlabs_account_at
from tests.support.pages import visible_text

pytestmark = pytest.mark.django_db

RACHEL = "21m00Tcm4TlvDq8ikWAM"
ADAM = "pNInz6obpgDQGcFmaJgB"
HTMX = {"HX-Request": "true"}


def sound_bytes(seconds: float = 2.0, fmt: str = "mp3", codec: str = "libmp3lame") -> bytes:
    """A real encoded recording: a 220 Hz tone, `seconds` long."""
    rate = 22050
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.layout = "mono"
        count = int(seconds * rate)
        tone = np.sin(2 * math.pi * 220 * np.arange(count) / rate) * 8000
        pcm = tone.astype(np.int16)
        for start in range(0, count, 1152):
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + 1152].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


@pytest.fixture
def speech(workspace, elevenlabs_emulator) -> ProviderAccount:
    return elevenlabs_account_at(workspace, elevenlabs_emulator)


@pytest.fixture
def mina(workspace):
    character = CharacterFactory(workspace=workspace, name="Mina", handle="mina")
    CharacterVersion.objects.create(character=character, number=1, change="Created.")
    return character


def _url(character, **query) -> str:
    url = reverse("character_voice", args=[character.workspace.slug, character.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _current(character) -> CharacterVersion:
    return character.versions.order_by("-number").first()


# --- Choosing one of the account's voices ---------------------------------------------------


def test_the_page_lists_the_accounts_voices_on_request(owner_client, mina, speech):
    response = owner_client.get(_url(mina, account=speech.pk), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    assert f'<option value="{RACHEL}"' in page
    assert "Rachel (premade)" in page
    assert f'<option value="{ADAM}"' in page
    assert f'<input type="hidden" name="account" value="{speech.pk}">' in page


def test_without_javascript_the_voices_come_with_the_whole_page(owner_client, mina, speech):
    page = owner_client.get(_url(mina, account=speech.pk)).content.decode()
    assert "<html" in page
    assert "Rachel (premade)" in page


def test_the_character_page_itself_asks_the_provider_nothing(
    owner_client, mina, speech, elevenlabs_emulator
):
    owner_client.get(mina.get_absolute_url())
    assert elevenlabs_emulator.app.log.entries() == []


def test_picking_a_voice_sets_it_on_the_current_version_without_a_new_one(
    owner_client, mina, speech
):
    response = owner_client.post(_url(mina), {"account": speech.pk, "voice_id": RACHEL})
    assert response.status_code == 302
    assert response.url == f"{mina.get_absolute_url()}#voice"
    version = _current(mina)
    assert (version.number, version.voice_account, version.voice_id, version.voice_name) == (
        1,
        speech,
        RACHEL,
        "Rachel",
    )
    assert mina.versions.count() == 1
    page = owner_client.get(mina.get_absolute_url()).content.decode()
    assert "Mina speaks in Rachel at ElevenLabs." in visible_text(page)


def test_a_typed_voice_id_wins_over_the_list(owner_client, mina, speech):
    owner_client.post(
        _url(mina), {"account": speech.pk, "voice_id": RACHEL, "typed_voice_id": ADAM}
    )
    assert (_current(mina).voice_id, _current(mina).voice_name) == (ADAM, "Adam")


def test_a_voice_the_account_does_not_have_is_refused_keeping_what_was_typed(
    owner_client, mina, speech
):
    response = owner_client.post(_url(mina), {"account": speech.pk, "typed_voice_id": "nope123"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "ElevenLabs has no voice “nope123”: pick one from its list." in page
    assert 'value="nope123"' in page
    assert not _current(mina).has_voice


def test_a_provider_that_refuses_the_key_is_said_in_plain_words(
    owner_client, mina, speech, elevenlabs_emulator
):
    elevenlabs_emulator.app.configure(accepted_api_keys=["another-key"])
    response = owner_client.get(_url(mina, account=speech.pk), headers=HTMX)
    assert response.status_code == 200
    assert "ElevenLabs refused the API key" in response.content.decode()
    response = owner_client.post(_url(mina), {"account": speech.pk, "voice_id": RACHEL})
    assert response.status_code == 400
    assert "ElevenLabs refused the API key" in response.content.decode()
    assert not _current(mina).has_voice


def test_a_provider_that_is_down_is_said_in_plain_words(
    owner_client, mina, speech, elevenlabs_emulator
):
    elevenlabs_emulator.app.configure(outage=True)
    response = owner_client.get(_url(mina, account=speech.pk), headers=HTMX)
    assert response.status_code == 200
    assert "ElevenLabs could not list its voices just now" in response.content.decode()


def test_a_video_account_is_no_voice(owner_client, workspace, mina):
    openai = ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    response = owner_client.post(_url(mina), {"account": openai.pk, "voice_id": RACHEL})
    assert response.status_code == 400
    assert "OpenAI makes video, not speech" in response.content.decode()
    assert not _current(mina).has_voice


def test_removing_the_voice(owner_client, mina, speech):
    character_voice_known(character=mina, account=speech, voice_id=RACHEL, voice_name="Rachel")
    owner_client.post(_url(mina), {"remove": "1"})
    assert not _current(mina).has_voice


# --- Versions ------------------------------------------------------------------------------


def test_a_new_version_keeps_the_voice_and_each_version_row_shows_its_own(
    owner_client, mina, speech
):
    character_voice_known(character=mina, account=speech, voice_id=RACHEL, voice_name="Rachel")
    first = _current(mina)
    # A series is pinned to v1, so a change to the look makes v2.
    SeriesCharacter.objects.create(
        series=SeriesFactory(workspace=mina.workspace), character=mina, version=first
    )
    second = character_revise(character=mina, description="Blue coat.", change="New coat.")
    assert second.number == 2
    assert (second.voice_account, second.voice_id) == (speech, RACHEL)
    owner_client.post(_url(mina), {"account": speech.pk, "voice_id": ADAM})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.voice_id, second.voice_id) == (RACHEL, ADAM)
    text = visible_text(owner_client.get(mina.get_absolute_url()).content.decode())
    assert "v2 Latest" in text
    assert "Voice: Adam at ElevenLabs" in text
    assert "Voice: Rachel at ElevenLabs" in text


# --- Samples -------------------------------------------------------------------------------


def test_a_sample_is_kept_for_the_provider_to_make_a_voice_from(owner_client, mina, speech):
    upload = SimpleUploadedFile("mina.mp3", sound_bytes(3.0), "audio/mpeg")
    response = owner_client.post(_url(mina), {"account": speech.pk, "sample": upload})
    assert response.status_code == 302
    version = _current(mina)
    assert version.has_voice
    assert (version.voice_id, version.voice_name) == ("", "Mina")
    assert version.voice_sample.name.endswith(".mp3")
    with version.voice_sample.open("rb") as kept:
        assert kept.read() == upload.file.getvalue()
    page = owner_client.get(mina.get_absolute_url()).content.decode()
    assert "Mina speaks in a voice made from a sample at ElevenLabs." in visible_text(page)


@pytest.mark.parametrize(
    ("fmt", "codec", "extension"),
    [("wav", "pcm_s16le", "wav"), ("flac", "flac", "flac"), ("ipod", "aac", "m4a")],
)
def test_a_sample_in_another_audio_format_is_kept_as_what_it_is(
    owner_client, mina, speech, fmt, codec, extension
):
    upload = SimpleUploadedFile("voice.bin", sound_bytes(2.0, fmt, codec), "application/x-whatever")
    assert (
        owner_client.post(_url(mina), {"account": speech.pk, "sample": upload}).status_code == 302
    )
    assert _current(mina).voice_sample.name.endswith(f".{extension}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: sound_bytes(0.4), "mina.mp3 lasts 0.4 s; a voice sample lasts 1 to 60 s."),
        (lambda: sound_bytes(61.0), "mina.mp3 lasts 61.0 s; a voice sample lasts 1 to 60 s."),
        (lambda: b"", "mina.mp3 is empty."),
        (
            lambda: b"This is a note, not a recording." * 4,
            "mina.mp3 is not a sound recording we read (MP3, WAV, M4A, OGG, FLAC or WebM).",
        ),
        (lambda: clip_bytes(seconds=2.0), "mina.mp3 has no sound in it."),
        (
            # Measured by decoding, not by what the header says.
            lambda: sound_bytes(3.0)[:600],
            "mina.mp3 lasts 0.1 s; a voice sample lasts 1 to 60 s.",
        ),
        (
            lambda: b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(256)),
            "mina.mp3 looks like a sound recording but could not be read; it may be damaged "
            "or cut short.",
        ),
    ],
    ids=["too-short", "too-long", "empty", "text", "silent-video", "cut-short", "damaged"],
)
def test_a_sample_is_checked_by_its_content(owner_client, mina, speech, data, message):
    upload = SimpleUploadedFile("mina.mp3", data(), "audio/mpeg")
    response = owner_client.post(_url(mina), {"account": speech.pk, "sample": upload})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not _current(mina).has_voice


def test_a_sample_over_10_mb_is_refused_before_it_is_decoded(owner_client, mina, speech):
    data = b"ID3" + bytes(10 * 1024 * 1024)
    upload = SimpleUploadedFile("long.mp3", data, "audio/mpeg")
    response = owner_client.post(_url(mina), {"account": speech.pk, "sample": upload})
    assert response.status_code == 400
    assert (
        "long.mp3 is 10.0 MB; a voice sample may be at most 10.0 MB." in response.content.decode()
    )


# --- Who may ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_viewers_and_reviewers_see_the_voice_but_cannot_change_it(
    client, members, mina, speech, role
):
    character_voice_known(character=mina, account=speech, voice_id=RACHEL, voice_name="Rachel")
    client.force_login(members[role])
    page = client.get(mina.get_absolute_url()).content.decode()
    assert "Mina speaks in Rachel at ElevenLabs." in visible_text(page)
    assert 'id="voice-form"' not in page
    assert client.get(_url(mina, account=speech.pk)).status_code == 403
    response = client.post(_url(mina), {"account": speech.pk, "voice_id": ADAM})
    assert response.status_code == 403
    assert _current(mina).voice_id == RACHEL


def test_an_editor_may_choose_the_voice(client, members, mina, speech):
    client.force_login(members["editor"])
    assert client.post(_url(mina), {"account": speech.pk, "voice_id": ADAM}).status_code == 302
    assert _current(mina).voice_id == ADAM


def test_another_teams_character_is_a_404(client, members, speech):
    theirs = CharacterFactory(workspace=WorkspaceFactory(), handle="spy")
    client.force_login(members["owner"])
    url = reverse("character_voice", args=[speech.workspace.slug, theirs.pk])
    assert client.post(url, {"account": speech.pk, "voice_id": ADAM}).status_code == 404
    assert client.get(url).status_code == 404


def test_an_outsider_gets_a_404(client, members, mina, speech):
    client.force_login(members["outsider"])
    assert client.post(_url(mina), {"account": speech.pk, "voice_id": ADAM}).status_code == 404
    assert not _current(mina).has_voice


def test_another_teams_account_is_a_404(owner_client, mina, elevenlabs_emulator):
    theirs = account_save(
        account=ProviderAccount(
            workspace=WorkspaceFactory(),
            name="Their ElevenLabs",
            kind="elevenlabs",
            base_url=elevenlabs_emulator.api_url,
        ),
        api_key="xi-theirs-1234",
    )
    assert owner_client.get(_url(mina, account=theirs.pk)).status_code == 404
    response = owner_client.post(_url(mina), {"account": theirs.pk, "voice_id": ADAM})
    assert response.status_code == 404
    assert elevenlabs_emulator.app.log.entries() == []
    assert not _current(mina).has_voice


def test_a_speech_account_is_not_listed_where_the_character_travels(
    owner_client, workspace, mina, speech
):
    ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    page = owner_client.get(mina.get_absolute_url()).content.decode()
    travels = page[page.index("How it travels to each provider") : page.index("Scenes that")]
    assert "OpenAI" in travels
    assert "ElevenLabs" not in travels
