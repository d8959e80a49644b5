"""Character versions: a look that takes or series use never changes; editing it makes the next
version, and series keep making the version they are pinned to."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from characters.models import CharacterVersion, ReferenceAsset
from characters.services import (
    asset_add,
    asset_delete,
    character_create,
    character_update,
    character_version_latest,
)
from jobs.models import Registration
from studio import generation
from studio.models import SeriesCharacter
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import image_bytes

pytestmark = pytest.mark.django_db

YELLOW, BLUE = (242, 190, 34), (30, 45, 90)


def _picture(name: str, color) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, image_bytes(color=color, size=(96, 96)), "image/png")


@pytest.fixture
def mina(workspace):
    character = character_create(
        workspace=workspace, name="Mina", handle="mina", description="Yellow raincoat."
    )
    asset_add(character=character, upload=_picture("raincoat.png", YELLOW))
    return character


@pytest.fixture
def seedance(workspace):
    return ProviderAccountFactory(workspace=workspace, kind="seedance", model="")


def _scene(workspace, prompt="@mina waves at the ferry."):
    series = SeriesFactory(workspace=workspace)
    return SceneFactory(episode=EpisodeFactory(series=series), prompt=prompt, duration=5)


def _reference_files(scene, account) -> list[str]:
    quote = generation.scene_compile(scene=scene, account=account)
    assert quote.problems == []
    return [r.asset.file for r in quote.fit.references]


def _change_outfit(character):
    old = ReferenceAsset.current.get(character=character)
    asset_add(character=character, upload=_picture("peacoat.png", BLUE))
    asset_delete(asset=old)
    character_update(character=character, name="Mina", handle="mina", description="Navy peacoat.")


def test_a_new_character_starts_at_version_1_with_its_references(mina):
    (version,) = mina.versions.all()
    assert version.number == 1
    assert version.description == "Yellow raincoat."
    assert [a.original_name for a in version.assets.all()] == ["raincoat.png"]


def test_edits_before_anything_uses_a_version_change_it_in_place(mina):
    asset_add(character=mina, upload=_picture("profile.png", YELLOW))
    character_update(character=mina, name="Mina", handle="mina", description="Raincoat, scarf.")
    (version,) = mina.versions.all()
    assert version.description == "Raincoat, scarf."
    assert version.assets.count() == 2


def test_changing_the_outfit_of_a_used_look_makes_a_new_version_and_keeps_the_old(workspace, mina):
    TakeFactory(scene=_scene(workspace)).character_versions.add(character_version_latest(mina))

    _change_outfit(mina)

    old, new = CharacterVersion.objects.filter(character=mina).order_by("number")
    assert (old.number, new.number) == (1, 2)
    assert [a.original_name for a in old.assets.all()] == ["raincoat.png"]
    assert [a.original_name for a in new.assets.all()] == ["peacoat.png"]
    assert (old.description, new.description) == ("Yellow raincoat.", "Navy peacoat.")
    # The old picture is kept for v1 (retired), not offered as a current reference.
    retired = ReferenceAsset.objects.get(original_name="raincoat.png")
    assert retired.retired_at is not None
    assert retired.file.storage.exists(retired.file.name)
    assert list(ReferenceAsset.current.filter(character=mina)) == [
        ReferenceAsset.objects.get(original_name="peacoat.png")
    ]


def test_a_series_pinned_to_the_old_version_keeps_generating_the_old_look(
    workspace, mina, seedance
):
    scene = _scene(workspace)
    take = generation.take_create(scene=scene, account=seedance)
    (made_with,) = take.character_versions.all()
    assert made_with.number == 1
    assert SeriesCharacter.objects.get(series=scene.episode.series).version == made_with
    raincoat = ReferenceAsset.objects.get(original_name="raincoat.png").file.name

    _change_outfit(mina)

    # The pinned series still sends the raincoat...
    assert _reference_files(scene, seedance) == [raincoat]
    again = generation.take_create(scene=scene, account=seedance)
    assert [v.number for v in again.character_versions.all()] == [1]
    # ...and a series that first uses Mina now gets the peacoat (and pins v2).
    fresh = _scene(workspace)
    peacoat = ReferenceAsset.objects.get(original_name="peacoat.png").file.name
    assert _reference_files(fresh, seedance) == [peacoat]
    generation.take_create(scene=fresh, account=seedance)
    assert SeriesCharacter.objects.get(series=fresh.episode.series).version.number == 2


def test_moving_the_pin_makes_the_next_takes_with_the_new_version(workspace, mina, seedance):
    from studio.services import series_pin_set

    scene = _scene(workspace)
    generation.take_create(scene=scene, account=seedance)
    _change_outfit(mina)
    series_pin_set(series=scene.episode.series, version=mina.versions.get(number=2))

    take = generation.take_create(scene=scene, account=seedance)
    assert [v.number for v in take.character_versions.all()] == [2]
    peacoat = ReferenceAsset.objects.get(original_name="peacoat.png").file.name
    assert _reference_files(scene, seedance) == [peacoat]


def test_a_new_version_has_its_own_subject_so_it_registers_anew(workspace, mina):
    v1 = character_version_latest(mina)
    Registration.objects.create(
        provider_account=ProviderAccountFactory(workspace=workspace, kind="openai"),
        subject=v1.subject,
        external_id="char_old",
    )
    character_update(character=mina, name="Mina", handle="mina", description="Navy peacoat.")

    v2 = character_version_latest(mina)
    assert v1.subject == f"character:{mina.pk}"  # the name registrations had before versions
    assert v2.subject == f"character:{mina.pk}:v2"
    assert v2.number == 2  # the registration made v1 "in use"
    scene = _scene(workspace)
    quote = generation.scene_compile(
        scene=scene, account=ProviderAccountFactory(workspace=workspace, kind="openai")
    )
    assert [m.subject for m in quote.request.cast] == [v2.subject]


def test_removing_a_reference_nothing_else_keeps_deletes_its_file(mina):
    asset = ReferenceAsset.current.get(character=mina)
    name = asset.file.name
    asset_delete(asset=asset)
    assert not ReferenceAsset.objects.filter(pk=asset.pk).exists()
    assert not asset.file.storage.exists(name)
