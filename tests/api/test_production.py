"""Series, episodes and scenes over the REST API, as a script drives a storyboard."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from characters.models import CharacterShare
from studio.gateways.inbox import inbox_of
from studio.models import DialogueLine, Episode, Membership, Scene, Series
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.support.api import refused_fields, walk

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def elsewhere(members):
    """The outsider's workspace."""
    return Membership.objects.get(user=members["outsider"]).workspace


@pytest.fixture
def series(workspace):
    return SeriesFactory(workspace=workspace, title="Lighthouse", default_duration=6)


@pytest.fixture
def episode(series):
    return EpisodeFactory(series=series, number=1, title="Pilot")


@pytest.fixture
def mina(workspace):
    return CharacterFactory(workspace=workspace, name="Mina Park", handle="mina")


def scenes_of(episode: Episode) -> list[tuple[int, str]]:
    return list(episode.scenes.order_by("position").values_list("position", "title"))


# --- Series -----------------------------------------------------------------------------------


def test_an_editor_starts_a_series_reads_and_changes_it(api, workspace):
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI")
    made = api.post(
        f"{API}/series",
        {
            "title": "Lighthouse",
            "logline": "Two keepers, one storm.",
            "style_guide": "35 mm film.",
            "default_size": "720x1280",
            "default_duration": 6,
            "routing_policy": "pinned",
            "pinned_account_id": account.pk,
        },
    )

    assert made.status_code == 201, made.content
    body = made.json()
    assert {k: body[k] for k in ("title", "default_size", "routing_policy", "episode_count")} == {
        "title": "Lighthouse",
        "default_size": "720x1280",
        "routing_policy": "pinned",
        "episode_count": 0,
    }
    assert body["pinned_account_id"] == account.pk
    assert api.get(f"{API}/series/{body['id']}").json() == body
    changed = api.patch(
        f"{API}/series/{body['id']}",
        {"title": "The Lighthouse", "routing_policy": "cost", "pinned_account_id": None},
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["title"], changed.json()["pinned_account_id"]) == (
        "The Lighthouse",
        None,
    )
    assert changed.json()["logline"] == "Two keepers, one storm."  # left out, so kept
    assert Series.objects.get(pk=body["id"]).workspace == workspace


def test_a_series_is_refused_field_by_field(api, workspace, elsewhere):
    theirs = ProviderAccountFactory(workspace=elsewhere)

    assert refused_fields(api.post(f"{API}/series", {"title": "X", "default_size": "1x1"})) == [
        "default_size"
    ]
    assert refused_fields(api.post(f"{API}/series", {"title": "X", "default_duration": 0})) == [
        "default_duration"
    ]
    assert refused_fields(
        api.post(f"{API}/series", {"title": "X", "routing_policy": "pinned"})
    ) == ["pinned_account_id"]
    another_teams = api.post(f"{API}/series", {"title": "X", "pinned_account_id": theirs.pk})
    assert refused_fields(another_teams) == ["pinned_account_id"]
    assert refused_fields(api.post(f"{API}/series", {"logline": "No title"})) == ["title"]
    assert not Series.objects.exists()


def test_series_page_through_by_title_and_filter(api, workspace, elsewhere):
    made = {SeriesFactory(workspace=workspace, title=f"Tale {n % 2}").pk for n in range(5)}
    SeriesFactory(workspace=elsewhere, title="Tale of theirs")
    SeriesFactory(workspace=workspace, title="Harbour")

    seen = [s["id"] for s in walk(api, f"{API}/series", limit=2, q="tale")]

    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))
    assert [s["title"] for s in api.get(f"{API}/series", {"q": "harb"}).json()["items"]] == [
        "Harbour"
    ]


def test_deleting_a_series_removes_it_with_its_episodes(api, series, episode):
    assert api.delete(f"{API}/series/{series.pk}").status_code == 204
    assert api.get(f"{API}/series/{series.pk}").status_code == 404
    assert not Episode.objects.filter(pk=episode.pk).exists()


