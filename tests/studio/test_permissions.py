"""Every page and action: each role gets what it may, an outsider gets a 404.

An action a role may take must have its effect; an action a role may not take must be
refused and change nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from characters.models import Character, CharacterShare, ReferenceAsset
from jobs.models import Budget, JobKind, JobState, ProviderAccount
from studio import webhooks
from studio.api.tokens import digest_of
from studio.models import (
    ApiToken,
    Cut,
    DialogueLine,
    Episode,
    GenerationBatch,
    Membership,
    Scene,
    SceneFrame,
    Series,
    SeriesCharacter,
    Take,
    TakeScore,
    WebhookDelivery,
    WebhookEndpoint,
    Workspace,
)
from tests.factories import (
    CharacterFactory,
    SceneFactory,
)
from tests.samples import clip_bytes, image_bytes
from tests.support.api import make_token
from tests.support.cuts import episode_to_cut

pytestmark = pytest.mark.django_db

ROLES = ["owner", "editor", "reviewer", "viewer", "outsider"]
READ = {"owner": 200, "editor": 200, "reviewer": 200, "viewer": 200, "outsider": 404}
EDIT = {"owner": 200, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 404}
MANAGE = {"owner": 200, "editor": 403, "reviewer": 403, "viewer": 403, "outsider": 404}
# A panel htmx polls answers 286 (stop polling) once what it shows has finished.
POLLED = {**READ, **{role: 286 for role in ("owner", "editor", "reviewer", "viewer")}}

EDITORS = frozenset({"owner", "editor"})
REVIEWERS = frozenset({"owner", "editor", "reviewer"})
OWNERS = frozenset({"owner"})


@pytest.fixture
def world(world, workspace) -> dict:
    """The studio's shared world (tests/studio/conftest.py) plus a finished cut of its
    episode, with a video to watch, and an episode ready to cut (its one scene has a selected
    take with a video)."""
    cut = Cut.objects.create(
        episode_id=world["episode"], number=1, state=Cut.State.DONE, duration=1.0
    )
    cut.video.save("video.mp4", ContentFile(clip_bytes()))
    ready = episode_to_cut(workspace, seconds=(1.0,))
    owner = Membership.objects.get(workspace=workspace, role="owner").user
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, url="http://127.0.0.1:9/hooks", created_by=owner
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id="msg_world",
        event_type="take.succeeded",
        payload={"type": "take.succeeded", "timestamp": "2026-01-01T00:00:00Z", "data": {}},
        state=WebhookDelivery.State.FAILED,
        attempts=8,
    )
    token = ApiToken.objects.get(digest=digest_of(make_token(workspace, name="world")))
    batch = GenerationBatch.objects.create(
        episode_id=world["episode"],
        automatic=True,
        total_estimate=Decimal("0"),
        state=GenerationBatch.State.DONE,
        finished_at=timezone.now(),
    )
    return {
        **world,
        "batch": batch.pk,
        "cut": cut.number,
        "ready": ready.pk,
        "token": token.pk,
        "endpoint": endpoint.pk,
        "delivery": delivery.pk,
    }


def _url(world: dict, name: str, *keys: str | None) -> str:
    return reverse(name, args=[world["slug"], *(world[key] for key in keys if key)])


# --- Pages ---------------------------------------------------------------------------------

PAGES = [
    ("dashboard", [], READ),
    ("members", [], READ),
    ("costs", [], READ),
    ("provider_capabilities", [], READ),
    ("character_list", [], READ),
    ("character_detail", ["character"], READ),
    ("character_create", [], EDIT),
    ("character_edit", ["character"], EDIT),
    ("character_delete", ["character"], EDIT),
    ("character_voice", ["character"], EDIT),
    ("series_list", [], READ),
    ("series_detail", ["series"], READ),
    ("series_create", [], EDIT),
    ("series_edit", ["series"], EDIT),
    ("series_delete", ["series"], EDIT),
    ("series_cast", ["series"], READ),
    ("consistency_report", [], READ),
    ("consistency_report_csv", [], READ),
    ("take_consistency", ["finished"], READ),
    ("episode_detail", ["episode"], READ),
    # Live progress: the event stream (its headers: the stream is never read here) and its poll
    ("episode_events", ["episode"], READ),
    ("episode_statuses", ["episode"], READ),
    ("episode_scenes", ["episode"], READ),
    ("episode_preview", ["episode"], READ),
    ("episode_edit", ["episode"], EDIT),
    ("episode_delete", ["episode"], EDIT),
    ("episode_generate", ["episode"], EDIT),
    ("episode_cut", ["episode"], READ),
    ("episode_cut_status", ["episode"], POLLED),
    ("episode_batch", ["episode", "batch"], POLLED),
    ("cut_detail", ["episode", "cut"], READ),
    # cut_file streams a file: tests/studio/test_cuts_pages.py runs each role against it.
    ("scene_create", ["episode"], EDIT),
    ("scene_detail", ["scene"], READ),
    ("take_viewer", ["finished"], READ),
    ("take_compare", ["scene"], READ),
    ("scene_edit", ["scene"], EDIT),
    ("scene_delete", ["scene"], EDIT),
    ("take_delete", ["finished"], EDIT),
    ("review_index", [], READ),
    ("review_episode", ["episode"], READ),
    ("review_character", ["character"], READ),
    ("provider_accounts", [], MANAGE),
    ("provider_account_edit", ["account"], MANAGE),
    ("api_settings", [], MANAGE),
    ("api_token_calls", ["token"], MANAGE),
    ("webhook_list", [], MANAGE),
    ("webhook_detail", ["endpoint"], MANAGE),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "args", "expected"), PAGES, ids=[p[0] for p in PAGES])
def test_each_page_answers_each_role_as_its_role_allows(
    client, members, world, role, name, args, expected
):
    client.force_login(members[role])
    assert client.get(_url(world, name, *args)).status_code == expected[role]


# --- Actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """A POST, who may send it, and how to tell that it did what it says.

    `done(world, said)` is False before the request and True once an allowed role sent
    it; `said` is what the request told the user (its messages). A refused role gets
    403 (an outsider 404) and leaves every row of the studio, the library and the
    engine as it was. `answer` is the allowed roles' status (None: anything but a refusal).
    """

    name: str
    target: str | tuple[str, ...] | None
    data: Callable[[dict], dict]
    may: frozenset[str]
    done: Callable[[dict, list[str]], bool] | None
    answer: int | None = 302
    tail: tuple[str, ...] = ()  # URL arguments after the objects, as written ("first")

    def __str__(self) -> str:
        return self.name

    def url(self, world: dict) -> str:
        """`target` names the URL's object, or its objects in order (a character's asset)."""
        keys = (self.target,) if isinstance(self.target, str) else self.target or ()
        return reverse(self.name, args=[world["slug"], *(world[k] for k in keys), *self.tail])


def _scene(world: dict, key: str = "scene") -> Scene:
    return Scene.objects.get(pk=world[key])


def _takes_of(world: dict, key: str) -> int:
    return Take.objects.filter(scene_id=world[key]).count()


def _gone(model: type, key: str) -> Callable[[dict, list[str]], bool]:
    return lambda w, said: not model.objects.filter(pk=w[key]).exists()


def _scene_fields(title: str) -> dict:
    return {"title": title, "prompt": f"{title}: the harbour.", "duration": 8, "size": "1280x720"}


def _account_fields(name: str) -> dict:
    return {
        "name": name,
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "model": "sora-2",
        "enabled": "on",
        "concurrency_limit": 2,
        "api_key": "sk-test-1234",
    }


ACTIONS = [
    # Members (owners only)
    Action(
        "members",
        None,
        lambda w: {"username_or_email": w["newcomer"], "role": "viewer"},
        OWNERS,
        lambda w, said: Membership.objects.filter(
            workspace_id=w["workspace"], user__username=w["newcomer"], role="viewer"
        ).exists(),
    ),
    Action(
        "member_role",
        "member",
        lambda w: {"role": "reviewer"},
        OWNERS,
        lambda w, said: Membership.objects.get(pk=w["member"]).role == "reviewer",
    ),
    Action("member_remove", "member", lambda w: {}, OWNERS, _gone(Membership, "member")),
    # Character library
    Action(
        "character_create",
        None,
        lambda w: {"name": "Keeper", "handle": "keeper", "description": "Grey coat."},
        EDITORS,
        lambda w, said: Character.objects.filter(
            workspace_id=w["workspace"], handle="keeper", name="Keeper"
        ).exists(),
    ),
    Action(
        "character_edit",
        "character",
        lambda w: {"name": "Mina Vale", "handle": "mina", "description": "Blue scarf."},
        EDITORS,
        lambda w, said: Character.objects.filter(
            pk=w["character"], name="Mina Vale", description="Blue scarf."
        ).exists(),
    ),
    Action("character_delete", "character", lambda w: {}, EDITORS, _gone(Character, "character")),
    Action(
        # The world's only account makes video, so the voice is refused in plain words (400);
        # tests/characters/test_voices.py sets voices at the ElevenLabs emulator.
        "character_voice",
        "character",
        lambda w: {"account": w["account"], "voice_id": "21m00Tcm4TlvDq8ikWAM"},
        EDITORS,
        None,
        answer=400,
    ),
    Action(
        # Nothing is sent: the upload is refused with a plain message and nothing stored.
        "asset_upload",
        "character",
        lambda w: {},
        EDITORS,
        lambda w, said: (
            any("Choose at least one image or clip" in m for m in said)
            and ReferenceAsset.objects.filter(character_id=w["character"]).count() == 1
        ),
    ),
    Action(
        "asset_delete",
        ("character", "asset"),
        lambda w: {},
        EDITORS,
        _gone(ReferenceAsset, "asset"),
    ),
    Action(
        # Sharing is becoming an offer the receiving owners accept: only who may ask is fixed.
        "character_share",
        "character",
        lambda w: {"workspace": w["elsewhere"]},
        EDITORS,
        None,
        answer=None,
    ),
    Action(
        "character_unshare",
        ("character", "share"),
        lambda w: {},
        EDITORS,
        _gone(CharacterShare, "share"),
    ),
    # Series and episodes
    Action(
        "series_create",
        None,
        lambda w: {"title": "Harbour Tales", "default_size": "1280x720", "default_duration": 8},
        EDITORS,
        lambda w, said: Series.objects.filter(
            workspace_id=w["workspace"], title="Harbour Tales"
        ).exists(),
    ),
    Action(
        "series_edit",
        "series",
        lambda w: {"title": "Renamed", "default_size": "720x1280", "default_duration": 4},
        EDITORS,
        lambda w, said: Series.objects.filter(
            pk=w["series"], title="Renamed", default_size="720x1280", default_duration=4
        ).exists(),
    ),
    Action("series_delete", "series", lambda w: {}, EDITORS, _gone(Series, "series")),
    Action(
        "episode_create",
        "series",
        lambda w: {"title": "Pilot"},
        EDITORS,
        lambda w, said: Episode.objects.filter(series_id=w["series"], title="Pilot").exists(),
    ),
    Action(
        "episode_edit",
        "episode",
        lambda w: {"title": "Changed", "number": 7},
        EDITORS,
        lambda w, said: Episode.objects.filter(pk=w["episode"], title="Changed", number=7).exists(),
    ),
    Action("episode_delete", "episode", lambda w: {}, EDITORS, _gone(Episode, "episode")),
    # Scenes
    Action(
        "scene_create",
        "episode",
        lambda w: _scene_fields("Noon"),
        EDITORS,
        lambda w, said: Scene.objects.filter(
            episode_id=w["episode"], title="Noon", prompt="Noon: the harbour."
        ).exists(),
    ),
    Action(
        "scene_edit",
        "scene",
        lambda w: _scene_fields("Changed"),
        EDITORS,
        lambda w, said: (_scene(w).title, _scene(w).prompt) == ("Changed", "Changed: the harbour."),
    ),
    Action(
        # The card's form with dialogue: the scene and its lines are saved together.
        "scene_edit",
        "scene",
        lambda w: {**_scene_fields("Spoken"), "dialogue": "[1] @mina: We launch at dawn."},
        EDITORS,
        lambda w, said: DialogueLine.objects.filter(
            scene_id=w["scene"], character_id=w["character"], text="We launch at dawn."
        ).exists(),
    ),
    Action("scene_delete", "scene", lambda w: {}, EDITORS, _gone(Scene, "scene")),
    Action(
        "scene_duplicate",
        "scene",
        lambda w: {},
        EDITORS,
        lambda w, said: Scene.objects.filter(
            episode_id=w["episode"], title="Dawn (copy)", position=1
        ).exists(),
    ),
    Action(
        "scene_move",
        "scene",
        lambda w: {"position": "1"},
        EDITORS,
        lambda w, said: _scene(w).position == 1 and _scene(w, "dusk").position == 0,
    ),
    Action(
        "scene_frame",
        "scene",
        lambda w: {"picture": SimpleUploadedFile("dawn.png", image_bytes(), "image/png")},
        EDITORS,
        lambda w, said: SceneFrame.objects.filter(scene_id=w["scene"], position="first").exists(),
        tail=("first",),
    ),
    # Generating (no provider is called while the request runs: the worker sends later)
    Action(
        "scene_generate",
        "dusk",
        lambda w: {"account": w["account"]},
        EDITORS,
        lambda w, said: _takes_of(w, "dusk") == 1,
    ),
    Action(
        # Dawn has a take in flight: only Dusk is waiting for one.
        "episode_generate",
        "episode",
        lambda w: {"account": w["account"]},
        EDITORS,
        # The takes are made by a task (tests/studio/test_generate_all.py): here, its batch.
        lambda w, said: (
            GenerationBatch.objects.filter(episode_id=w["episode"])
            .exclude(pk=w["batch"])
            .values_list("scene_ids", flat=True)
            .first()
            == [w["dusk"]]
        ),
    ),
    # Cuts: assembling an episode whose scenes all have a selected take (the worker renders)
    Action(
        "episode_cut",
        "ready",
        lambda w: {"title_card": "on", "crossfade": "0.5"},
        EDITORS,
        lambda w, said: Cut.objects.filter(
            episode_id=w["ready"], number=1, state=Cut.State.RENDERING
        ).exists(),
    ),
    # Takes
    Action(
        "take_cancel",
        "running",
        lambda w: {},
        EDITORS,
        lambda w, said: Take.objects.get(pk=w["running"]).job.state == JobState.CANCELLED,
    ),
    Action(
        "take_select",
        "finished",
        lambda w: {},
        EDITORS,
        lambda w, said: Take.objects.get(pk=w["finished"]).is_selected,
    ),
    Action(
        "take_retry",
        "failed",
        lambda w: {},
        EDITORS,
        lambda w, said: (
            Take.objects.filter(scene_id=w["scene"], job__state=JobState.PENDING)
            .exclude(pk=w["running"])
            .exists()
        ),
    ),
    Action("take_delete", "finished", lambda w: {}, EDITORS, _gone(Take, "finished")),
    Action(
        "take_remix",
        "finished",
        lambda w: {"prompt": "At night."},
        EDITORS,
        lambda w, said: Take.objects.filter(
            scene_id=w["scene"], job__kind=JobKind.REMIX, job__request__prompt="At night."
        ).exists(),
    ),
    Action(
        "take_extend",
        "finished",
        lambda w: {"prompt": "She turns.", "seconds": 4},
        EDITORS,
        lambda w, said: Take.objects.filter(scene_id=w["scene"], job__kind=JobKind.EXTEND).exists(),
    ),
    # A series' cast: which version of a character it makes (owners and editors)
    Action(
        "series_pin",
        ("series", "character"),
        lambda w: {"version": 1},
        EDITORS,
        lambda w, said: SeriesCharacter.objects.filter(
            series_id=w["series"], character_id=w["character"], version__number=1
        ).exists(),
    ),
    # Consistency: the drift threshold (owners), scoring a take again (reviewers and up)
    Action(
        "drift_threshold",
        None,
        lambda w: {"drift_threshold": "72"},
        OWNERS,
        lambda w, said: Workspace.objects.get(pk=w["workspace"]).drift_threshold == 72,
    ),
    Action(
        "take_score_again",
        "finished",
        lambda w: {},
        REVIEWERS,
        lambda w, said: TakeScore.objects.filter(take_id=w["finished"], state="pending").exists(),
    ),
    # Review board (tests/studio/test_review_board.py has the rest)
    Action(
        "review_episode",
        "episode",
        lambda w: {"take": w["finished"], "action": "approve"},
        REVIEWERS,
        lambda w, said: Take.objects.get(pk=w["finished"]).review_state == "approved",
    ),
    Action(
        # The world's takes carry no character version, so nothing is on this board to
        # approve: allowed roles are answered (the ticked take is not one of its own), the
        # others refused.
        "review_character",
        "character",
        lambda w: {"bulk": "1", "action": "approve", "takes": [w["finished"]]},
        REVIEWERS,
        None,
        answer=None,
    ),
    # Costs (owners only)
    Action(
        "budget_save",
        None,
        lambda w: {"scope": "workspace", "cap": "$1,200", "period": "month"},
        OWNERS,
        lambda w, said: Budget.objects.filter(
            workspace_id=w["workspace"], scope="workspace", cap=Decimal("1200")
        ).exists(),
    ),
    Action("budget_delete", "budget", lambda w: {}, OWNERS, _gone(Budget, "budget")),
    # Provider accounts (owners only)
    Action(
        "provider_accounts",
        None,
        lambda w: _account_fields("Backup"),
        OWNERS,
        lambda w, said: ProviderAccount.objects.filter(
            workspace_id=w["workspace"], name="Backup", concurrency_limit=2
        ).exists(),
    ),
    Action(
        "provider_account_edit",
        "account",
        lambda w: _account_fields("Renamed"),
        OWNERS,
        lambda w, said: ProviderAccount.objects.get(pk=w["account"]).name == "Renamed",
    ),
    # The API: tokens and outgoing webhooks (owners only). A new token or secret is shown in
    # the answer itself (200), never through a redirect.
    Action(
        "api_settings",
        None,
        lambda w: {"name": "Render script", "role": "viewer"},
        OWNERS,
        lambda w, said: ApiToken.objects.filter(
            workspace_id=w["workspace"], name="Render script", role="viewer"
        ).exists(),
        answer=200,
    ),
    Action(
        "api_token_revoke",
        "token",
        lambda w: {},
        OWNERS,
        lambda w, said: ApiToken.objects.get(pk=w["token"]).revoked_at is not None,
    ),
    Action(
        "webhook_list",
        None,
        lambda w: {"url": "http://127.0.0.1:9/new", "events": ["cut.ready"]},
        OWNERS,
        lambda w, said: (
            list(
                WebhookEndpoint.objects.filter(
                    workspace_id=w["workspace"], url="http://127.0.0.1:9/new"
                ).values_list("events", flat=True)
            )
            == [["cut.ready"]]
        ),
        answer=200,
    ),
    Action(
        "webhook_enabled",
        "endpoint",
        lambda w: {"enabled": "off"},
        OWNERS,
        lambda w, said: not WebhookEndpoint.objects.get(pk=w["endpoint"]).enabled,
    ),
    Action(
        "webhook_ping",
        "endpoint",
        lambda w: {},
        OWNERS,
        lambda w, said: WebhookDelivery.objects.filter(
            endpoint_id=w["endpoint"], event_type="ping"
        ).exists(),
    ),
    Action(
        "webhook_resend",
        ("endpoint", "delivery"),
        lambda w: {},
        OWNERS,
        lambda w, said: WebhookDelivery.objects.get(pk=w["delivery"]).state == "pending",
    ),
    Action("webhook_delete", "endpoint", lambda w: {}, OWNERS, _gone(WebhookEndpoint, "endpoint")),
]
# Not in the table: take_character cuts a clip out of the take's video file, which these
# factory-made takes do not have (tests/studio/test_storyboard_access.py refuses it to
# viewers, reviewers and other teams).


def _everything() -> dict[str, list[dict]]:
    """Every row of the studio, the library and the engine, to compare before and after."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for label in ("studio", "characters", "jobs")
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
    }


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS, ids=str)
def test_each_action_has_its_effect_for_roles_that_may_and_none_for_others(
    client: Client, members, world, role, action: Action
):
    client.force_login(members[role])
    if action.done is not None:
        assert not action.done(world, []), "the effect is there before the request"
    before = _everything()

    response = client.post(action.url(world), action.data(world))

    if role in action.may:
        said = [str(message) for message in get_messages(response.wsgi_request)]
        if action.answer is None:
            assert response.status_code not in (403, 404)
        else:
            assert response.status_code == action.answer, said
        if action.done is not None:
            assert action.done(world, said), said
    else:
        assert response.status_code == (404 if role == "outsider" else 403)
        assert _everything() == before


