"""The character library through its pages: create, edit, references, delete, the list."""

from __future__ import annotations

import io
import os

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from characters import services
from characters.models import Character, ReferenceAsset
from studio.services import scene_create
from tests.factories import CharacterFactory, EpisodeFactory, SeriesFactory, WorkspaceFactory
from tests.samples import clip_bytes, gif_bytes, image_bytes
from tests.support.library import create_url, detail_url, list_url, upload_url
from tests.support.pages import messages_of

pytestmark = pytest.mark.django_db

RED = (200, 40, 40)
BLUE = (20, 40, 220)


# --- Helpers -------------------------------------------------------------------------------


def png(name: str = "front.png", color: tuple[int, int, int] = RED, size=(64, 48)):
    return SimpleUploadedFile(name, image_bytes("PNG", size=size, color=color), "image/png")


def clip(name: str = "turn.mp4"):
    return SimpleUploadedFile(name, clip_bytes(seconds=1.0), "video/mp4")


def noisy_png(name: str = "noise.png", side: int = 64):
    """A PNG of random pixels: it does not compress, so it takes about 3 bytes a pixel."""
    pixels = os.urandom(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), "image/png")


def stored(name: str) -> bool:
    return bool(name) and default_storage.exists(name)


def fetch(client, url: str):
    """GET a (possibly streamed) file and read it whole, so the file is closed."""
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def file_url(character, asset, variant: str) -> str:
    return reverse("asset_file", args=[character.workspace.slug, character.pk, asset.pk, variant])


def new_character(**fields) -> dict:
    return {"name": "Mina", "handle": "mina", "description": "Red scarf, round glasses."} | fields


@pytest.fixture
def character(workspace):
    return CharacterFactory(workspace=workspace, name="Mina", handle="mina")


@pytest.fixture
def with_assets(character, owner):
    """Mina with a red front image and a blue profile image."""
    front = services.asset_add(character=character, upload=png("front.png"), created_by=owner)
    profile = services.asset_add(
        character=character, upload=png("profile.png", color=BLUE), label="profile"
    )
    return character, front, profile


# --- Creating a character with references --------------------------------------------------


def test_it_creates_a_character_with_two_images_and_a_clip_from_the_page(
    owner_client, workspace, owner
):
    data = new_character(references=[png("front.png"), png("profile.png", color=BLUE), clip()])

    response = owner_client.post(create_url(workspace), data)

    character = Character.objects.get(workspace=workspace, handle="mina")
    assert response.status_code == 302
    assert response.url == detail_url(character)
    assert character.name == "Mina"
    assert character.description == "Red scarf, round glasses."
    assert character.created_by == owner
    assets = {asset.original_name: asset for asset in character.assets.all()}
    assert set(assets) == {"front.png", "profile.png", "turn.mp4"}
    front, profile, turn = assets["front.png"], assets["profile.png"], assets["turn.mp4"]
    assert (front.kind, front.content_type, front.width, front.height) == (
        "image",
        "image/png",
        64,
        48,
    )
    assert front.duration_seconds is None
    assert front.dominant_color == "#c82828"
    assert profile.dominant_color == "#1428dc"
    assert (turn.kind, turn.content_type, turn.width, turn.height) == ("clip", "video/mp4", 64, 48)
    assert turn.duration_seconds == pytest.approx(1.0, abs=0.1)
    assert turn.codec == "h264"
    assert turn.dominant_color.startswith("#")
    for asset in assets.values():
        assert asset.created_by == owner
        assert asset.size_bytes > 0
        assert stored(asset.file.name)
        assert stored(asset.thumbnail.name)
        assert asset.thumbnail.name.endswith(".jpg")
        assert f"workspaces/{workspace.pk}/characters/{character.pk}/" in asset.file.name
        with asset.thumbnail.open("rb") as thumbnail:
            assert Image.open(thumbnail).format == "JPEG"
    assert turn.file.name.endswith(".mp4")


