"""Every page and action: each role gets what it may, an outsider gets a 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import CharacterFactory, EpisodeFactory, SceneFactory, SeriesFactory

pytestmark = pytest.mark.django_db

READ = {"owner": 200, "editor": 200, "reviewer": 200, "viewer": 200, "outsider": 404}
EDIT = {"owner": 200, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 404}
MANAGE = {"owner": 200, "editor": 403, "reviewer": 403, "viewer": 403, "outsider": 404}


@pytest.fixture
def objects(workspace, members):
    series = SeriesFactory(workspace=workspace)
    episode = EpisodeFactory(series=series)
    scene = SceneFactory(episode=episode)
    character = CharacterFactory(workspace=workspace)
    viewer_membership = workspace.memberships.get(user=members["viewer"])
    return {
        "slug": workspace.slug,
        "series": series.pk,
        "episode": episode.pk,
        "scene": scene.pk,
        "character": character.pk,
        "member": viewer_membership.pk,
    }


PAGES = [
    ("dashboard", [], READ),
    ("members", [], READ),
    ("character_list", [], READ),
    ("character_detail", ["character"], READ),
    ("character_create", [], EDIT),
    ("character_edit", ["character"], EDIT),
    ("character_delete", ["character"], EDIT),
    ("series_list", [], READ),
    ("series_detail", ["series"], READ),
    ("series_create", [], EDIT),
    ("series_edit", ["series"], EDIT),
    ("series_delete", ["series"], EDIT),
    ("episode_detail", ["episode"], READ),
    ("episode_edit", ["episode"], EDIT),
    ("episode_delete", ["episode"], EDIT),
    ("scene_create", ["episode"], EDIT),
    ("scene_detail", ["scene"], READ),
    ("provider_accounts", [], MANAGE),
    ("scene_edit", ["scene"], EDIT),
    ("scene_delete", ["scene"], EDIT),
]


@pytest.mark.parametrize("role", ["owner", "editor", "reviewer", "viewer", "outsider"])
@pytest.mark.parametrize(("name", "args", "expected"), PAGES, ids=[p[0] for p in PAGES])
def test_each_page_answers_each_role_as_its_role_allows(
    client, members, objects, role, name, args, expected
):
    client.force_login(members[role])
    url = reverse(name, args=[objects["slug"], *(objects[a] for a in args)])
    assert client.get(url).status_code == expected[role]


# Actions: (url name, args, POST data, who may act). Allowed roles get a redirect
# or page; the status only tells whether the server refused.
ACTIONS = [
    ("members", [], {"username_or_email": "nobody", "role": "viewer"}, MANAGE),
    ("member_role", ["member"], {"role": "reviewer"}, MANAGE),
    ("member_remove", ["member"], {}, MANAGE),
    ("scene_move", ["scene"], {"position": "0"}, EDIT),
    ("scene_duplicate", ["scene"], {}, EDIT),
    ("scene_delete", ["scene"], {}, EDIT),
    ("episode_delete", ["episode"], {}, EDIT),
    ("series_delete", ["series"], {}, EDIT),
    ("episode_create", ["series"], {"title": "Pilot"}, EDIT),
    ("character_share", ["character"], {"workspace": "nowhere"}, EDIT),
    ("character_delete", ["character"], {}, EDIT),
    ("asset_upload", ["character"], {}, EDIT),
]


@pytest.mark.parametrize("role", ["owner", "editor", "reviewer", "viewer", "outsider"])
@pytest.mark.parametrize(("name", "args", "data", "allowed"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_each_action_is_refused_to_roles_that_may_not_act(
    client, members, objects, role, name, args, data, allowed
):
    client.force_login(members[role])
    url = reverse(name, args=[objects["slug"], *(objects[a] for a in args)])
    status = client.post(url, data).status_code
    if allowed[role] == 200:
        assert status not in (403, 404)
    else:
        assert status == allowed[role]


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, objects):
    response = client.get(reverse("dashboard", args=[objects["slug"]]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_character_of_another_team_is_a_404_even_by_id(client, members, objects):
    foreign = CharacterFactory()  # another workspace's character
    client.force_login(members["owner"])
    url = reverse("character_detail", args=[objects["slug"], foreign.pk])
    assert client.get(url).status_code == 404


def test_a_scene_of_another_team_cannot_be_moved_through_our_workspace(client, members, objects):
    foreign_scene = SceneFactory()
    client.force_login(members["owner"])
    url = reverse("scene_move", args=[objects["slug"], foreign_scene.pk])
    assert client.post(url, {"position": "0"}).status_code == 404


def test_state_changes_need_a_csrf_token(members, objects):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(members["owner"])
    url = reverse("scene_duplicate", args=[objects["slug"], objects["scene"]])
    assert strict.post(url).status_code == 403