# --- Episodes ---------------------------------------------------------------------------------


def test_episodes_are_numbered_and_the_inbox_says_so(api, series):
    first = api.post(f"{API}/series/{series.pk}/episodes", {"title": "Pilot"})
    second = api.post(f"{API}/series/{series.pk}/episodes", {"title": "Storm"})
    inbox = inbox_of(series)

    assert (first.status_code, first.json()["number"], first.json()["inbox"]) == (201, 1, False)
    assert second.json()["number"] == 2
    assert api.get(f"{API}/episodes/{inbox.pk}").json()["inbox"] is True
    listed = walk(api, f"{API}/series/{series.pk}/episodes", limit=1)
    assert [e["id"] for e in listed] == sorted(
        [first.json()["id"], second.json()["id"], inbox.pk],
        key=lambda pk: Episode.objects.get(pk=pk).number,
    )
    only_inbox = api.get(f"{API}/series/{series.pk}/episodes", {"inbox": "true"}).json()
    assert [e["id"] for e in only_inbox["items"]] == [inbox.pk]
    no_inbox = api.get(f"{API}/series/{series.pk}/episodes", {"inbox": "false"}).json()
    assert [e["title"] for e in no_inbox["items"]] == ["Pilot", "Storm"]


def test_an_episode_is_renamed_and_renumbered_but_never_onto_another(api, series, episode):
    EpisodeFactory(series=series, number=2)

    clash = api.patch(f"{API}/episodes/{episode.pk}", {"number": 2})
    assert refused_fields(clash) == ["number"]
    assert "Episode 2 already exists" in clash.json()["detail"]
    assert refused_fields(
        api.post(f"{API}/series/{series.pk}/episodes", {"title": "X", "number": 1})
    ) == ["number"]

    changed = api.patch(f"{API}/episodes/{episode.pk}", {"number": 5, "title": "Opening"})

    assert changed.status_code == 200, changed.content
    assert (changed.json()["number"], changed.json()["title"]) == (5, "Opening")
    assert api.patch(f"{API}/episodes/{episode.pk}", {"title": "Start"}).json()["number"] == 5


def test_deleting_an_episode_removes_its_scenes(api, episode):
    scene = SceneFactory(episode=episode)

    assert api.delete(f"{API}/episodes/{episode.pk}").status_code == 204
    assert not Scene.objects.filter(pk=scene.pk).exists()


# --- Scenes -----------------------------------------------------------------------------------


def test_a_scene_is_created_with_its_mentions_and_dialogue(api, workspace, episode, mina):
    ilse = CharacterFactory(workspace=workspace, name="Ilse", handle="ilse")
    dialogue = "@mina: We launch at dawn.\n[4] @ilse: Then we sleep now.\n: The sea remembers."

    made = api.post(
        f"{API}/episodes/{episode.pk}/scenes",
        {"title": "Dock", "prompt": "@mina and @ilse on the dock.", "dialogue": dialogue},
    )

    assert made.status_code == 201, made.content
    scene = made.json()
    assert (scene["position"], scene["number"], scene["duration"], scene["size"]) == (
        0,
        1,
        6,  # the series' default
        "1280x720",
    )
    assert scene["mentions"] == [
        {"id": ilse.pk, "handle": "ilse", "name": "Ilse"},
        {"id": mina.pk, "handle": "mina", "name": "Mina Park"},
    ]
    assert scene["lines"] == [
        {
            "position": 0,
            "speaker": "mina",
            "character_id": mina.pk,
            "text": "We launch at dawn.",
            "start": None,
        },
        {
            "position": 1,
            "speaker": "ilse",
            "character_id": ilse.pk,
            "text": "Then we sleep now.",
            "start": 4.0,
        },
        {
            "position": 2,
            "speaker": None,
            "character_id": None,
            "text": "The sea remembers.",
            "start": None,
        },
    ]
    assert scene["dialogue"] == dialogue
    assert (scene["take_count"], scene["selected_take_id"], scene["routing_policy"]) == (
        0,
        None,
        None,
    )
    assert api.get(f"{API}/scenes/{scene['id']}").json() == scene
    assert DialogueLine.objects.filter(scene_id=scene["id"]).count() == 3


