"""The storyboard's three views (list, grid of pictures, timeline strip), each member's choice
remembered, and what the grid and the timeline show."""

from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import JobState
from studio.models import Membership, Take
from studio.storyboard import running_time
from tests.factories import (
    EpisodeFactory,
    MembershipFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.studio.test_storyboard_queries import _queries, _same_count, storyboard_episode

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace))


@pytest.fixture
def openai(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")


def _page(client, episode, **query) -> str:
    url = episode.get_absolute_url()
    response = client.get(url, query)
    assert response.status_code == 200
    return response.content.decode()


def _view_of(user, workspace) -> str:
    return Membership.objects.get(user=user, workspace=workspace).storyboard_view


def test_the_storyboard_opens_as_a_list_by_default(owner_client, episode):
    SceneFactory(episode=episode, title="Dawn")
    page = _page(owner_client, episode)
    assert 'class="current" aria-current="page">List</a>' in page
    assert 'class="scene-card card"' in page
    assert "grid-card" not in page
    assert 'class="timeline"' not in page


def test_a_view_link_switches_the_storyboard_and_is_remembered(client, members, workspace, episode):
    SceneFactory(episode=episode, title="Dawn")
    client.force_login(members["editor"])
    page = _page(client, episode, view="grid")
    assert 'class="current" aria-current="page">Grid</a>' in page
    assert 'class="scene-card card grid-card"' in page
    assert _view_of(members["editor"], workspace) == "grid"
    # Back later without asking: the grid again.
    assert 'class="scene-card card grid-card"' in _page(client, episode)
    # Per member: the owner still sees the list.
    assert _view_of(members["owner"], workspace) == "list"
    client.force_login(members["owner"])
    assert "grid-card" not in _page(client, episode)


def test_an_unknown_view_changes_nothing(owner_client, owner, workspace, episode):
    _page(owner_client, episode, view="timeline")
    page = _page(owner_client, episode, view="carousel")
    assert 'class="current" aria-current="page">Timeline</a>' in page
    assert _view_of(owner, workspace) == "timeline"


def test_the_grid_shows_each_scenes_picture_with_its_state_over_it(
    client, members, episode, openai
):
    chosen = SceneFactory(episode=episode, title="Dawn")
    take = TakeFactory(scene=chosen, account=openai, job__cost_actual="0.80")
    Take.objects.filter(pk=take.pk).update(is_selected=True)
    running = SceneFactory(episode=episode, title="Dusk")
    TakeFactory(scene=running, account=openai, state=JobState.RUNNING, job__progress=40)
    SceneFactory(episode=episode, title="Night")
    client.force_login(members["editor"])
    page = _page(client, episode, view="grid")

    slug = episode.series.workspace.slug
    assert page.count('class="scene-card card grid-card"') == 3
    assert f'<img src="{reverse("take_media", args=[slug, take.pk, "thumbnail"])}"' in page
    assert f"Take {take.pk} chosen" in page
    assert 'aria-valuenow="40"' in page
    assert "No take yet" in page
    # The live-progress hook and the reordering contract are those of the list.
    for scene in (chosen, running):
        assert f'id="scene-status-{scene.pk}" sse-swap="scene-{scene.pk}"' in page
        assert f'data-move-url="{reverse("scene_move", args=[slug, scene.pk])}"' in page
    assert page.count('class="drag-handle"') == 3
    # ...and without a mouse, one place earlier or later.
    assert 'aria-label="Move scene 3 earlier"' in page
    assert 'aria-label="Move scene 1 later"' in page
    assert 'class="storyboard-frame view-grid"' in page


def test_a_viewer_sees_the_grid_but_cannot_reorder_it(client, members, episode):
    SceneFactory(episode=episode, title="Dawn")
    client.force_login(members["viewer"])
    page = _page(client, episode, view="grid")
    assert 'class="scene-card card grid-card"' in page
    assert "data-move-url" not in page
    assert "drag-handle" not in page
    assert "Move scene 1 later" not in page
    assert "data-sortable" not in page
    # Every member may watch the episode's preview.
    preview = reverse("episode_preview", args=[episode.series.workspace.slug, episode.pk])
    assert f'<a class="button" href="{preview}">Preview</a>' in page


def test_a_move_in_the_grid_answers_with_grid_cards(owner_client, episode):
    first, second = SceneFactory(episode=episode), SceneFactory(episode=episode)
    _page(owner_client, episode, view="grid")
    slug = episode.series.workspace.slug
    response = owner_client.post(
        reverse("scene_move", args=[slug, first.pk]), {"after": second.pk}, headers=HTMX
    )
    assert response.status_code == 200
    assert response.headers["Storyboard-From"] == "0"
    page = response.content.decode()
    assert page.count('class="scene-card card grid-card"') == 2
    assert page.index(f'id="scene-{second.pk}"') < page.index(f'id="scene-{first.pk}"')


def test_a_card_answered_alone_keeps_the_grids_look(owner_client, episode):
    """Cancel on an edit form (the card alone) gives a grid card back to a grid member, and a
    list card to a list member."""
    scene = SceneFactory(episode=episode)
    slug = episode.series.workspace.slug
    card_url = reverse("scene_card", args=[slug, scene.pk])
    _page(owner_client, episode, view="grid")
    grid = owner_client.get(card_url, headers=HTMX).content.decode()
    assert 'class="scene-card card grid-card"' in grid
    _page(owner_client, episode, view="list")
    listed = owner_client.get(card_url, headers=HTMX).content.decode()
    assert f'id="scene-{scene.pk}"' in listed
    assert "grid-card" not in listed


def test_the_grid_pages_by_slices_like_the_list(owner_client, episode, settings):
    settings.STORYBOARD_SLICE = 2
    scenes = [SceneFactory(episode=episode) for _ in range(5)]
    page = _page(owner_client, episode, view="grid")
    assert page.count('class="scene-card card grid-card"') == 2
    assert page.count("data-later") == 1
    slug = episode.series.workspace.slug
    url = reverse("episode_scenes", args=[slug, episode.pk])
    later = owner_client.get(url, {"after": 1}, headers=HTMX).content.decode()
    assert later.count('class="scene-card card grid-card"') == 2
    assert f'id="scene-{scenes[2].pk}"' in later


def test_the_timeline_shows_every_scene_to_scale_with_the_running_time(
    owner_client, episode, openai, settings
):
    settings.STORYBOARD_SLICE = 2  # the strip shows all scenes, not one slice
    dawn = SceneFactory(episode=episode, title="Dawn", duration=8)
    noon = SceneFactory(episode=episode, title="Noon", duration=12)
    dusk = SceneFactory(episode=episode, title="Dusk", duration=45)
    take = TakeFactory(scene=dawn, account=openai)
    Take.objects.filter(pk=take.pk).update(is_selected=True)
    TakeFactory(scene=noon, account=openai)  # finished, never chosen: still a gap
    page = _page(owner_client, episode, view="timeline")

    assert "Running time <span data-running-time>1:05</span>" in page
    assert "3 scenes · " in page
    assert "2 gaps without a chosen take (0:57)" in page
    assert page.count('class="shot tl-d') == 3
    assert f'class="shot tl-d8" data-scene="{dawn.pk}"' in page
    assert f'class="shot tl-d12 gap" data-scene="{noon.pk}"' in page
    assert f'class="shot tl-d45 gap" data-scene="{dusk.pk}"' in page
    assert page.count(">no take</span>") == 2
    slug = episode.series.workspace.slug
    assert f'<img src="{reverse("take_media", args=[slug, take.pk, "thumbnail"])}"' in page
    # Each block leads to its card, in whichever slice holds it.
    assert f'href="?at={dusk.pk}#scene-{dusk.pk}"' in page
    assert "Scene 3: Dusk · 45 s from 0:20 · no take chosen" in page
    # ...and the cards are listed under the strip.
    assert page.count('class="scene-card card"') == 2


def test_the_timeline_strip_alone_is_what_it_fetches_after_a_change(owner_client, episode):
    SceneFactory(episode=episode, duration=8)
    SceneFactory(episode=episode, duration=4)
    url = episode.get_absolute_url()
    response = owner_client.get(url, {"part": "timeline"}, headers=HTMX)
    assert response.status_code == 200
    strip = response.content.decode()
    assert strip.startswith("<section")
    assert "<html" not in strip
    assert "Running time <span data-running-time>0:12</span>" in strip
    assert 'hx-trigger="storyboard-changed from:body"' in strip


def test_the_timeline_marks_a_chosen_take_that_was_rejected(owner_client, episode, openai):
    scene = SceneFactory(episode=episode, duration=8)
    take = TakeFactory(scene=scene, account=openai)
    Take.objects.filter(pk=take.pk).update(is_selected=True, review_state=Take.Review.REJECTED)
    page = _page(owner_client, episode, view="timeline")
    assert f'class="shot tl-d8 rejected" data-scene="{scene.pk}"' in page
    assert "its chosen take was rejected" in page
    assert "every scene has a chosen take" in page


def test_an_empty_episode_has_an_empty_timeline(owner_client, episode):
    page = _page(owner_client, episode, view="timeline")
    assert "Running time <span data-running-time>0:00</span></strong> · 0 scenes" in page
    assert "timeline-strip" not in page
    assert "No scenes yet" in page


def test_another_teams_episode_is_a_404_and_remembers_nothing(client, members, workspace):
    theirs = EpisodeFactory(
        series=SeriesFactory(workspace=members["outsider"].memberships.get().workspace)
    )
    client.force_login(members["owner"])
    response = client.get(theirs.get_absolute_url(), {"view": "grid"})
    assert response.status_code == 404
    assert _view_of(members["owner"], workspace) == "list"
    strip = client.get(theirs.get_absolute_url(), {"part": "timeline"}, headers=HTMX)
    assert strip.status_code == 404


@pytest.mark.parametrize("view", ["grid", "timeline"])
def test_each_view_of_300_scenes_costs_the_queries_of_3(client, owner, view):
    client.force_login(owner)
    small = storyboard_episode(MembershipFactory(user=owner, role="owner").workspace, scenes=3)
    large = storyboard_episode(MembershipFactory(user=owner, role="owner").workspace, scenes=300)
    # Chosen once per workspace (the choice is a member's), then pages as they open.
    for episode in (small, large):
        _queries(client, f"{episode.get_absolute_url()}?view={view}")
    small_sql, _ = _queries(client, small.get_absolute_url())
    large_sql, page = _queries(client, large.get_absolute_url())
    _same_count(small_sql, large_sql)
    if view == "timeline":
        assert page.count('class="shot tl-d8') == 300


def test_running_time_reads_as_minutes_and_seconds():
    assert running_time(0) == "0:00"
    assert running_time(65) == "1:05"
    assert running_time(600) == "10:00"
    assert running_time(3725) == "1:02:05"