def test_it_says_the_character_joined_and_lists_its_references_on_the_detail_page(
    owner_client, workspace
):
    data = new_character(references=[png("front.png"), clip("turn.mp4")])

    response = owner_client.post(create_url(workspace), data, follow=True)

    character = Character.objects.get(workspace=workspace, handle="mina")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Mina joined the library as @mina." in messages_of(response)
    assert "Red scarf, round glasses." in page
    for asset in character.assets.all():
        assert f'id="asset-{asset.pk}"' in page
        assert file_url(character, asset, "thumbnail") in page
        assert file_url(character, asset, "original") in page
    assert "front.png · 64×48" in page
    assert "turn.mp4 · 64×48 · 1.0 s" in page


def test_it_creates_a_character_without_references(owner_client, workspace):
    response = owner_client.post(create_url(workspace), new_character())

    character = Character.objects.get(workspace=workspace, handle="mina")
    assert response.status_code == 302
    assert not character.assets.exists()
    page = owner_client.get(detail_url(character)).content.decode()
    assert "No references yet." in page


def test_it_serves_the_thumbnail_and_the_original_to_a_member(client, members, with_assets):
    character, front, _profile = with_assets
    client.force_login(members["viewer"])

    thumbnail, thumbnail_body = fetch(client, file_url(character, front, "thumbnail"))
    original, original_body = fetch(client, file_url(character, front, "original"))

    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail_body)).format == "JPEG"
    assert original.status_code == 200
    assert original["Content-Type"] == "image/png"
    assert original_body == image_bytes("PNG", size=(64, 48), color=RED)


def test_it_serves_a_clip_original_as_video(owner_client, character):
    upload = clip()
    turn = services.asset_add(character=character, upload=upload)

    response, body = fetch(owner_client, file_url(character, turn, "original"))

    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    upload.seek(0)
    assert body == upload.read()


def test_it_hides_reference_files_from_an_outsider(client, members, with_assets):
    character, front, _profile = with_assets
    client.force_login(members["outsider"])

    for variant in ("thumbnail", "original"):
        assert client.get(file_url(character, front, variant)).status_code == 404


def test_it_hides_reference_files_from_an_outsider_asking_through_their_own_workspace(
    client, members, with_assets
):
    character, front, _profile = with_assets
    client.force_login(members["outsider"])
    own_slug = members["outsider"].memberships.get().workspace.slug

    url = reverse("asset_file", args=[own_slug, character.pk, front.pk, "original"])

    assert client.get(url).status_code == 404


def test_it_answers_404_for_an_unknown_variant(owner_client, with_assets):
    character, front, _profile = with_assets

    response = owner_client.get(file_url(character, front, "poster"))

    assert response.status_code == 404


def test_it_answers_404_for_an_asset_of_another_character(owner_client, workspace, with_assets):
    _character, front, _profile = with_assets
    other = CharacterFactory(workspace=workspace)

    response = owner_client.get(file_url(other, front, "original"))

    assert response.status_code == 404


# --- Refused files on the create form ------------------------------------------------------


REFUSED = [
    pytest.param(
        lambda: SimpleUploadedFile("wave.gif", gif_bytes(), "image/gif"),
        "wave.gif is a GIF image; use JPEG, PNG or WebP.",
        id="gif",
    ),
    pytest.param(
        lambda: SimpleUploadedFile("notes.png", b"just some text, not a picture\n", "image/png"),
        "notes.png is neither an image (JPEG, PNG, WebP) nor a video clip (MP4, MOV, WebM).",
        id="text-renamed-png",
    ),
]


@pytest.mark.parametrize(("make_file", "message"), REFUSED)
def test_it_refuses_a_bad_file_by_name_keeps_the_form_and_creates_nothing(
    owner_client, workspace, make_file, message
):
    data = new_character(
        name="Mina Park",
        description="Green coat, silver earrings.",
        references=[png("front.png"), make_file()],
    )

    response = owner_client.post(create_url(workspace), data)

    page = response.content.decode()
    assert response.status_code == 200
    assert message in page
    assert "Files are not kept after an error: choose them again." in page
    assert 'value="Mina Park"' in page
    assert 'value="mina"' in page
    assert "Green coat, silver earrings." in page
    assert not Character.objects.filter(workspace=workspace).exists()
    assert not ReferenceAsset.objects.exists()
    assert not default_storage.exists(f"workspaces/{workspace.pk}")