def test_a_scene_that_mentions_a_shared_character_resolves_it(api, workspace, episode, elsewhere):
    keeper = CharacterFactory(workspace=elsewhere, name="Keeper", handle="keeper")
    CharacterShare.objects.create(
        character=keeper, workspace=workspace, offered_slug=workspace.slug, status="accepted"
    )

    made = api.post(f"{API}/episodes/{episode.pk}/scenes", {"prompt": "@keeper waits."})

    assert [m["id"] for m in made.json()["mentions"]] == [keeper.pk]


def test_a_bad_handle_or_dialogue_line_saves_nothing_and_names_the_field(api, episode, mina):
    path = f"{API}/episodes/{episode.pk}/scenes"

    unknown = api.post(path, {"prompt": "@nobody walks."})
    assert refused_fields(unknown) == ["prompt"]
    assert "@nobody is not a character" in unknown.json()["detail"]
    bad_line = api.post(path, {"prompt": "@mina walks.", "dialogue": "@mina: Hi.\nno colon here"})
    assert refused_fields(bad_line) == ["dialogue"]
    assert "Line 2:" in bad_line.json()["detail"]
    late = api.post(path, {"prompt": "@mina walks.", "duration": 4, "dialogue": "[9] @mina: Hi."})
    assert refused_fields(late) == ["dialogue"]
    both = api.post(path, {"prompt": "@nobody walks.", "dialogue": "@ghost: Boo."})
    assert refused_fields(both) == ["dialogue", "prompt"]
    assert refused_fields(api.post(path, {"prompt": "@mina walks.", "size": "1x1"})) == ["size"]
    assert refused_fields(api.post(path, {"prompt": "@mina walks.", "duration": 61})) == [
        "duration"
    ]
    assert refused_fields(api.post(path, {"prompt": "x", "routing_policy": "pinned"})) == [
        "pinned_account_id"
    ]
    assert not Scene.objects.exists()
    assert not DialogueLine.objects.exists()


def test_scenes_list_in_order_page_by_position_and_filter_by_mention(api, episode, mina):
    path = f"{API}/episodes/{episode.pk}/scenes"
    for n in range(7):
        prompt = f"@mina, shot {n}." if n % 2 else f"Shot {n}."
        assert api.post(path, {"title": f"S{n}", "prompt": prompt}).status_code == 201
    other = EpisodeFactory(series=episode.series)
    SceneFactory(episode=other)

    seen = walk(api, path, limit=3)

    assert [s["title"] for s in seen] == [f"S{n}" for n in range(7)]
    assert [s["position"] for s in seen] == list(range(7))
    named = walk(api, path, limit=2, mentions="@MINA")
    assert [s["title"] for s in named] == ["S1", "S3", "S5"]


def test_a_scene_goes_after_another_moves_duplicates_and_is_deleted(api, episode, mina):
    path = f"{API}/episodes/{episode.pk}/scenes"
    first = api.post(path, {"title": "A", "prompt": "Dawn."}).json()
    api.post(path, {"title": "C", "prompt": "Dusk."})
    between = api.post(path, {"title": "B", "prompt": "Noon.", "after": first["id"]})
    assert between.json()["position"] == 1
    assert scenes_of(episode) == [(0, "A"), (1, "B"), (2, "C")]

    moved = api.post(f"{API}/scenes/{first['id']}/move", {"position": 99})
    assert (moved.status_code, moved.json()["position"]) == (200, 2)
    assert scenes_of(episode) == [(0, "B"), (1, "C"), (2, "A")]

    api.patch(f"{API}/scenes/{first['id']}", {"dialogue": "@mina: Again."})
    copy = api.post(f"{API}/scenes/{first['id']}/duplicate")
    assert copy.status_code == 201
    assert (copy.json()["title"], copy.json()["position"], copy.json()["dialogue"]) == (
        "A (copy)",
        3,
        "@mina: Again.",
    )

    assert api.delete(f"{API}/scenes/{between.json()['id']}").status_code == 204
    assert scenes_of(episode) == [(0, "C"), (1, "A"), (2, "A (copy)")]
    assert api.get(f"{API}/scenes/{between.json()['id']}").status_code == 404


