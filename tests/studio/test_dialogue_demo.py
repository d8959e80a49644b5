"""The demo speaks: its characters have voices at the demo's ElevenLabs account, some scenes
have lines, and one of them goes to a provider that films without sound (so it is dubbed)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from characters.models import Character
from characters.services import character_version_latest
from studio.models import DialogueLine, Scene

pytestmark = pytest.mark.django_db


def test_the_demo_characters_speak_in_premade_voices_at_the_demo_elevenlabs_account():
    call_command("seed_demo")
    voices = {}
    for character in Character.objects.filter(workspace__slug="demo"):
        version = character_version_latest(character)
        assert version.has_voice, character.handle
        assert version.voice_account.kind == "elevenlabs"
        voices[character.handle] = version.voice_name
    assert voices == {"mina": "Rachel", "ilse": "Sarah", "pip": "Antoni"}


def test_the_demo_has_lines_and_a_scene_pinned_to_a_provider_without_sound():
    call_command("seed_demo")
    spoken = Scene.objects.filter(lines__isnull=False).distinct()
    assert spoken.count() >= 3
    warning = Scene.objects.get(episode__number=2, title="Warning")
    assert [str(line) for line in warning.lines.all()] == [
        "@ilse: Storm's coming in by midnight. Batten everything down.",
        "@mina: The lamp will hold.",
    ]
    assert warning.routing_policy == "pinned"
    assert warning.pinned_account.kind == "openai"
    assert not warning.pinned_account.capabilities.audio


def test_seeding_again_keeps_the_lines_and_voices_people_changed():
    call_command("seed_demo")
    lines = DialogueLine.objects.count()
    mina = Character.objects.get(workspace__slug="demo", handle="mina")
    version = character_version_latest(mina)
    version.voice_name, version.voice_id = "Adam", "pNInz6obpgDQGcFmaJgB"
    version.save()
    call_command("seed_demo")
    assert DialogueLine.objects.count() == lines
    assert character_version_latest(mina).voice_name == "Adam"
