"""The take viewer and the compare page: what they show, where their keys' links go, which
takes compare shows, who may choose a take there, and other teams' takes staying 404."""

from __future__ import annotations

import html
import re

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.models import JobState
from studio.models import Take
from tests.factories import (
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
    WorkspaceFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes
from tests.support.pages import logged_in, messages_of, visible_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI main")


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace, title="Harbour Lights"))


@pytest.fixture
def scenes(episode):
    """Four scenes in order: Dawn, Noon, Dusk, Night."""
    return [SceneFactory(episode=episode, title=t) for t in ("Dawn", "Noon", "Dusk", "Night")]


def _viewer(workspace, take: Take) -> str:
    return reverse("take_viewer", args=[workspace.slug, take.pk])


def _compare(workspace, scene, *takes: Take) -> str:
    url = reverse("take_compare", args=[workspace.slug, scene.pk])
    return url + ("?" + "&".join(f"takes={t.pk}" for t in takes) if takes else "")


def _link(page: str, marker: str) -> str | None:
    """The href of the link that carries `marker` (a data- attribute), or None."""
    match = re.search(rf'<a [^>]*href="([^"]+)"[^>]*{marker}', page)
    return html.unescape(match.group(1)) if match else None


def _video() -> ContentFile:
    return ContentFile(clip_bytes(seconds=0.5, size=(64, 36)))


def _compared(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'id="compare-(\d+)"', page)]


# --- The viewer --------------------------------------------------------------------------


def test_the_viewer_shows_the_take_large_with_its_facts_and_the_scenes_takes(
    client, members, workspace, account, scenes
):
    older = TakeFactory(scene=scenes[1], account=account, job__cost_actual="0.40")
    take = TakeFactory(scene=scenes[1], account=account, job__cost_actual="1.20")
    take.job.video.save("video.mp4", _video())
    response = logged_in(client, members["viewer"]).get(_viewer(workspace, take))

    assert response.status_code == 200
    page = response.content.decode()
    text = visible_text(page)
    assert "Scene 2: Noon" in text
    assert f"Take {take.pk}" in text
    assert "Provider OpenAI main" in text
    assert "Cost $1.20" in text
    assert "State Done · 8.0 s · 1280×720" in text
    assert "Review Awaiting review" in text
    assert f'src="{reverse("take_media", args=[workspace.slug, take.pk, "video"])}"' in page
    assert 'data-fps="24"' in page  # the job records no frame rate: 24 a second
    # The strip: both takes of the scene, this one marked.
    assert re.findall(r'aria-label="Take (\d+)"', page) == [str(older.pk), str(take.pk)]
    assert 'aria-current="page"' in page


def test_left_and_right_go_to_the_previous_and_next_finished_take_of_the_scene(
    client, members, workspace, account, scenes
):
    first, middle, last = (TakeFactory(scene=scenes[0], account=account) for _ in range(3))
    TakeFactory(scene=scenes[0], account=account, state=JobState.FAILED)
    owner = logged_in(client, members["owner"])

    page = owner.get(_viewer(workspace, middle)).content.decode()
    assert _link(page, 'data-keys="ArrowLeft"') == _viewer(workspace, first)
    assert _link(page, 'data-keys="ArrowRight"') == _viewer(workspace, last)

    page = owner.get(_viewer(workspace, last)).content.decode()
    assert _link(page, 'data-keys="ArrowRight"') is None  # the failed take is not a stop
    assert "Last take of the scene" in visible_text(page)
    assert _link(owner.get(_viewer(workspace, first)).content.decode(), "ArrowLeft") is None


