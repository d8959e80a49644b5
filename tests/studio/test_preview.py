"""The episode preview: any member watches the chosen takes in scene order; scenes without one
are listed as skipped; another team's episode is a 404; the page's queries do not grow with
the episode."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.models import JobState
from studio.models import Role, Take
from studio.services import scene_move
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import image_bytes
from tests.support.pages import logged_in, visible_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI")


@pytest.fixture
def episode(workspace):
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")
    return EpisodeFactory(series=series, number=2, title="Fog")


def _chosen(scene, account, *, seconds: float = 6.0, poster: bool = False) -> Take:
    """A finished take of `scene` with a video file, chosen for it."""
    take = TakeFactory(scene=scene, account=account, is_selected=True)
    take.job.result = {"duration": seconds, "width": 1280, "height": 720}
    take.job.video.save("video.mp4", ContentFile(b"not really a video"), save=False)
    if poster:
        take.job.thumbnail.save("thumbnail.jpg", ContentFile(image_bytes("JPEG")), save=False)
    take.job.save()
    return take


def _url(episode, *, slug: str | None = None) -> str:
    return reverse("episode_preview", args=[slug or episode.series.workspace.slug, episode.pk])


def _playlist(html: str) -> list[dict]:
    found = re.search(r'<script id="preview-playlist" type="application/json">(.*?)</script>', html)
    assert found, "no playlist on the page"
    return json.loads(found.group(1))


def _listed(html: str) -> list[str]:
    """The scene list's rows as a reader sees them."""
    rows = re.findall(r'<li class="preview-scene[^"]*".*?</li>', html, flags=re.S)
    return [visible_text(row) for row in rows]


def test_the_playlist_follows_the_scenes_order_with_each_chosen_takes_video(
    client, members, episode, account
):
    dawn, noon, dusk = (SceneFactory(episode=episode, title=t) for t in ("Dawn", "Noon", "Dusk"))
    takes = {
        scene.title: _chosen(scene, account, seconds=seconds, poster=scene is dawn)
        for scene, seconds in ((dawn, 4.0), (noon, 6.0), (dusk, 8.0))
    }
    scene_move(scene=dusk, to_position=0)  # Dusk now opens the episode

    html = logged_in(client, members["editor"]).get(_url(episode)).content.decode()

    slug = episode.series.workspace.slug
    assert _playlist(html) == [
        {
            "scene": scene.pk,
            "number": number,
            "title": scene.title,
            "duration": seconds,
            "take": takes[scene.title].pk,
            "video": reverse("take_media", args=[slug, takes[scene.title].pk, "video"]),
            "poster": (
                reverse("take_media", args=[slug, takes[scene.title].pk, "thumbnail"])
                if scene is dawn
                else ""
            ),
        }
        for number, scene, seconds in ((1, dusk, 8.0), (2, dawn, 4.0), (3, noon, 6.0))
    ]
    text = visible_text(html)
    assert "Scene 1 of 3: Dusk" in text
    assert "3 of 3 scenes · 0:18 running time" in text


def test_only_the_chosen_take_plays_and_scenes_without_one_are_listed_as_skipped(
    client, members, episode, account
):
    dawn, noon, dusk, night = (
        SceneFactory(episode=episode, title=t) for t in ("Dawn", "Noon", "Dusk", "Night")
    )
    TakeFactory(scene=dawn, account=account)  # finished, not chosen
    chosen = _chosen(dawn, account)
    TakeFactory(scene=dawn, account=account)  # newer, not chosen either
    TakeFactory(scene=noon, account=account)  # finished, never chosen
    TakeFactory(scene=dusk, account=account, state=JobState.RUNNING)  # nothing to choose yet
    # Chosen once, but its file is gone: nothing to play.
    TakeFactory(scene=night, account=account, is_selected=True)

    html = logged_in(client, members["viewer"]).get(_url(episode)).content.decode()

    assert [track["take"] for track in _playlist(html)] == [chosen.pk]
    assert _listed(html) == [
        f"▶ Scene 1: Dawn 0:06 · take {chosen.pk} Open card",
        "– Scene 2: Noon Skipped: no take chosen Open card",
        "– Scene 3: Dusk Skipped: no take chosen Open card",
        "– Scene 4: Night Skipped: its chosen take has no video Open card",
    ]
    assert "1 of 4 scenes · 0:06 running time · 3 skipped" in visible_text(html)


