"""Series and episodes through their pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studio.models import Episode, Series
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory

pytestmark = pytest.mark.django_db


def test_an_editor_creates_a_series_and_sees_it_listed(client, workspace, members):
    client.force_login(members["editor"])
    response = client.post(
        reverse("series_create", args=[workspace.slug]),
        {
            "title": "Harbour Lights",
            "logline": "Three friends and a lighthouse.",
            "style_guide": "Watercolour, teal and amber.",
            "default_size": "720x1280",
            "default_duration": 4,
        },
        follow=True,
    )
    assert "Series “Harbour Lights” created." in response.content.decode()
    series = Series.objects.get(workspace=workspace)
    assert (series.default_size, series.default_duration) == ("720x1280", 4)
    assert series.created_by == members["editor"]
    listing = client.get(reverse("series_list", args=[workspace.slug])).content.decode()
    assert "Harbour Lights" in listing


def test_an_invalid_series_keeps_what_was_typed(owner_client, workspace):
    response = owner_client.post(
        reverse("series_create", args=[workspace.slug]),
        {"title": "Kept", "style_guide": "Noir", "default_size": "1280x720", "default_duration": 0},
    )
    page = response.content.decode()
    assert "Ensure this value is greater than or equal to 1." in page
    assert 'value="Kept"' in page
    assert "Noir</textarea>" in page


def test_episodes_are_numbered_in_order_unless_a_number_is_given(owner_client, workspace):
    series = SeriesFactory(workspace=workspace)
    url = reverse("episode_create", args=[workspace.slug, series.pk])
    owner_client.post(url, {"title": "Pilot"})
    owner_client.post(url, {"title": "Later", "number": 5})
    owner_client.post(url, {"title": "Next"})
    assert list(series.episodes.values_list("number", "title")) == [
        (1, "Pilot"),
        (5, "Later"),
        (6, "Next"),
    ]


def test_a_taken_episode_number_is_refused_with_a_message(owner_client, workspace):
    episode = EpisodeFactory(series__workspace=workspace, number=1)
    response = owner_client.post(
        reverse("episode_create", args=[workspace.slug, episode.series.pk]),
        {"title": "Clash", "number": 1},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Episode 1 already exists in this series." in page
    assert 'value="Clash"' in page


def test_renumbering_an_episode_onto_another_is_refused(owner_client, workspace):
    first = EpisodeFactory(series__workspace=workspace, number=1)
    second = EpisodeFactory(series=first.series, number=2)
    response = owner_client.post(
        reverse("episode_edit", args=[workspace.slug, second.pk]), {"number": 1, "title": "X"}
    )
    assert "Episode 1 already exists in this series." in response.content.decode()
    second.refresh_from_db()
    assert second.number == 2


def test_deleting_a_series_asks_first_then_removes_its_episodes_and_scenes(owner_client, workspace):
    scene = SceneFactory(episode__series__workspace=workspace)
    series = scene.episode.series
    url = reverse("series_delete", args=[workspace.slug, series.pk])
    confirm = owner_client.get(url).content.decode()
    assert f"Delete “{series.title}”?" in confirm
    owner_client.post(url)
    assert not Series.objects.filter(pk=series.pk).exists()
    assert not Episode.objects.filter(pk=scene.episode.pk).exists()


def test_the_series_page_shows_the_episodes_with_scene_counts(owner_client, workspace):
    episode = EpisodeFactory(series__workspace=workspace, title="Pilot")
    SceneFactory(episode=episode)
    SceneFactory(episode=episode)
    page = owner_client.get(
        reverse("series_detail", args=[workspace.slug, episode.series.pk])
    ).content.decode()
    assert "Pilot" in page
    assert "2 scenes" in page