def test_it_names_every_refused_file_at_once(owner_client, workspace):
    data = new_character(
        references=[
            SimpleUploadedFile("wave.gif", gif_bytes(), "image/gif"),
            SimpleUploadedFile("empty.png", b"", "image/png"),
        ],
    )

    response = owner_client.post(create_url(workspace), data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "wave.gif is a GIF image" in page
    assert "empty.png is empty." in page
    assert not Character.objects.exists()


def test_it_names_a_refused_file_even_when_a_field_is_wrong_too(owner_client, workspace):
    data = new_character(
        handle="mina park", references=[SimpleUploadedFile("wave.gif", gif_bytes(), "image/gif")]
    )

    response = owner_client.post(create_url(workspace), data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "A handle is 2 to 40 lowercase letters, digits or underscores" in page
    assert "wave.gif is a GIF image; use JPEG, PNG or WebP." in page
    assert not Character.objects.exists()


def test_it_asks_for_the_required_fields_when_the_form_is_sent_empty(owner_client, workspace):
    response = owner_client.post(create_url(workspace), {})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("This field is required.") == 2  # name and handle
    assert not Character.objects.exists()


def test_it_refuses_an_oversized_file_while_it_streams_and_keeps_the_form(
    owner_client, workspace, settings
):
    settings.REFERENCE_IMAGE_MAX_BYTES = 4 * 1024
    settings.REFERENCE_CLIP_MAX_BYTES = 4 * 1024
    big = noisy_png("huge.png", side=64)
    assert big.size > 8 * 1024
    data = new_character(name="Mina Park", references=[png("front.png"), big])

    response = owner_client.post(create_url(workspace), data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "huge.png is larger than 4.0 KB, the most a reference file may be." in page
    assert 'value="Mina Park"' in page
    assert 'value="mina"' in page
    assert not Character.objects.exists()
    assert not ReferenceAsset.objects.exists()


def test_it_refuses_an_image_over_the_image_cap_that_passed_the_streaming_cap(
    owner_client, workspace, settings
):
    settings.REFERENCE_IMAGE_MAX_BYTES = 4 * 1024
    settings.REFERENCE_CLIP_MAX_BYTES = 100 * 1024  # the streaming cap is the larger one
    big = noisy_png("huge.png", side=64)

    response = owner_client.post(create_url(workspace), new_character(references=[big]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "huge.png is " in page
    assert "images may be at most 4.0 KB." in page
    assert not Character.objects.exists()


# --- Handles -------------------------------------------------------------------------------


def test_it_refuses_a_handle_already_used_in_the_workspace(owner_client, workspace, character):
    response = owner_client.post(create_url(workspace), new_character(name="Other"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "@mina is already used in this workspace." in page
    assert 'value="Other"' in page
    assert Character.objects.filter(workspace=workspace).count() == 1


def test_it_refuses_a_used_handle_typed_in_capitals(owner_client, workspace, character):
    response = owner_client.post(create_url(workspace), new_character(name="Other", handle="MINA"))

    assert response.status_code == 200
    assert "@mina is already used in this workspace." in response.content.decode()
    assert Character.objects.filter(workspace=workspace).count() == 1


def test_it_refuses_a_used_handle_without_storing_the_new_files(owner_client, workspace, character):
    data = new_character(name="Other", references=[png()])

    response = owner_client.post(create_url(workspace), data)

    assert response.status_code == 200
    assert not ReferenceAsset.objects.exists()
    assert not default_storage.exists(f"workspaces/{workspace.pk}")


def test_it_allows_the_same_handle_in_another_workspace(owner_client, workspace):
    CharacterFactory(workspace=WorkspaceFactory(), handle="mina")

    response = owner_client.post(create_url(workspace), new_character())

    assert response.status_code == 302
    assert Character.objects.filter(handle="mina").count() == 2
    assert Character.objects.filter(workspace=workspace, handle="mina").exists()


@pytest.mark.parametrize("handle", ["mina park", "mina-park", "m", "mína", "@mina"])
def test_it_explains_the_handle_rules_for_an_invalid_handle(owner_client, workspace, handle):
    response = owner_client.post(create_url(workspace), new_character(handle=handle))

    page = response.content.decode()
    assert response.status_code == 200
    assert "A handle is 2 to 40 lowercase letters, digits or underscores" in page
    assert not Character.objects.exists()


@pytest.mark.parametrize("typed", ["Mina", "MINA", "  Mina  "])
def test_it_lowercases_a_handle_typed_with_capitals(owner_client, workspace, typed):
    response = owner_client.post(create_url(workspace), new_character(handle=typed))

    assert response.status_code == 302
    assert Character.objects.get(workspace=workspace).handle == "mina"


def test_it_lowercases_a_handle_given_to_the_service_in_capitals(workspace):
    character = services.character_create(workspace=workspace, name="Mina", handle="Mina")

    assert character.handle == "mina"


@pytest.fixture
def racing_save(monkeypatch):
    """As if another request took the handle after our checks ran but before we saved."""
    monkeypatch.setattr(services, "_handle_taken", lambda **kwargs: False)
    monkeypatch.setattr(Character, "validate_constraints", lambda self, exclude=None: None)


@pytest.mark.usefixtures("racing_save")
def test_it_reports_a_handle_taken_by_a_concurrent_create_as_a_plain_error(workspace, character):
    with pytest.raises(ValidationError) as caught:
        services.character_create(workspace=workspace, name="Other", handle="mina")

    assert caught.value.message_dict == {"handle": ["@mina is already used in this workspace."]}
    assert Character.objects.filter(workspace=workspace).count() == 1


@pytest.mark.usefixtures("racing_save")
def test_it_reports_a_handle_taken_by_a_concurrent_edit_as_a_plain_error(workspace, character):
    jun = CharacterFactory(workspace=workspace, name="Jun", handle="jun")

    with pytest.raises(ValidationError) as caught:
        services.character_update(character=jun, name="Jun", handle="mina", description="")

    assert caught.value.message_dict == {"handle": ["@mina is already used in this workspace."]}
    jun.refresh_from_db()
    assert jun.handle == "jun"


# --- Editing and adding references ---------------------------------------------------------


def edit_url(character) -> str:
    return reverse("character_edit", args=[character.workspace.slug, character.pk])


def test_it_saves_an_edited_name_handle_and_description(owner_client, character):
    data = {"name": "Mina Park", "handle": "Mina_P", "description": "Now with a yellow hat."}

    response = owner_client.post(edit_url(character), data, follow=True)

    character.refresh_from_db()
    assert response.redirect_chain[-1][0] == detail_url(character)
    assert (character.name, character.handle, character.description) == (
        "Mina Park",
        "mina_p",
        "Now with a yellow hat.",
    )
    assert "Handle changed; 0 scenes updated." in messages_of(response)
    assert "Now with a yellow hat." in response.content.decode()


def test_it_keeps_its_own_handle_when_edited(owner_client, character):
    data = {"name": "Mina Park", "handle": "mina", "description": ""}

    response = owner_client.post(edit_url(character), data)

    assert response.status_code == 302
    character.refresh_from_db()
    assert character.name == "Mina Park"


def test_it_refuses_an_edit_to_a_handle_another_character_uses(owner_client, workspace, character):
    CharacterFactory(workspace=workspace, name="Jun", handle="jun")
    data = {"name": "Mina Park", "handle": "jun", "description": "x"}

    response = owner_client.post(edit_url(character), data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "@jun is already used in this workspace." in page
    assert "<h1>Edit Mina</h1>" in page  # the stored name, not the one being typed
    character.refresh_from_db()
    assert (character.name, character.handle) == ("Mina", "mina")


def test_it_adds_references_on_the_edit_page_only_when_all_pass(owner_client, character):
    data = {
        "name": "Mina Park",
        "handle": "mina",
        "description": "",
        "references": [png(), SimpleUploadedFile("wave.gif", gif_bytes(), "image/gif")],
    }

    response = owner_client.post(edit_url(character), data)

    assert response.status_code == 200
    assert "wave.gif is a GIF image" in response.content.decode()
    character.refresh_from_db()
    assert character.name == "Mina"
    assert not character.assets.exists()


def test_it_adds_good_references_and_names_the_bad_ones_from_the_detail_page(
    owner_client, character
):
    data = {
        "label": "angles",
        "references": [
            png("front.png"),
            SimpleUploadedFile("wave.gif", gif_bytes(), "image/gif"),
            clip("turn.mp4"),
        ],
    }

    response = owner_client.post(upload_url(character), data, follow=True)

    assert response.redirect_chain[-1][0] == detail_url(character)
    notes = messages_of(response)
    assert "2 references added." in notes
    assert "wave.gif is a GIF image; use JPEG, PNG or WebP." in notes
    assets = list(character.assets.all())
    assert sorted(asset.original_name for asset in assets) == ["front.png", "turn.mp4"]
    assert {asset.label for asset in assets} == {"angles"}
    for asset in assets:
        assert stored(asset.file.name)
        assert stored(asset.thumbnail.name)
    page = response.content.decode()
    assert page.count("angles · 64×48") == 2


def test_it_says_one_reference_added_in_the_singular(owner_client, character):
    response = owner_client.post(upload_url(character), {"references": [png()]}, follow=True)

    assert "1 reference added." in messages_of(response)
    assert character.assets.count() == 1


def test_it_asks_for_a_file_when_the_upload_form_has_none(owner_client, character):
    response = owner_client.post(upload_url(character), {"label": "front"}, follow=True)

    assert "Choose at least one image or clip to upload, or give its web address." in messages_of(
        response
    )
    assert not character.assets.exists()


def test_it_reports_an_oversized_upload_from_the_detail_page_and_keeps_the_rest(
    owner_client, character, settings
):
    settings.REFERENCE_IMAGE_MAX_BYTES = 4 * 1024
    settings.REFERENCE_CLIP_MAX_BYTES = 4 * 1024
    data = {"references": [noisy_png("huge.png"), png("front.png")]}

    response = owner_client.post(upload_url(character), data, follow=True)

    notes = messages_of(response)
    assert "huge.png is larger than 4.0 KB, the most a reference file may be." in notes
    assert "1 reference added." in notes
    assert [asset.original_name for asset in character.assets.all()] == ["front.png"]


def test_it_reports_an_upload_of_only_oversized_files(owner_client, character, settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 4 * 1024
    settings.REFERENCE_CLIP_MAX_BYTES = 4 * 1024

    response = owner_client.post(
        upload_url(character), {"references": [noisy_png("huge.png")]}, follow=True
    )

    notes = messages_of(response)
    assert notes == ["huge.png is larger than 4.0 KB, the most a reference file may be."]
    assert not character.assets.exists()


# --- Deleting references and characters ----------------------------------------------------


def asset_delete_url(character, asset) -> str:
    return reverse("asset_delete", args=[character.workspace.slug, character.pk, asset.pk])


def test_it_deletes_a_reference_and_its_files(owner_client, with_assets):
    character, front, profile = with_assets
    files = [front.file.name, front.thumbnail.name]

    response = owner_client.post(asset_delete_url(character, front), follow=True)

    assert response.redirect_chain[-1][0] == detail_url(character)
    assert "Reference removed." in messages_of(response)
    assert list(character.assets.all()) == [profile]
    assert not any(stored(name) for name in files)
    assert stored(profile.file.name)
    assert stored(profile.thumbnail.name)
    assert f'id="asset-{front.pk}"' not in response.content.decode()


def test_it_answers_htmx_with_an_empty_body_when_it_deletes_a_reference(owner_client, with_assets):
    character, front, _profile = with_assets
    files = [front.file.name, front.thumbnail.name]

    response = owner_client.post(asset_delete_url(character, front), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.content == b""
    assert not ReferenceAsset.objects.filter(pk=front.pk).exists()
    assert not any(stored(name) for name in files)


def test_it_answers_404_when_the_reference_is_already_gone(owner_client, with_assets):
    character, front, _profile = with_assets
    owner_client.post(asset_delete_url(character, front))

    assert owner_client.post(asset_delete_url(character, front)).status_code == 404


def test_it_deletes_a_character_and_all_its_files(owner_client, workspace, with_assets):
    character, front, profile = with_assets
    files = [front.file.name, front.thumbnail.name, profile.file.name, profile.thumbnail.name]
    assert all(stored(name) for name in files)
    url = reverse("character_delete", args=[workspace.slug, character.pk])

    confirm = owner_client.get(url)
    response = owner_client.post(url, follow=True)

    assert "Delete “Mina (@mina)”?" in confirm.content.decode()
    assert response.redirect_chain[-1][0] == reverse("character_list", args=[workspace.slug])
    assert "Mina was deleted." in messages_of(response)
    assert not Character.objects.filter(pk=character.pk).exists()
    assert not ReferenceAsset.objects.exists()
    assert not any(stored(name) for name in files)


# --- The library page ----------------------------------------------------------------------


def test_it_lists_characters_with_their_first_reference_as_the_card(owner_client, with_assets):
    character, front, profile = with_assets
    CharacterFactory(workspace=character.workspace, name="Jun", handle="jun")

    page = owner_client.get(list_url(character.workspace)).content.decode()

    assert "@mina" in page
    assert "@jun" in page
    assert file_url(character, front, "thumbnail") in page
    assert file_url(character, profile, "thumbnail") not in page
    assert "2 references · 0 scenes" in page
    assert "0 references · 0 scenes" in page


def test_it_invites_to_create_the_first_character_in_an_empty_library(owner_client, workspace):
    page = owner_client.get(list_url(workspace)).content.decode()

    assert "Create the first character" in page


def test_it_shows_a_viewer_the_library_without_the_new_character_button(
    client, members, workspace, character
):
    client.force_login(members["viewer"])

    page = client.get(list_url(workspace)).content.decode()

    assert "@mina" in page
    assert "New character" not in page


def add_characters(workspace, count: int) -> None:
    for _ in range(count):
        character = CharacterFactory(workspace=workspace)
        services.asset_add(character=character, upload=png())
        services.asset_add(character=character, upload=png("side.png", color=BLUE))


def library_queries(client, workspace) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(list_url(workspace))
    assert response.status_code == 200
    return len(queries)


def test_it_reads_the_library_in_the_same_number_of_queries_for_3_or_10_characters(
    owner_client, workspace
):
    add_characters(workspace, 3)
    with_three = library_queries(owner_client, workspace)
    add_characters(workspace, 7)

    with_ten = library_queries(owner_client, workspace)

    assert with_ten == with_three
    assert with_ten <= 8


def detail_queries(client, character) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(detail_url(character))
    assert response.status_code == 200
    return len(queries)


def test_it_reads_a_detail_page_in_the_same_number_of_queries_for_1_or_5_scenes(
    owner_client, workspace, with_assets
):
    character, _front, _profile = with_assets
    episode = EpisodeFactory(series=SeriesFactory(workspace=workspace))
    scene_create(episode=episode, prompt="@mina waves.")
    with_one = detail_queries(owner_client, character)
    for _ in range(4):
        scene_create(episode=EpisodeFactory(series=episode.series), prompt="@mina waves.")

    with_five = detail_queries(owner_client, character)

    assert with_five == with_one
