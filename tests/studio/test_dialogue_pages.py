"""Dialogue on the storyboard: typed in the card's form (htmx or a plain page), shown on the
card and the scene's page, refused with what was typed kept, and changed by editors only."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from studio.dialogue import scene_dialogue_set
from studio.models import Scene
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    WorkspaceFactory,
)
from tests.support.pages import is_fragment, visible_text

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace, default_duration=8))


@pytest.fixture
def mina(workspace):
    return CharacterFactory(workspace=workspace, handle="mina", name="Mina Okafor")


@pytest.fixture
def scene(episode):
    return SceneFactory(episode=episode, title="Pier", prompt="Gulls.", duration=8)


def _edit(client: Client, scene: Scene, dialogue: str | None, **fields) -> object:
    data = {"title": "Pier", "prompt": "Gulls.", "duration": 8, "size": "1280x720", **fields}
    if dialogue is not None:
        data["dialogue"] = dialogue
    url = reverse("scene_edit", args=[scene.episode.series.workspace.slug, scene.pk])
    return client.post(url, data, headers=HTMX)


def _lines(scene: Scene) -> list[tuple[str | None, str, float | None]]:
    return [
        (line.character.handle if line.character else None, line.text, line.start)
        for line in scene.lines.order_by("position")
    ]


def test_the_cards_form_holds_the_saved_dialogue_as_text(owner_client, scene, mina):
    scene_dialogue_set(scene=scene, text="[2.5] @mina: We launch at dawn.\n: Gulls cry.")
    url = reverse("scene_edit", args=[scene.episode.series.workspace.slug, scene.pk])
    page = owner_client.get(url, headers=HTMX).content.decode()
    assert 'name="dialogue"' in page
    assert ">\n[2.5] @mina: We launch at dawn.\n: Gulls cry.</textarea>" in page
    assert "is a voice off screen" in page  # the help text shows the syntax


def test_saving_dialogue_in_the_card_shows_the_lines_with_the_speakers_name(
    owner_client, scene, mina
):
    response = _edit(owner_client, scene, "[1.5] @mina: We launch at dawn.\n: The sea remembers.")
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert page.lstrip().startswith(f'<li class="scene-card card" id="scene-{scene.pk}"')
    text = visible_text(page)
    assert "1.5 s Mina Okafor We launch at dawn." in text
    assert "Off screen The sea remembers." in text
    assert _lines(scene) == [
        ("mina", "We launch at dawn.", 1.5),
        (None, "The sea remembers.", None),
    ]


def test_a_refused_dialogue_is_a_422_keeping_what_was_typed_and_saving_nothing(
    owner_client, scene, mina
):
    scene_dialogue_set(scene=scene, text="@mina: Kept.")
    typed = "@mina: Hello.\n[14] @mina: Too late.\n@minna: Who?"
    response = _edit(owner_client, scene, typed, title="Renamed")
    page = response.content.decode()
    assert response.status_code == 422
    assert is_fragment(response)
    assert page.lstrip().startswith(f'<li class="scene-card card editing" id="scene-{scene.pk}">')
    assert "Line 2: 14 s is past the scene&#x27;s end (8 s)." in page
    assert "Line 3: nobody is called @minna in this workspace." in page
    assert f">\n{typed}</textarea>" in page
    assert 'value="Renamed"' in page
    scene.refresh_from_db()
    assert scene.title == "Pier"  # the scene is saved with its dialogue, or not at all
    assert _lines(scene) == [("mina", "Kept.", None)]


def test_a_refused_prompt_and_a_refused_dialogue_are_shown_together(owner_client, scene, mina):
    response = _edit(owner_client, scene, "@ghost: Boo.", prompt="@phantom on the pier.")
    page = response.content.decode()
    assert response.status_code == 422
    assert "@phantom is not a character in this workspace or shared with it." in page
    assert "Line 1: nobody is called @ghost in this workspace." in page


def test_the_dialogue_is_checked_against_the_length_typed_with_it(owner_client, scene, mina):
    response = _edit(owner_client, scene, "[6] @mina: Late.", duration=4)
    assert response.status_code == 422
    assert "Line 1: 6 s is past the scene&#x27;s end (4 s)." in response.content.decode()
    assert _edit(owner_client, scene, "[6] @mina: Late.", duration=8).status_code == 200
    assert _lines(scene) == [("mina", "Late.", 6.0)]


def test_a_form_that_sends_no_dialogue_leaves_the_lines_as_they_are(owner_client, scene, mina):
    scene_dialogue_set(scene=scene, text="@mina: Kept.")
    assert _edit(owner_client, scene, None, title="Renamed").status_code == 200
    assert _lines(scene) == [("mina", "Kept.", None)]


def test_emptying_the_dialogue_removes_the_lines(owner_client, scene, mina):
    scene_dialogue_set(scene=scene, text="@mina: Gone soon.")
    assert _edit(owner_client, scene, "").status_code == 200
    assert _lines(scene) == []


def test_a_new_scene_is_saved_with_its_dialogue(owner_client, episode, mina):
    url = reverse("scene_create", args=[episode.series.workspace.slug, episode.pk])
    response = owner_client.post(
        url,
        {
            "prompt": "@mina at the lamp.",
            "duration": 8,
            "size": "1280x720",
            "dialogue": "@mina: On.",
        },
    )
    assert response.status_code == 302
    scene = Scene.objects.get(episode=episode)
    assert _lines(scene) == [("mina", "On.", None)]


def test_a_new_scene_refused_for_its_dialogue_is_not_created(owner_client, episode, mina):
    url = reverse("scene_create", args=[episode.series.workspace.slug, episode.pk])
    response = owner_client.post(
        url,
        {"prompt": "At the lamp.", "duration": 8, "size": "1280x720", "dialogue": "@nobody: On."},
        headers=HTMX,
    )
    assert response.status_code == 422
    assert "Line 1: nobody is called @nobody in this workspace." in response.content.decode()
    assert not Scene.objects.filter(episode=episode).exists()


def test_the_scene_page_shows_the_lines_read_only(client, members, scene, mina):
    scene_dialogue_set(scene=scene, text="[3] @mina: We launch at dawn.")
    client.force_login(members["viewer"])
    url = reverse("scene_detail", args=[scene.episode.series.workspace.slug, scene.pk])
    page = client.get(url).content.decode()
    assert "3 s Mina Okafor We launch at dawn." in visible_text(page)
    assert 'name="dialogue"' not in page


def test_the_storyboard_shows_each_cards_lines(client, members, episode, scene, mina):
    other = SceneFactory(episode=episode, prompt="Rain.")
    scene_dialogue_set(scene=scene, text="@mina: First.")
    scene_dialogue_set(scene=other, text=": Second.")
    client.force_login(members["viewer"])
    text = visible_text(client.get(episode.get_absolute_url()).content.decode())
    assert "Mina Okafor First." in text
    assert "Off screen Second." in text


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("reviewer", 403), ("outsider", 404)]
)
def test_only_editors_change_the_dialogue(client, members, scene, mina, role, status):
    scene_dialogue_set(scene=scene, text="@mina: Kept.")
    client.force_login(members[role])
    assert _edit(client, scene, "@mina: Changed.").status_code == status
    assert _lines(scene) == [("mina", "Kept.", None)]


def test_an_editor_changes_the_dialogue(client, members, scene, mina):
    client.force_login(members["editor"])
    assert _edit(client, scene, "@mina: Changed.").status_code == 200
    assert _lines(scene) == [("mina", "Changed.", None)]


def test_a_speaker_from_another_workspace_cannot_be_named(owner_client, scene):
    CharacterFactory(workspace=WorkspaceFactory(), handle="spy", name="Spy")
    response = _edit(owner_client, scene, "@spy: Secrets.")
    assert response.status_code == 422
    assert "Line 1: nobody is called @spy in this workspace." in response.content.decode()
    assert _lines(scene) == []