def test_up_and_down_go_to_a_neighbouring_scenes_chosen_take_else_its_newest_else_its_page(
    client, members, workspace, account, scenes
):
    dawn, noon, dusk, night = scenes
    chosen = TakeFactory(scene=dawn, account=account, is_selected=True)
    TakeFactory(scene=dawn, account=account)  # newer, but not chosen
    TakeFactory(scene=dusk, account=account, state=JobState.FAILED)
    here = TakeFactory(scene=noon, account=account)
    newest_at_night = [TakeFactory(scene=night, account=account) for _ in range(2)][-1]
    owner = logged_in(client, members["owner"])

    page = owner.get(_viewer(workspace, here)).content.decode()
    assert _link(page, 'data-keys="ArrowUp \\["') == _viewer(workspace, chosen)
    assert _link(page, 'data-keys="ArrowDown \\]"') == dusk.get_absolute_url()

    page = owner.get(_viewer(workspace, TakeFactory(scene=dusk, account=account))).content
    assert _link(page.decode(), 'data-keys="ArrowDown \\]"') == _viewer(workspace, newest_at_night)
    page = owner.get(_viewer(workspace, newest_at_night)).content.decode()
    assert _link(page, 'data-keys="ArrowDown') is None  # the last scene


def test_escape_goes_back_to_the_scenes_card_on_the_storyboard(
    client, members, workspace, account, scenes
):
    take = TakeFactory(scene=scenes[2], account=account)
    page = logged_in(client, members["viewer"]).get(_viewer(workspace, take)).content.decode()
    storyboard = reverse("episode_detail", args=[workspace.slug, scenes[2].episode_id])
    assert _link(page, 'data-keys="Escape"') == f"{storyboard}#scene-{scenes[2].pk}"


def test_c_compares_the_take_with_the_chosen_one_or_else_the_newest_other(
    client, members, workspace, account, scenes
):
    first, chosen, newest = (TakeFactory(scene=scenes[0], account=account) for _ in range(3))
    owner = logged_in(client, members["owner"])
    page = owner.get(_viewer(workspace, first)).content.decode()
    assert _link(page, 'data-keys="c"') == _compare(workspace, scenes[0], first, newest)

    Take.objects.filter(pk=chosen.pk).update(is_selected=True)
    page = owner.get(_viewer(workspace, first)).content.decode()
    assert _link(page, 'data-keys="c"') == _compare(workspace, scenes[0], first, chosen)
    page = owner.get(_viewer(workspace, chosen)).content.decode()
    assert _link(page, 'data-keys="c"') == _compare(workspace, scenes[0], chosen, newest)


def test_a_scene_with_one_finished_take_offers_no_compare(
    client, members, workspace, account, scenes
):
    take = TakeFactory(scene=scenes[0], account=account)
    TakeFactory(scene=scenes[0], account=account, state=JobState.RUNNING)
    page = logged_in(client, members["owner"]).get(_viewer(workspace, take)).content.decode()
    assert "data-viewer-compare" not in page


def test_an_unfinished_take_opens_with_its_state_and_no_player(
    client, members, workspace, account, scenes
):
    take = TakeFactory(scene=scenes[0], account=account, state=JobState.RUNNING, job__progress=40)
    page = logged_in(client, members["owner"]).get(_viewer(workspace, take)).content.decode()
    assert "is generating (40%): there is no video to show yet." in visible_text(page)
    assert "<video" not in page
    assert "data-viewer-select" not in page


