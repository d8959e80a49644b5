"""Who may change the storyboard: CSRF on every write, roles, and other teams' scenes and takes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from characters.models import Character
from jobs.models import Job, JobState
from studio.models import Episode, Scene, Take
from tests.factories import (
    EpisodeFactory,
    MembershipFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
)
from tests.jobs.factories import ProviderAccountFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _storyboard(workspace) -> dict:
    """An episode with a scene whose takes are running, finished and failed; keyed by role."""
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    series = SeriesFactory(workspace=workspace)
    episode = EpisodeFactory(series=series)
    scene = SceneFactory(episode=episode, title="Dawn", duration=8, size="1280x720")
    SceneFactory(episode=episode, title="Dusk", duration=8, size="1280x720")
    return {
        "slug": workspace.slug,
        "series": series.pk,
        "episode": episode.pk,
        "scene": scene.pk,
        "account": account.pk,
        "running": TakeFactory(scene=scene, account=account, state=JobState.PENDING).pk,
        "finished": TakeFactory(scene=scene, account=account, state=JobState.SUCCEEDED).pk,
        "failed": TakeFactory(scene=scene, account=account, state=JobState.FAILED).pk,
    }


@pytest.fixture
def ours(workspace, members):
    return _storyboard(workspace)


@pytest.fixture
def theirs():
    """The same storyboard in another team's workspace."""
    return _storyboard(MembershipFactory().workspace)


def _scene_data(objects: dict) -> dict:
    return {"title": "Changed", "prompt": "Changed.", "duration": 4, "size": "1280x720"}


# Every state-changing endpoint of the storyboard and takes: (url name, the object its URL
# names, the POST data that would change something if the request were allowed).
WRITES = [
    ("scene_create", "episode", _scene_data),
    ("scene_edit", "scene", _scene_data),
    ("scene_delete", "scene", lambda o: {}),
    ("scene_duplicate", "scene", lambda o: {}),
    ("scene_move", "scene", lambda o: {"position": "1"}),
    ("scene_generate", "scene", lambda o: {"account": o["account"]}),
    ("episode_generate", "episode", lambda o: {"account": o["account"]}),
    ("episode_edit", "episode", lambda o: {"title": "Changed", "number": 7}),
    ("episode_delete", "episode", lambda o: {}),
    ("take_cancel", "running", lambda o: {}),
    ("take_select", "finished", lambda o: {"from": "storyboard"}),
    ("take_retry", "failed", lambda o: {"from": "storyboard"}),
    ("take_delete", "finished", lambda o: {}),
    ("take_remix", "finished", lambda o: {"prompt": "At night."}),
    ("take_extend", "finished", lambda o: {"prompt": "She turns.", "seconds": 4}),
    (
        "take_character",
        "finished",
        lambda o: {"start": "0", "end": "3", "name": "Keeper", "handle": "keeper"},
    ),
]
WRITE_IDS = [name for name, _, _ in WRITES]


def _url(objects: dict, name: str, key: str) -> str:
    return reverse(name, args=[objects["slug"], objects[key]])


def _everything() -> tuple:
    """What any of the writes could change, to compare before and after."""
    return (
        list(Episode.objects.order_by("pk").values_list("pk", "number", "title")),
        list(Scene.objects.order_by("pk").values_list("pk", "position", "title", "prompt")),
        list(Take.objects.order_by("pk").values_list("pk", "is_selected")),
        list(Job.objects.order_by("pk").values_list("pk", "state")),
        list(Character.objects.order_by("pk").values_list("pk", "handle")),
    )


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
@pytest.mark.parametrize(("name", "key", "data"), WRITES, ids=WRITE_IDS)
def test_every_write_needs_a_csrf_token(owner, ours, name, key, data, headers):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    before = _everything()
    response = strict.post(_url(ours, name, key), data(ours), headers=headers)
    assert response.status_code == 403
    assert _everything() == before


