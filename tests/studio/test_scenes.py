"""Scenes: mentions, positions under create/duplicate/delete/move, and their pages."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from studio import services
from studio.models import Scene
from tests.factories import CharacterFactory, EpisodeFactory, SeriesFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace, default_duration=6))


def _titles(episode) -> list[str]:
    return list(episode.scenes.order_by("position").values_list("title", flat=True))


def _positions(episode) -> list[int]:
    return list(episode.scenes.order_by("position").values_list("position", flat=True))


def test_a_new_scene_takes_the_series_defaults_and_links_its_mentions(workspace, episode):
    mina = CharacterFactory(workspace=workspace, handle="mina")
    scene = services.scene_create(episode=episode, prompt="@Mina waves at @mina.")
    assert (scene.duration, scene.size) == (6, "1280x720")
    assert list(scene.mentions.all()) == [mina]


def test_an_unknown_handle_is_refused_naming_the_handle(episode):
    with pytest.raises(ValidationError) as error:
        services.scene_create(episode=episode, prompt="@ghost walks in.")
    assert error.value.message_dict["prompt"] == [
        "@ghost is not a character in this workspace or shared with it."
    ]
    assert not episode.scenes.exists()


def test_a_character_of_another_team_cannot_be_mentioned(episode):
    CharacterFactory(handle="stranger")  # exists, but in another workspace
    with pytest.raises(ValidationError, match="@stranger"):
        services.scene_create(episode=episode, prompt="@stranger appears.")


def test_editing_a_prompt_updates_the_mentions(workspace, episode):
    mina = CharacterFactory(workspace=workspace, handle="mina")
    ilse = CharacterFactory(workspace=workspace, handle="ilse")
    scene = services.scene_create(episode=episode, prompt="@mina alone.")
    services.scene_update(scene=scene, prompt="@ilse alone.")
    assert list(scene.mentions.all()) == [ilse]
    assert mina.scenes.count() == 0


def test_scenes_are_added_at_the_end_or_after_a_given_scene(episode):
    first = services.scene_create(episode=episode, prompt="one", title="A")
    services.scene_create(episode=episode, prompt="two", title="C")
    services.scene_create(episode=episode, prompt="mid", title="B", after=first)
    assert _titles(episode) == ["A", "B", "C"]
    assert _positions(episode) == [0, 1, 2]


def test_duplicating_a_scene_places_the_copy_right_after_it(episode):
    first = services.scene_create(episode=episode, prompt="one", title="A")
    services.scene_create(episode=episode, prompt="two", title="B")
    services.scene_duplicate(scene=first)
    assert _titles(episode) == ["A", "A (copy)", "B"]


def test_deleting_a_scene_closes_the_gap(episode):
    scenes = [services.scene_create(episode=episode, prompt="p", title=t) for t in "ABC"]
    services.scene_delete(scene=scenes[1])
    assert _titles(episode) == ["A", "C"]
    assert _positions(episode) == [0, 1]


@pytest.mark.parametrize(
    ("index", "to", "expected"),
    [(3, 0, "DABC"), (0, 3, "BCDA"), (1, 2, "ACBD"), (2, 99, "ABDC"), (2, 0, "CABD")],
)
def test_moving_a_scene_keeps_every_other_in_order(episode, index, to, expected):
    scenes = [services.scene_create(episode=episode, prompt="p", title=t) for t in "ABCD"]
    services.scene_move(scene=scenes[index], to_position=to)
    assert "".join(_titles(episode)) == expected
    assert _positions(episode) == [0, 1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_concurrent_reorders_leave_a_dense_order_with_no_scene_lost(workspace):
    episode = EpisodeFactory(series=SeriesFactory(workspace=workspace))
    scenes = [services.scene_create(episode=episode, prompt="p", title=f"S{i}") for i in range(8)]
    moves = [(scenes[i % 8], (i * 5) % 8) for i in range(24)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(share: list) -> None:
        try:
            barrier.wait()
            for scene, to in share:
                services.scene_move(scene=scene, to_position=to)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(moves[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert _positions(episode) == list(range(8))
    assert sorted(_titles(episode)) == sorted(f"S{i}" for i in range(8))


def test_the_scene_form_keeps_what_was_typed_when_a_handle_is_unknown(owner_client, episode):
    url = reverse("scene_create", args=[episode.series.workspace.slug, episode.pk])
    response = owner_client.post(
        url, {"title": "Dusk", "prompt": "@nobody at dusk", "duration": 8, "size": "1280x720"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "@nobody is not a character in this workspace or shared with it." in page
    assert "@nobody at dusk</textarea>" in page
    assert 'value="Dusk"' in page
    assert not Scene.objects.exists()


def test_moving_a_scene_with_htmx_answers_with_the_cards_from_where_the_order_changed(
    owner_client, episode
):
    scenes = [services.scene_create(episode=episode, prompt="p", title=t) for t in "ABC"]
    url = reverse("scene_move", args=[episode.series.workspace.slug, scenes[2].pk])
    response = owner_client.post(url, {"position": "0"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<li class="scene-card card"')
    assert response.headers["HX-Retarget"] == "#scene-list"
    assert response.headers["Storyboard-From"] == "0"  # the page drops its cards from there
    assert "<html" not in page
    assert "“C” is now scene 1." in page  # the message comes along, out of band
    assert page.index(">C<") < page.index(">A<") < page.index(">B<")


def test_moving_a_scene_without_javascript_redirects_to_the_episode(owner_client, episode):
    scenes = [services.scene_create(episode=episode, prompt="p", title=t) for t in "AB"]
    url = reverse("scene_move", args=[episode.series.workspace.slug, scenes[1].pk])
    response = owner_client.post(url, {"position": "0"})
    assert response.status_code == 302
    assert _titles(episode) == ["B", "A"]


def test_the_episode_page_lists_scenes_with_character_chips_in_constant_queries(
    owner_client, workspace, episode, django_assert_max_num_queries
):
    mina = CharacterFactory(workspace=workspace, handle="mina")
    url = reverse("episode_detail", args=[workspace.slug, episode.pk])
    for _ in range(3):
        services.scene_create(episode=episode, prompt="@mina")
    with django_assert_max_num_queries(15) as few:
        owner_client.get(url)
    for _ in range(20):
        services.scene_create(episode=episode, prompt="@mina")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = owner_client.get(url)
    assert response.content.decode().count(f"@{mina.handle}</a>") == 23


def test_moving_deleting_and_inserting_keep_positions_dense(episode):
    scenes = [services.scene_create(episode=episode, prompt="p", title=t) for t in "ABCDE"]
    services.scene_move(scene=scenes[0], to_position=3)  # B C D A E
    services.scene_move(scene=scenes[4], to_position=0)  # E B C D A
    services.scene_delete(scene=scenes[2])  # E B D A
    services.scene_create(episode=episode, prompt="p", title="F", after=scenes[1])  # E B F D A
    services.scene_move(scene=scenes[3], to_position=99)  # clamped: E B F A D
    rows = list(episode.scenes.order_by("position").values_list("title", "position"))
    assert rows == [("E", 0), ("B", 1), ("F", 2), ("A", 3), ("D", 4)]