def test_a_scene_is_changed_field_by_field(api, workspace, episode, mina):
    account = ProviderAccountFactory(workspace=workspace)
    scene = api.post(
        f"{API}/episodes/{episode.pk}/scenes",
        {"title": "Dock", "prompt": "@mina waits.", "dialogue": "@mina: Hi."},
    ).json()
    path = f"{API}/scenes/{scene['id']}"

    changed = api.patch(
        path,
        {"prompt": "The dock, empty.", "routing_policy": "pinned", "pinned_account_id": account.pk},
    )

    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["prompt"], body["mentions"], body["title"]) == ("The dock, empty.", [], "Dock")
    assert (body["routing_policy"], body["pinned_account_id"]) == ("pinned", account.pk)
    assert body["dialogue"] == "@mina: Hi."  # not sent, so kept
    assert api.patch(path, {"dialogue": ""}).json()["lines"] == []
    assert api.patch(path, {"routing_policy": None}).json()["routing_policy"] is None
    assert refused_fields(api.patch(path, {"prompt": "@nobody."})) == ["prompt"]
    assert refused_fields(api.patch(path, {"prompt": None})) == ["prompt"]
    assert refused_fields(
        api.patch(path, {"routing_policy": "pinned", "pinned_account_id": None})
    ) == ["pinned_account_id"]
    assert Scene.objects.get(pk=scene["id"]).prompt == "The dock, empty."


def test_listing_scenes_costs_as_many_queries_for_a_long_episode(api, workspace, episode, mina):
    def queries_to_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get(f"{API}/episodes/{episode.pk}/scenes").status_code == 200
        return len(queries)

    def add_scene() -> None:
        made = api.post(
            f"{API}/episodes/{episode.pk}/scenes",
            {"prompt": "@mina waits.", "dialogue": "@mina: Hi.\n: Far off."},
        ).json()
        TakeFactory(scene_id=made["id"], is_selected=True)

    add_scene()
    queries_to_list()  # the token's first use is recorded once
    few = queries_to_list()
    for _ in range(5):
        add_scene()

    assert queries_to_list() == few


def test_text_with_a_nul_character_is_refused_as_input(api, episode):
    refused = api.post(f"{API}/episodes/{episode.pk}/scenes", {"prompt": "Dawn\x00."})

    for answer in (refused, api.get(f"{API}/series", {"q": "\x00"})):
        assert answer.status_code == 422
        assert "NUL" in answer.json()["detail"]
    assert not Scene.objects.exists()


def test_a_scene_says_how_many_takes_it_has_and_which_is_selected(api, episode):
    scene = SceneFactory(episode=episode)
    TakeFactory(scene=scene)
    chosen = TakeFactory(scene=scene, is_selected=True)

    read = api.get(f"{API}/scenes/{scene.pk}").json()

    assert (read["take_count"], read["selected_take_id"]) == (2, chosen.pk)
    listed = api.get(f"{API}/episodes/{episode.pk}/scenes").json()["items"]
    assert (listed[0]["take_count"], listed[0]["selected_take_id"]) == (2, chosen.pk)


# --- Access -----------------------------------------------------------------------------------


