"""A long storyboard a slice at a time: the loaders, the slice endpoint, where links land,
and changes (reorder, add, delete) made while only some cards are on the page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from studio.models import Scene
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory
from tests.studio.test_storyboard_queries import storyboard_episode

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
SLICE = 10


@pytest.fixture(autouse=True)
def _small_slices(settings):
    settings.STORYBOARD_SLICE = SLICE


@pytest.fixture
def episode(workspace):
    return storyboard_episode(workspace, scenes=35, takes_per_scene=1)


def _slices_url(episode, **params) -> str:
    url = reverse("episode_scenes", args=[episode.series.workspace.slug, episode.pk])
    return url + "".join(f"{'&' if i else '?'}{k}={v}" for i, (k, v) in enumerate(params.items()))


def _positions(page: str) -> list[int]:
    return [int(p) for p in re.findall(r'data-position="(\d+)"', page)]


def _pk_at(episode, position: int) -> int:
    return Scene.objects.get(episode=episode, position=position).pk


def _order(episode) -> list[int]:
    return list(
        Scene.objects.filter(episode=episode).order_by("position").values_list("pk", flat=True)
    )


def test_the_page_shows_the_first_slice_and_a_loader_that_loads_the_next_once_seen(
    owner_client, episode
):
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    assert _positions(page) == list(range(SLICE))
    after = _slices_url(episode, after=SLICE - 1)
    assert f'hx-get="{after.replace("&", "&amp;")}" hx-trigger="revealed, click"' in page
    assert "data-earlier" not in page
    assert "35 scenes" in page  # the header counts them all


def test_following_the_loaders_brings_every_scene_once_in_order(owner_client, episode):
    seen, url = [], _slices_url(episode)
    while url:
        page = owner_client.get(url, headers=HTMX).content.decode()
        assert "<html" not in page
        seen += _positions(page)
        found = re.search(r'data-later><a [^>]*hx-get="([^"]+)"', page)
        url = found.group(1) if found else None
    assert seen == list(range(35))


def test_a_slice_is_the_scenes_after_a_position_whatever_came_before(owner_client, episode):
    # A keyset on positions: a gap (a scene deleted elsewhere) does not shift the slice.
    Scene.objects.filter(episode=episode, position=12).delete()
    page = owner_client.get(_slices_url(episode, after=10), headers=HTMX).content.decode()
    assert _positions(page) == [11, *range(13, 22)]


def test_the_last_slice_has_no_loader_after_it(owner_client, episode):
    page = owner_client.get(_slices_url(episode, after=29), headers=HTMX).content.decode()
    assert _positions(page) == list(range(30, 35))
    assert "data-later" not in page
    assert "Show more scenes" not in page


def test_a_slice_before_a_position_comes_with_a_loader_for_the_earlier_ones(owner_client, episode):
    page = owner_client.get(_slices_url(episode, before=25), headers=HTMX).content.decode()
    assert _positions(page) == list(range(15, 25))
    assert page.index("data-earlier") < page.index('data-position="15"')
    assert "?before=15" in page
    first = owner_client.get(_slices_url(episode, before=5), headers=HTMX).content.decode()
    assert _positions(first) == list(range(5))
    assert "data-earlier" not in first


def test_without_javascript_show_more_is_a_link_to_the_page_at_the_next_slice(
    owner_client, episode
):
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    assert (
        f'data-later><a class="button" href="{episode.get_absolute_url()}?after={SLICE - 1}"'
        in page
    )
    second = owner_client.get(f"{episode.get_absolute_url()}?after={SLICE - 1}")
    html = second.content.decode()
    assert "<html" in html
    assert _positions(html) == list(range(SLICE, 2 * SLICE))
    assert (
        f'data-earlier><a class="button" href="{episode.get_absolute_url()}?before={SLICE}"' in html
    )
    # The slice URL itself, opened without htmx, is that page too.
    plain = owner_client.get(_slices_url(episode, after=SLICE - 1)).content.decode()
    assert "<html" in plain
    assert _positions(plain) == list(range(SLICE, 2 * SLICE))


def test_another_teams_episode_has_no_slices(client, episode, owner):
    elsewhere = EpisodeFactory(series=SeriesFactory())
    client.force_login(owner)
    assert client.get(_slices_url(elsewhere, after=0), headers=HTMX).status_code == 404


def test_a_link_to_a_scene_lands_on_the_slice_that_holds_it(owner_client, episode):
    scene = Scene.objects.get(episode=episode, position=23)
    page = owner_client.get(f"{episode.get_absolute_url()}?at={scene.pk}").content.decode()
    assert f'id="scene-{scene.pk}"' in page
    assert _positions(page) == list(range(20, 30))
    assert "?before=20" in page
    assert "?after=29" in page


def test_saving_a_scene_without_javascript_redirects_to_the_slice_that_holds_it(
    owner_client, episode
):
    url = reverse("scene_create", args=[episode.series.workspace.slug, episode.pk])
    response = owner_client.post(
        url, {"title": "Coda", "prompt": "Gulls.", "duration": 8, "size": "1280x720"}
    )
    scene = Scene.objects.get(title="Coda")
    assert scene.position == 35
    assert response.url == f"{episode.get_absolute_url()}?at={scene.pk}#scene-{scene.pk}"
    page = owner_client.get(response.url).content.decode()
    assert f'id="scene-{scene.pk}"' in page
    assert _positions(page) == list(range(30, 36))


# --- Changes while only some cards are loaded ----------------------------------------------


def _move(owner_client, episode, scene_pk: int, **neighbour) -> object:
    url = reverse("scene_move", args=[episode.series.workspace.slug, scene_pk])
    return owner_client.post(url, neighbour, headers=HTMX)


def test_a_card_dragged_up_across_a_slice_boundary_goes_after_its_new_neighbour(
    owner_client, episode
):
    order = _order(episode)
    moving, neighbour = order[27], order[4]
    response = _move(owner_client, episode, moving, after=neighbour)
    assert response.status_code == 200
    assert response.headers["Storyboard-From"] == "5"
    assert _order(episode) == [*order[:5], moving, *order[5:27], *order[28:]]
    page = response.content.decode()
    assert _positions(page) == list(range(5, 15))
    assert page.index(f'id="scene-{moving}"') < page.index(f'id="scene-{order[5]}"')


def test_a_card_dragged_down_goes_after_its_new_neighbour(owner_client, episode):
    order = _order(episode)
    moving, neighbour = order[3], order[18]
    response = _move(owner_client, episode, moving, after=neighbour)
    assert response.headers["Storyboard-From"] == "3"
    assert _order(episode) == [*order[:3], *order[4:19], moving, *order[19:]]


def test_a_card_dropped_first_in_a_later_slice_goes_before_its_new_neighbour(owner_client, episode):
    order = _order(episode)
    moving, neighbour = order[2], order[20]
    _move(owner_client, episode, moving, before=neighbour)
    assert _order(episode) == [*order[:2], *order[3:20], moving, *order[20:]]
    moving, neighbour = order[30], order[20]
    _move(owner_client, episode, moving, before=neighbour)
    assert _order(episode).index(moving) + 1 == _order(episode).index(neighbour)


def test_a_neighbour_from_another_episode_is_refused(owner_client, workspace, episode):
    stranger = SceneFactory(episode=EpisodeFactory(series=episode.series)).pk
    order = _order(episode)
    response = _move(owner_client, episode, order[3], after=stranger)
    assert response.status_code == 400
    assert _order(episode) == order


def test_deleting_a_scene_answers_with_the_renumbered_slice_from_its_place(owner_client, episode):
    gone = _pk_at(episode, 22)
    url = reverse("scene_delete", args=[episode.series.workspace.slug, gone])
    response = owner_client.post(url, headers=HTMX)
    assert response.headers["Storyboard-From"] == "22"
    page = response.content.decode()
    assert _positions(page) == list(range(22, 32))
    assert f'id="scene-{gone}"' not in page
    assert 'aria-label="Scene 23">23</span>' in page