def test_each_scene_links_to_its_card_on_the_storyboard_and_a_rejected_choice_is_marked(
    client, members, episode, account
):
    dawn = SceneFactory(episode=episode, title="Dawn")
    take = _chosen(dawn, account)
    Take.objects.filter(pk=take.pk).update(review_state=Take.Review.REJECTED)
    noon = SceneFactory(episode=episode, title="Noon")

    html = logged_in(client, members["reviewer"]).get(_url(episode)).content.decode()

    storyboard = reverse("episode_detail", args=[episode.series.workspace.slug, episode.pk])
    for scene in (dawn, noon):
        assert f'href="{storyboard}?at={scene.pk}#scene-{scene.pk}"' in html
    assert "Rejected" in _listed(html)[0]


def test_scene_starts_the_player_at_that_scene(client, members, episode, account):
    dawn, noon = SceneFactory(episode=episode), SceneFactory(episode=episode)
    _chosen(dawn, account)
    second = _chosen(noon, account)
    html = logged_in(client, members["viewer"]).get(f"{_url(episode)}?scene={noon.pk}")

    page = html.content.decode()
    assert 'data-start="1"' in page
    video = reverse("take_media", args=[episode.series.workspace.slug, second.pk, "video"])
    assert re.search(rf'<video [^>]*src="{video}"', page)


@pytest.mark.parametrize("role", list(Role))
def test_every_member_may_watch(client, members, episode, account, role):
    _chosen(SceneFactory(episode=episode), account)
    response = logged_in(client, members[role]).get(_url(episode))
    assert response.status_code == 200
    assert len(_playlist(response.content.decode())) == 1


def test_an_outsider_and_another_teams_episode_get_a_404(
    client, members, workspace, episode, account
):
    _chosen(SceneFactory(episode=episode), account)
    outsider = logged_in(client, members["outsider"])
    assert outsider.get(_url(episode)).status_code == 404
    # Their own workspace in the address does not open our episode either.
    their_slug = members["outsider"].memberships.get().workspace.slug
    assert outsider.get(_url(episode, slug=their_slug)).status_code == 404

    theirs = EpisodeFactory()
    owner = logged_in(client, members["owner"])
    assert owner.get(_url(theirs, slug=workspace.slug)).status_code == 404


def test_signing_in_comes_first(client, episode):
    response = client.get(_url(episode))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_episode_with_nothing_chosen_says_so_and_links_back(client, members, episode, account):
    TakeFactory(scene=SceneFactory(episode=episode), account=account)  # finished, not chosen
    html = logged_in(client, members["viewer"]).get(_url(episode)).content.decode()

    text = visible_text(html)
    assert "Nothing to play yet: no scene of this episode has a chosen take with a video." in text
    assert "preview-playlist" not in html
    assert "<video" not in html
    storyboard = reverse("episode_detail", args=[episode.series.workspace.slug, episode.pk])
    assert f'href="{storyboard}"' in html

    empty = EpisodeFactory(series=episode.series)
    text = visible_text(logged_in(client, members["viewer"]).get(_url(empty)).content.decode())
    assert "Nothing to play yet: this episode has no scenes." in text


def test_the_previews_queries_do_not_grow_with_the_episode(client, members, episode, account):
    viewer = logged_in(client, members["viewer"])

    def queries_for(count: int) -> CaptureQueriesContext:
        episode.scenes.all().delete()
        for n in range(count):
            scene = SceneFactory(episode=episode)
            if n % 3:  # every third scene has no chosen take
                _chosen(scene, account, poster=n % 2 == 0)
                TakeFactory(scene=scene, account=account)
        with CaptureQueriesContext(connection) as captured:
            html = viewer.get(_url(episode)).content.decode()
        assert len(_listed(html)) == count
        return captured

    few, many = queries_for(3), queries_for(20)
    sql = "\n".join(query["sql"] for query in many.captured_queries)
    assert len(few) == len(many), sql