@pytest.mark.parametrize(("name", "key", "data"), WRITES, ids=WRITE_IDS)
def test_the_same_write_with_its_token_gets_past_the_check(owner, ours, name, key, data):
    """The control for the test above: its 403 comes from CSRF, not from the request."""
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    strict.get(reverse("episode_detail", args=[ours["slug"], ours["episode"]]))
    token = strict.cookies["csrftoken"].value
    response = strict.post(_url(ours, name, key), data(ours), headers={"X-CSRFToken": token})
    assert response.status_code not in (403, 404)


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
@pytest.mark.parametrize(("name", "key", "data"), WRITES, ids=WRITE_IDS)
def test_viewers_and_reviewers_may_not_write(client, members, ours, role, name, key, data):
    client.force_login(members[role])
    before = _everything()
    assert client.post(_url(ours, name, key), data(ours), headers=HTMX).status_code == 403
    assert _everything() == before


@pytest.mark.parametrize(("name", "key", "data"), WRITES, ids=WRITE_IDS)
def test_another_teams_scenes_and_takes_are_not_found_through_ours(
    owner_client, ours, theirs, name, key, data
):
    before = _everything()
    url = reverse(name, args=[ours["slug"], theirs[key]])
    assert owner_client.post(url, data(theirs), headers=HTMX).status_code == 404
    assert _everything() == before


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("episode_detail", "episode"),
        ("scene_card", "scene"),
        ("scene_status", "scene"),
        ("scene_edit", "scene"),
        ("scene_generate", "scene"),
        ("take_card", "running"),
    ],
)
def test_another_teams_pages_and_fragments_are_not_found(owner_client, ours, theirs, name, key):
    url = reverse(name, args=[ours["slug"], theirs[key]])
    assert owner_client.get(url, headers=HTMX).status_code == 404


def test_an_outsider_sees_nothing_of_the_storyboard(client, members, ours):
    client.force_login(members["outsider"])
    for name, key in [("episode_detail", "episode"), ("scene_status", "scene")]:
        assert client.get(_url(ours, name, key), headers=HTMX).status_code == 404
    suggestions = reverse("mention_suggestions", args=[ours["slug"]])
    assert client.get(suggestions, {"q": "m"}, headers=HTMX).status_code == 404


def _edit_controls(objects: dict) -> list[str]:
    """What the storyboard shows only to those who may change it (see also
    tests/studio/test_edit_controls.py, which finds them by form action and link)."""
    slug, scene = objects["slug"], objects["scene"]
    return [
        ">Edit</a>",
        "Generate…",
        "Generate 1 missing take",
        "drag-handle",
        "data-sortable",
        "data-move-url",
        ">Delete</a>",
        ">Duplicate</button>",
        "Add scene",
        "Add after",
        reverse("scene_edit", args=[slug, scene]),
        reverse("scene_generate", args=[slug, scene]),
        reverse("scene_delete", args=[slug, scene]),
        "Sortable.min.js",
    ]


@pytest.mark.parametrize("role", ["owner", "editor", "reviewer", "viewer"])
def test_the_storyboard_shows_edit_controls_to_owners_and_editors_only(client, members, ours, role):
    client.force_login(members[role])
    page = client.get(_url(ours, "episode_detail", "episode")).content.decode()
    assert 'id="scene-list"' in page
    assert ">Dawn</a>" in page
    may_edit = role in ("owner", "editor")
    for control in _edit_controls(ours):
        assert (control in page) == may_edit, control


@pytest.mark.parametrize("role", ["owner", "editor", "reviewer", "viewer"])
def test_a_stopped_takes_retry_and_edit_prompt_show_to_owners_and_editors_only(
    client, members, ours, role
):
    """The card of a scene whose latest take failed, with nothing in flight."""
    Take.objects.filter(pk=ours["running"]).delete()
    client.force_login(members[role])
    page = client.get(_url(ours, "episode_detail", "episode")).content.decode()
    assert 'class="scene-status status-failed"' in page
    may_edit = role in ("owner", "editor")
    for control in (_url(ours, "take_retry", "failed"), ">Retry</button>", "Edit prompt"):
        assert (control in page) == may_edit, control


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_viewers_and_reviewers_may_watch_a_card_and_its_status(client, members, ours, role):
    client.force_login(members[role])
    for name in ("scene_card", "scene_status"):
        response = client.get(_url(ours, name, "scene"), headers=HTMX)
        assert response.status_code == 200, name
        assert "drag-handle" not in response.content.decode()
        assert ">Retry</button>" not in response.content.decode()
    for name in ("scene_create", "scene_edit", "scene_generate"):
        key = "episode" if name == "scene_create" else "scene"
        assert client.get(_url(ours, name, key), headers=HTMX).status_code == 403, name