@pytest.mark.parametrize("role", ["owner", "editor"])
def test_owners_and_editors_select_the_take_from_the_viewer_and_return_to_it(
    client, members, workspace, account, scenes, role
):
    take = TakeFactory(scene=scenes[0], account=account)
    editor = logged_in(client, members[role])
    page = editor.get(_viewer(workspace, take)).content.decode()
    assert "data-viewer-select" in page

    response = editor.post(
        reverse("take_select", args=[workspace.slug, take.pk]),
        {"next": _viewer(workspace, take)},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == _viewer(workspace, take)
    assert f"Take {take.pk} is now the scene's selected take." in messages_of(response)
    assert "Chosen for scene 1" in visible_text(response.content.decode())
    take.refresh_from_db()
    assert take.is_selected


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_reviewers_and_viewers_watch_in_the_viewer_but_may_not_select(
    client, members, workspace, account, scenes, role
):
    take = TakeFactory(scene=scenes[0], account=account)
    watcher = logged_in(client, members[role])
    page = watcher.get(_viewer(workspace, take)).content.decode()
    assert "data-viewer-select" not in page
    assert watcher.post(reverse("take_select", args=[workspace.slug, take.pk])).status_code == 403
    take.refresh_from_db()
    assert not take.is_selected


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_viewer_and_compare_read_as_many_queries_however_many_takes_a_scene_has(
    client, members, workspace, account, scenes
):
    owner = logged_in(client, members["owner"])
    takes = [TakeFactory(scene=scene, account=account) for scene in scenes for _ in range(2)]
    viewer, compare = _viewer(workspace, takes[2]), _compare(workspace, scenes[1])
    few = _queries(owner, viewer), _queries(owner, compare)
    for scene in scenes:
        for _ in range(6):
            TakeFactory(scene=scene, account=account)
    assert (_queries(owner, viewer), _queries(owner, compare)) == few
    assert few[0] <= 9, "the viewer's queries"
    assert few[1] <= 6, "compare's queries"


# --- Compare -----------------------------------------------------------------------------


def test_compare_shows_the_asked_takes_side_by_side_with_one_transport(
    client, members, workspace, account, scenes
):
    takes = [TakeFactory(scene=scenes[0], account=account) for _ in range(3)]
    for take in takes:
        take.job.video.save("video.mp4", _video())
    response = logged_in(client, members["editor"]).get(
        _compare(workspace, scenes[0], takes[2], takes[0])
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert _compared(page) == [takes[0].pk, takes[2].pk]  # in the scene's order
    assert page.count("data-viewer-video") == 2
    assert page.count("data-transport") == 1
    assert page.count("Choose this take") == 2
    # The picker offers all three finished takes, the two shown ticked.
    ticked = re.findall(r'name="takes" value="(\d+)" checked', page)
    assert ticked == [str(takes[0].pk), str(takes[2].pk)]
    assert len(re.findall(r'name="takes" value="\d+"', page)) == 3


def test_compare_unasked_shows_the_chosen_take_and_the_newest_other_else_the_two_newest(
    client, members, workspace, account, scenes
):
    first, second, third = (TakeFactory(scene=scenes[0], account=account) for _ in range(3))
    TakeFactory(scene=scenes[0], account=account, state=JobState.FAILED)
    owner = logged_in(client, members["owner"])
    assert _compared(owner.get(_compare(workspace, scenes[0])).content.decode()) == [
        second.pk,
        third.pk,
    ]
    Take.objects.filter(pk=first.pk).update(is_selected=True)
    page = owner.get(_compare(workspace, scenes[0])).content.decode()
    assert _compared(page) == [first.pk, third.pk]
    assert "Chosen" in visible_text(page.split(f'id="compare-{first.pk}"')[1].split("</li>")[0])
    assert page.count("Choose this take") == 1  # not on the chosen one


def test_compare_asked_for_one_take_says_so_and_shows_the_usual_two(
    client, members, workspace, account, scenes
):
    first, second = (TakeFactory(scene=scenes[0], account=account) for _ in range(2))
    page = logged_in(client, members["owner"]).get(_compare(workspace, scenes[0], first))
    assert "Tick two or more takes to compare them" in visible_text(page.content.decode())
    assert _compared(page.content.decode()) == [first.pk, second.pk]


def test_compare_of_a_scene_with_fewer_than_two_finished_takes_says_so_with_a_way_back(
    client, members, workspace, account, scenes
):
    TakeFactory(scene=scenes[0], account=account)
    TakeFactory(scene=scenes[0], account=account, state=JobState.RUNNING)
    response = logged_in(client, members["owner"]).get(_compare(workspace, scenes[0]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Scene 1 has 1 finished take: comparing needs two or more." in visible_text(page)
    assert f'href="{scenes[0].get_absolute_url()}"' in page
    assert "<video" not in page


def test_compare_refuses_takes_of_another_scene_and_unfinished_ones_with_a_404(
    client, members, workspace, account, scenes
):
    ours = TakeFactory(scene=scenes[0], account=account)
    other_scene = TakeFactory(scene=scenes[1], account=account)
    running = TakeFactory(scene=scenes[0], account=account, state=JobState.RUNNING)
    owner = logged_in(client, members["owner"])
    assert owner.get(_compare(workspace, scenes[0], ours, other_scene)).status_code == 404
    assert owner.get(_compare(workspace, scenes[0], ours, running)).status_code == 404
    url = reverse("take_compare", args=[workspace.slug, scenes[0].pk])
    assert owner.get(f"{url}?takes={ours.pk}&takes=x").status_code == 404


def test_another_workspaces_takes_and_scenes_are_404_in_the_viewer_and_compare(
    client, members, workspace, account, scenes
):
    ours = TakeFactory(scene=scenes[0], account=account)
    TakeFactory(scene=scenes[0], account=account)
    their_scene = SceneFactory(
        episode=EpisodeFactory(series=SeriesFactory(workspace=WorkspaceFactory()))
    )
    theirs = [TakeFactory(scene=their_scene) for _ in range(2)]
    owner = logged_in(client, members["owner"])

    assert owner.get(_viewer(workspace, theirs[0])).status_code == 404
    assert owner.get(_compare(workspace, their_scene)).status_code == 404
    assert owner.get(_compare(workspace, scenes[0], ours, theirs[0])).status_code == 404

    outsider = logged_in(client, members["outsider"])
    assert outsider.get(_viewer(workspace, ours)).status_code == 404
    assert outsider.get(_compare(workspace, scenes[0])).status_code == 404


def test_choosing_a_take_on_the_compare_page_returns_there_with_it_chosen(
    client, members, workspace, account, scenes
):
    first, second = (TakeFactory(scene=scenes[0], account=account) for _ in range(2))
    Take.objects.filter(pk=first.pk).update(is_selected=True)
    here = _compare(workspace, scenes[0], first, second)
    editor = logged_in(client, members["editor"])
    page = editor.get(here).content.decode()
    assert f'<input type="hidden" name="next" value="{html.escape(here)}">' in page

    response = editor.post(
        reverse("take_select", args=[workspace.slug, second.pk]), {"next": here}, follow=True
    )
    assert response.redirect_chain[-1][0] == here
    assert f"Take {second.pk} is now the scene's selected take." in messages_of(response)
    assert list(scenes[0].takes.filter(is_selected=True)) == [second]
    chosen_column = response.content.decode().split(f'id="compare-{second.pk}"')[1]
    assert "The scene uses this take." in visible_text(chosen_column.split("</li>")[0])


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_reviewers_and_viewers_compare_without_choose_buttons(
    client, members, workspace, account, scenes, role
):
    for _ in range(2):
        TakeFactory(scene=scenes[0], account=account)
    page = logged_in(client, members[role]).get(_compare(workspace, scenes[0])).content.decode()
    assert len(_compared(page)) == 2
    assert "Choose this take" not in page


# --- Links from where takes are shown ------------------------------------------------------


def test_the_scene_page_links_each_finished_take_to_the_viewer_and_offers_compare_from_two(
    client, members, workspace, account, scenes
):
    first = TakeFactory(scene=scenes[0], account=account)
    TakeFactory(scene=scenes[0], account=account, state=JobState.RUNNING)
    owner = logged_in(client, members["owner"])
    page = owner.get(scenes[0].get_absolute_url()).content.decode()
    assert f'href="{_viewer(workspace, first)}"' in page
    assert reverse("take_compare", args=[workspace.slug, scenes[0].pk]) not in page

    TakeFactory(scene=scenes[0], account=account)
    page = owner.get(scenes[0].get_absolute_url()).content.decode()
    assert "Compare takes side by side (2 finished)" in visible_text(page)
    assert f'href="{reverse("take_compare", args=[workspace.slug, scenes[0].pk])}"' in page
