"""A series' cast page: the version of each character it is made with, a preview of what moving
the pin changes, and the move itself (owners and editors; another team's is a 404)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters.models import ReferenceAsset
from characters.services import asset_add, asset_delete, character_create, character_update
from studio import generation
from studio.models import SeriesCharacter
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast(workspace):
    """Mina used by a series (pinned to v1), then given a new outfit (v2)."""
    mina = character_create(
        workspace=workspace, name="Mina", handle="mina", description="Yellow raincoat."
    )
    asset_add(
        character=mina,
        upload=SimpleUploadedFile("raincoat.png", image_bytes(color=(242, 190, 34)), "image/png"),
    )
    series = SeriesFactory(workspace=workspace)
    scene = SceneFactory(episode=EpisodeFactory(series=series), prompt="@mina waves.", duration=5)
    generation.take_create(
        scene=scene, account=ProviderAccountFactory(workspace=workspace, kind="seedance")
    )
    asset_add(
        character=mina,
        upload=SimpleUploadedFile("peacoat.png", image_bytes(color=(30, 45, 90)), "image/png"),
    )
    asset_delete(asset=ReferenceAsset.objects.get(original_name="raincoat.png"))
    character_update(character=mina, name="Mina", handle="mina", description="Navy peacoat.")
    return {"series": series, "mina": mina}


def _url(workspace, cast, name="series_cast", **query):
    args = [workspace.slug, cast["series"].pk]
    if name == "series_pin":
        args.append(cast["mina"].pk)
    url = reverse(name, args=args)
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_cast_page_shows_the_pin_and_the_newer_version(client, members, workspace, cast):
    client.force_login(members["viewer"])
    page = client.get(_url(workspace, cast)).content.decode()
    assert "Pinned to v1" in page
    assert "Latest is v2" in page
    assert "Use v2" not in page  # viewers cannot move pins


def test_the_preview_shows_what_moving_the_pin_changes(client, members, workspace, cast):
    client.force_login(members["editor"])
    page = client.get(_url(workspace, cast, "series_pin", version=2)).content.decode()
    assert "Make Mina as v2?" in page
    for shown in ("Yellow raincoat.", "Navy peacoat.", "Added in v2", "Not in v2"):
        assert shown in page
    added, removed = page.index("Added in v2"), page.index("Not in v2")
    assert added < page.index("peacoat.png") < removed < page.index("raincoat.png")
    # Looking changes nothing.
    assert SeriesCharacter.objects.get(series=cast["series"]).version.number == 1


def test_an_editor_moves_the_pin_and_the_next_take_uses_it(client, members, workspace, cast):
    client.force_login(members["editor"])
    response = client.post(_url(workspace, cast, "series_pin"), {"version": 2})
    assert response.status_code == 302
    assert SeriesCharacter.objects.get(series=cast["series"]).version.number == 2


@pytest.mark.parametrize(
    ("role", "status"), [("reviewer", 403), ("viewer", 403), ("outsider", 404)]
)
def test_only_editors_move_pins(client, members, workspace, cast, role, status):
    client.force_login(members[role])
    assert client.post(_url(workspace, cast, "series_pin"), {"version": 2}).status_code == status
    assert SeriesCharacter.objects.get(series=cast["series"]).version.number == 1


def test_a_version_that_does_not_exist_is_a_404(client, members, workspace, cast):
    client.force_login(members["owner"])
    assert client.get(_url(workspace, cast, "series_pin", version=9)).status_code == 404
    assert client.get(_url(workspace, cast, "series_pin", version="x")).status_code == 404


def test_the_character_page_lists_its_versions(client, members, workspace, cast):
    client.force_login(members["viewer"])
    page = client.get(
        reverse("character_detail", args=[workspace.slug, cast["mina"].pk])
    ).content.decode()
    assert 'id="version-2"' in page
    assert 'id="version-1"' in page
    assert "Description in v1" in page