# What each URL argument of a workspace page names in the world.
URL_ARGUMENTS = {
    "member_id": "member",
    "budget_id": "budget",
    "account_id": "account",
    "character_id": "character",
    "asset_id": "asset",
    "share_id": "share",
    "series_id": "series",
    "episode_id": "episode",
    "scene_id": "scene",
    "take_id": "finished",
    "cut_number": "cut",
    "token_id": "token",
    "endpoint_id": "endpoint",
    "delivery_id": "delivery",
    "batch_id": "batch",
}
# take_character: see the note under ACTIONS. Answering an offer is done by the receiving
# workspace's owners, a world of its own: tests/characters/test_sharing.py runs every role
# and an outsider against accept, decline and remove.
NOT_IN_THE_TABLE = {"take_character", "share_accept", "share_decline", "share_remove"}


def test_every_other_page_under_a_workspace_refuses_a_post(owner_client, world):
    """The table above is every write: a page missing from it must not accept a POST."""
    from studio.urls import workspace_patterns

    covered = {action.name for action in ACTIONS} | NOT_IN_THE_TABLE
    for pattern in workspace_patterns:
        if pattern.name in covered:
            continue
        literal = {"variant": "video", "position": "first", "n": 0}
        kwargs = {
            name: literal[name] if name in literal else world[URL_ARGUMENTS[name]]
            for name in pattern.pattern.converters
        }
        url = reverse(pattern.name, kwargs={"slug": world["slug"], **kwargs})
        assert owner_client.post(url).status_code == 405, f"{pattern.name} takes a POST"


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, world):
    response = client.get(_url(world, "dashboard"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_character_of_another_team_is_a_404_even_by_id(client, members, world):
    foreign = CharacterFactory()  # another workspace's character
    client.force_login(members["owner"])
    url = reverse("character_detail", args=[world["slug"], foreign.pk])
    assert client.get(url).status_code == 404


def test_a_scene_of_another_team_cannot_be_moved_through_our_workspace(client, members, world):
    foreign_scene = SceneFactory()
    client.force_login(members["owner"])
    before = _everything()
    url = reverse("scene_move", args=[world["slug"], foreign_scene.pk])
    assert client.post(url, {"position": "0"}).status_code == 404
    assert _everything() == before


def test_state_changes_need_a_csrf_token(members, world):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(members["owner"])
    before = _everything()
    assert strict.post(_url(world, "scene_duplicate", "scene")).status_code == 403
    assert _everything() == before
