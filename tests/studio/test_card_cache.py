"""Storyboard cards rendered once per process (studio.card_cache): reused for the same
scene as it was, rendered anew as soon as anything the card shows changes, its status
block rendered on every use while a take is in flight, and each viewer's forms carry
their own CSRF token."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from jobs.models import Job, JobState
from studio.card_cache import rendered
from studio.models import Scene
from tests.factories import EpisodeFactory, MembershipFactory, SceneFactory, TakeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    rendered.clear()
    yield
    rendered.clear()


@pytest.fixture
def board(workspace):
    episode = EpisodeFactory(series__workspace=workspace)
    scenes = [
        SceneFactory(episode=episode, position=i, title=f"Shot {i}", prompt=f"Gulls, take {i}.")
        for i in range(3)
    ]
    return episode, scenes


def card_of(page: str, scene: Scene) -> str:
    start = page.index(f'id="scene-{scene.pk}"')
    return page[start : page.index("</li>", page.index('class="scene-panel"', start))]


def test_a_card_is_rendered_once_and_shows_what_changed_at_once(owner_client, board):
    episode, scenes = board
    url = episode.get_absolute_url()
    first = owner_client.get(url).content.decode()
    kept = len(rendered._cards)
    assert kept == 3
    again = owner_client.get(url).content.decode()
    assert len(rendered._cards) == kept  # the same cards, reused
    assert card_of(again, scenes[0]).count("Shot 0") == card_of(first, scenes[0]).count("Shot 0")

    Scene.objects.filter(pk=scenes[0].pk).update(title="The lamp room")
    TakeFactory(scene=scenes[1], state=JobState.FAILED, job__error_message="The model refused.")
    page = owner_client.get(url).content.decode()
    assert "The lamp room" in card_of(page, scenes[0])
    assert "Shot 0" not in card_of(page, scenes[0])
    assert "The model refused." in card_of(page, scenes[1])
    assert "Retry" in card_of(page, scenes[1])


def test_a_card_with_a_take_in_flight_shows_its_progress_fresh_on_every_page(owner_client, board):
    episode, scenes = board
    take = TakeFactory(scene=scenes[2], state=JobState.RUNNING, job__progress=40)
    first = card_of(owner_client.get(episode.get_absolute_url()).content.decode(), scenes[2])
    assert 'aria-valuenow="40"' in first
    assert len(rendered._cards) == 3  # its card is kept without its status block
    Job.objects.filter(pk=take.job_id).update(progress=70)
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    assert len(rendered._cards) == 3  # the same card, with a status block rendered anew
    card = card_of(page, scenes[2])
    assert 'aria-valuenow="70"' in card
    assert 'aria-valuenow="40"' not in card
    assert card.count('id="scene-status-') == 1
    # The status block, rendered apart, links to the same scene as the card's title.
    thumb = re.search(r'class="scene-thumb" href="([^"]+)"', card).group(1)
    assert thumb == re.search(r'<h3><a href="([^"]+)"', card).group(1)
    assert f"/{scenes[2].pk}/" in thumb
    assert "Takes (1)" in card
    assert "Shot 2" in card
    # Once it has finished, the card is the whole one again, status and all.
    Job.objects.filter(pk=take.job_id).update(state=JobState.FAILED, error_message="Refused.")
    done = card_of(owner_client.get(episode.get_absolute_url()).content.decode(), scenes[2])
    assert "Refused." in done
    assert "progressbar" not in done
    assert "Shot 2" in done


def test_what_a_viewer_may_do_is_their_own(client, workspace, board, members):
    episode, scenes = board
    client.force_login(members["owner"])
    assert "Duplicate" in card_of(
        client.get(episode.get_absolute_url()).content.decode(), scenes[0]
    )
    client.force_login(members["viewer"])
    page = client.get(episode.get_absolute_url()).content.decode()
    assert "Shot 0" in card_of(page, scenes[0])
    assert "Duplicate" not in card_of(page, scenes[0])


def test_each_viewer_posts_with_their_own_token(workspace, board, members):
    from django.test import Client

    episode, scenes = board
    for role in ("owner", "editor"):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(members[role])
        page = browser.get(episode.get_absolute_url()).content.decode()
        card = card_of(page, scenes[1])
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', card).group(1)
        response = browser.post(
            reverse("scene_duplicate", args=[workspace.slug, scenes[1].pk]),
            {"csrfmiddlewaretoken": token},
        )
        assert response.status_code in (200, 302), (role, response.status_code)
    assert Scene.objects.filter(episode=episode).count() == 5


def test_the_same_scene_in_another_workspace_has_its_own_card(client, board):
    _episode, scenes = board
    other = MembershipFactory(role="owner")
    other_episode = EpisodeFactory(series__workspace=other.workspace)
    twin = SceneFactory(episode=other_episode, position=0, title="Shot 0", prompt="Gulls, take 0.")
    client.force_login(other.user)
    page = client.get(other_episode.get_absolute_url()).content.decode()
    assert f"/w/{other.workspace.slug}/scenes/{twin.pk}/" in card_of(page, twin)
    assert f'id="scene-{scenes[0].pk}"' not in page
