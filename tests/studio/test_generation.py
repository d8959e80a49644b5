"""Compiling a scene for a provider: mentions, style guide, price, and plain refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from characters.services import asset_add
from jobs.models import Job, Registration
from studio import generation
from studio.models import Take
from tests.factories import CharacterFactory, EpisodeFactory, SceneFactory, SeriesFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def series(workspace):
    return SeriesFactory(workspace=workspace, style_guide="Watercolour, teal and amber.")


@pytest.fixture
def openai(workspace):
    return ProviderAccountFactory(workspace=workspace, kind="openai", model="sora-2")


@pytest.fixture
def relay(workspace):
    return ProviderAccountFactory(workspace=workspace, kind="sora_relay", model="")


def _character_with_clip(workspace, handle: str, seconds: float = 3.0):
    character = CharacterFactory(workspace=workspace, handle=handle, name=handle.title())
    asset_add(
        character=character,
        upload=SimpleUploadedFile(f"{handle}.mp4", clip_bytes(seconds=seconds), "video/mp4"),
    )
    return character


def _scene(series, prompt: str, **fields):
    return SceneFactory(episode=EpisodeFactory(series=series), prompt=prompt, **fields)


def test_mentions_become_placeholders_and_the_style_guide_is_appended(workspace, series, openai):
    mina = _character_with_clip(workspace, "mina")
    scene = _scene(series, "@Mina waves.", duration=8, size="1280x720")
    compiled = generation.scene_compile(scene=scene, account=openai)
    assert compiled.problems == []
    assert compiled.request.prompt == (
        f"{{{{character:{mina.pk}}}}} waves.\n\nStyle: Watercolour, teal and amber."
    )
    (clip,) = compiled.fit.registration_clips  # OpenAI registers Mina from her clip
    assert (clip.subject, clip.asset.kind) == (f"character:{mina.pk}", "video")
    assert clip.asset.file.endswith(".mp4")
    assert compiled.estimate == Decimal("0.80")  # 8 s at $0.10


def test_the_relay_is_priced_per_video(workspace, series, relay):
    scene = _scene(series, "A quiet harbour.", duration=10, size="720x1280")
    assert generation.scene_compile(scene=scene, account=relay).estimate == Decimal("0.12")


def test_a_duration_the_provider_cannot_make_is_refused_not_changed(series, relay):
    scene = _scene(series, "A quiet harbour.", duration=8, size="720x1280")
    problems = generation.scene_compile(scene=scene, account=relay).problems
    assert problems == ["Sora relay makes videos of 5, 10, 15 seconds; this scene asks for 8."]


def test_a_pro_only_size_needs_a_pro_model(series, openai):
    scene = _scene(series, "Wide vista.", duration=4, size="1792x1024")
    problems = generation.scene_compile(scene=scene, account=openai).problems
    assert problems == ["1792x1024 needs a sora-2-pro model; this account uses sora-2."]


def test_too_many_characters_for_the_provider_is_refused(workspace, series, openai):
    for handle in ("ana", "ben", "cy"):
        _character_with_clip(workspace, handle)
    scene = _scene(series, "@ana @ben and @cy.", duration=4, size="1280x720")
    problems = generation.scene_compile(scene=scene, account=openai).problems
    assert "OpenAI takes at most 2 characters per video; this scene has 3." in problems


def test_a_character_without_a_clip_cannot_be_registered(workspace, series, openai):
    CharacterFactory(workspace=workspace, handle="pip", name="Pip")
    scene = _scene(series, "@pip swims.", duration=4, size="1280x720")
    problems = generation.scene_compile(scene=scene, account=openai).problems
    assert problems == [
        "Pip (@pip) has no reference clip of at least 2 s; OpenAI makes characters from a "
        "2-4 s clip. Add one in the character library."
    ]


def test_an_already_registered_character_needs_no_clip(workspace, series, openai):
    pip = CharacterFactory(workspace=workspace, handle="pip", name="Pip")
    Registration.objects.create(
        provider_account=openai, subject=f"character:{pip.pk}", external_id="char_1"
    )
    scene = _scene(series, "@pip swims.", duration=4, size="1280x720")
    compiled = generation.scene_compile(scene=scene, account=openai)
    assert compiled.problems == []
    assert compiled.fit.registration_clips == ()


def test_a_take_is_created_with_its_job_and_nothing_when_refused(series, openai, relay):
    scene = _scene(series, "A harbour.", duration=4, size="1280x720")
    take = generation.take_create(scene=scene, account=openai)
    assert take.job.state == "pending"
    assert take.job.cost_estimate == Decimal("0.40")
    with pytest.raises(ValidationError):
        generation.take_create(scene=scene, account=relay)
    assert Take.objects.count() == Job.objects.count() == 1


def test_another_workspaces_account_cannot_be_used(series):
    scene = _scene(series, "A harbour.", duration=4, size="1280x720")
    foreign = ProviderAccountFactory()
    with pytest.raises(ValidationError, match="not available"):
        generation.take_create(scene=scene, account=foreign)