def test_another_workspaces_objects_are_404_both_ways(api, api_as, series, episode, elsewhere):
    ours = SceneFactory(episode=episode)
    theirs_scene = SceneFactory(episode__series__workspace=elsewhere)
    theirs = {
        "series": theirs_scene.episode.series.pk,
        "episode": theirs_scene.episode.pk,
        "scene": theirs_scene.pk,
    }
    mine = {"series": series.pk, "episode": episode.pk, "scene": ours.pk}

    for client, ids in ((api, theirs), (api_as("outsider"), mine)):
        for response in (
            client.get(f"{API}/series/{ids['series']}"),
            client.patch(f"{API}/series/{ids['series']}", {"title": "Mine"}),
            client.delete(f"{API}/series/{ids['series']}"),
            client.get(f"{API}/series/{ids['series']}/episodes"),
            client.post(f"{API}/series/{ids['series']}/episodes", {"title": "Mine"}),
            client.get(f"{API}/episodes/{ids['episode']}"),
            client.patch(f"{API}/episodes/{ids['episode']}", {"title": "Mine"}),
            client.get(f"{API}/episodes/{ids['episode']}/scenes"),
            client.post(f"{API}/episodes/{ids['episode']}/scenes", {"prompt": "Mine."}),
            client.get(f"{API}/scenes/{ids['scene']}"),
            client.patch(f"{API}/scenes/{ids['scene']}", {"title": "Mine"}),
            client.post(f"{API}/scenes/{ids['scene']}/move", {"position": 0}),
            client.post(f"{API}/scenes/{ids['scene']}/duplicate"),
            client.delete(f"{API}/scenes/{ids['scene']}"),
        ):
            assert response.status_code == 404, (response.request["PATH_INFO"], response.content)
    outsiders = api_as("outsider").get(f"{API}/series").json()["items"]
    assert [s["id"] for s in outsiders] == [theirs["series"]]
    after_theirs = api.post(
        f"{API}/episodes/{episode.pk}/scenes", {"prompt": "Mine.", "after": theirs["scene"]}
    )
    assert after_theirs.status_code == 404
    assert Scene.objects.count() == 2
    assert Series.objects.get(pk=series.pk).title == "Lighthouse"


def test_after_a_scene_of_another_episode_is_a_422(api, series, episode):
    elsewhere_in_series = SceneFactory(episode=EpisodeFactory(series=series))

    refused = api.post(
        f"{API}/episodes/{episode.pk}/scenes", {"prompt": "x", "after": elsewhere_in_series.pk}
    )

    assert refused_fields(refused) == ["after"]


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_viewers_and_reviewers_read_but_may_not_write(api_as, role, series, episode):
    client = api_as(role)
    scene = SceneFactory(episode=episode, title="Kept")

    for path in (
        f"{API}/series",
        f"{API}/series/{series.pk}",
        f"{API}/series/{series.pk}/episodes",
        f"{API}/episodes/{episode.pk}",
        f"{API}/episodes/{episode.pk}/scenes",
        f"{API}/scenes/{scene.pk}",
    ):
        assert client.get(path).status_code == 200, path
    for response in (
        client.post(f"{API}/series", {"title": "New"}),
        client.patch(f"{API}/series/{series.pk}", {"title": "Changed"}),
        client.delete(f"{API}/series/{series.pk}"),
        client.post(f"{API}/series/{series.pk}/episodes", {"title": "New"}),
        client.patch(f"{API}/episodes/{episode.pk}", {"title": "Changed"}),
        client.delete(f"{API}/episodes/{episode.pk}"),
        client.post(f"{API}/episodes/{episode.pk}/scenes", {"prompt": "New."}),
        client.patch(f"{API}/scenes/{scene.pk}", {"title": "Changed"}),
        client.post(f"{API}/scenes/{scene.pk}/move", {"position": 0}),
        client.post(f"{API}/scenes/{scene.pk}/duplicate"),
        client.delete(f"{API}/scenes/{scene.pk}"),
    ):
        assert response.status_code == 403, (response.request["PATH_INFO"], response.content)
        assert response["Content-Type"] == "application/problem+json"
    assert [s.title for s in Scene.objects.all()] == ["Kept"]
    assert Series.objects.get().title == "Lighthouse"
    assert Episode.objects.get().title == "Pilot"
