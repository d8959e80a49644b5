"""Routing in the studio: what the policy picks, why the others are out, characters as
references, the preflight while a scene is edited, budgets, and the capability matrix."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from characters.services import asset_add
from jobs.models import Budget, Job
from studio.generation import scene_routes, take_create
from tests.factories import CharacterFactory, EpisodeFactory, SceneFactory, SeriesFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes, image_bytes
from tests.studio.test_generate_all import run_batches

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def series(workspace):
    return SeriesFactory(workspace=workspace, style_guide="", routing_policy="cost")


@pytest.fixture
def episode(series):
    return EpisodeFactory(series=series)


@pytest.fixture
def mina(workspace):
    character = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    asset_add(
        character=character,
        upload=SimpleUploadedFile("mina.mp4", clip_bytes(seconds=3.0), "video/mp4"),
    )
    asset_add(
        character=character,
        upload=SimpleUploadedFile("mina.png", image_bytes("PNG", size=(64, 64)), "image/png"),
    )
    return character


@pytest.fixture
def accounts(workspace):
    return {
        "openai": ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai"),
        "seedance": ProviderAccountFactory(
            workspace=workspace, name="Seedance", kind="seedance", model=""
        ),
        "relay": ProviderAccountFactory(
            workspace=workspace, name="Relay", kind="sora_relay", model=""
        ),
    }


def _scene(episode, prompt="@mina looks out to sea.", **fields):
    fields.setdefault("duration", 8)
    fields.setdefault("size", "1280x720")
    return SceneFactory(episode=episode, prompt=prompt, **fields)


def test_cost_sends_a_scene_to_the_cheapest_capable_account(episode, mina, accounts):
    routes = scene_routes(scene=_scene(episode))
    assert routes.chosen == accounts["seedance"]  # about $0.66 against OpenAI's $0.80
    assert [o.name for o in routes.ranking.ordered] == ["Seedance", "OpenAI"]
    assert routes.summary == "Cheapest: Seedance (about $0.66). If it is down: OpenAI."


def test_the_characters_policy_keeps_a_scene_with_characters_on_saved_characters(
    episode, series, mina, accounts
):
    series.routing_policy = "characters"
    series.save()
    routes = scene_routes(scene=_scene(episode))
    assert routes.chosen == accounts["openai"]
    why = dict((o.name, reason) for o, reason in routes.ranking.excluded)
    assert why["Seedance"] == "It has no saved characters, and this scene's policy asks for them."


def test_a_scene_can_override_its_series_policy(episode, mina, accounts):
    scene = _scene(episode, routing_policy="pinned", pinned_account=accounts["openai"])
    assert scene_routes(scene=scene).chosen == accounts["openai"]


def test_at_a_provider_without_characters_they_travel_as_references(episode, mina, accounts):
    take = take_create(scene=_scene(episode))
    job = take.job
    assert job.provider_account == accounts["seedance"]
    fitted = job.job_request
    assert [(r.asset.kind, r.subject) for r in fitted.fit.references] == [
        ("image", f"character:{mina.pk}"),
        ("video", f"character:{mina.pk}"),
    ]
    assert job.routing["degraded"] is True
    assert job.routing["degraded_note"].startswith("Mina travels as 1 reference image and 1 clip")
    assert job.routing["reason"] == "Cheapest: Seedance (about $0.66)."
    assert job.budget_scope == f"series:{episode.series_id}"
    (fallback,) = fitted.fallbacks
    assert fallback.account_id == accounts["openai"].pk
    assert fallback.estimate == Decimal("0.80")
    assert not fallback.degraded
    # OpenAI registers Mina from her clip
    assert [c.subject for c in fallback.fit.registration_clips] == [f"character:{mina.pk}"]


def test_a_character_without_any_picture_cannot_go_to_a_provider_without_characters(
    workspace, episode, accounts
):
    CharacterFactory(workspace=workspace, handle="pip", name="Pip")
    routes = scene_routes(scene=_scene(episode, "@pip swims."))
    problems = routes.compiled[accounts["seedance"].pk].problems
    assert any("needs a reference image of Pip (@pip)" in p for p in problems)


def test_the_generate_panel_offers_the_automatic_choice_first(
    owner_client, workspace, episode, mina, accounts
):
    scene = _scene(episode)
    page = owner_client.get(
        reverse("scene_generate", args=[workspace.slug, scene.pk]), headers=HTMX
    ).content.decode()
    assert page.index('value="auto" checked') < page.index(f'value="{accounts["openai"].pk}"')
    assert "Cheapest: Seedance (about $0.66). If it is down: OpenAI." in page
    assert "the policy's pick" in page
    assert "Mina travels as 1 reference image and 1 clip" in page
    assert "Sora relay makes videos of 5, 10, 15 seconds; this scene asks for 8." in page


def test_generating_automatically_makes_the_take_where_the_policy_says(
    owner_client, workspace, episode, mina, accounts
):
    scene = _scene(episode)
    response = owner_client.post(
        reverse("scene_generate", args=[workspace.slug, scene.pk]), {"account": "auto"}, follow=True
    )
    job = Job.objects.get()
    assert job.provider_account == accounts["seedance"]
    assert "is on its way to Seedance (about $0.66)" in response.content.decode()


def test_a_take_over_budget_is_refused_with_what_is_left(
    owner_client, workspace, episode, mina, accounts
):
    Budget.objects.create(workspace=workspace, cap=Decimal("0.50"), label="Harbour Films")
    scene = _scene(episode)
    response = owner_client.post(
        reverse("scene_generate", args=[workspace.slug, scene.pk]), {"account": "auto"}, follow=True
    )
    assert not Job.objects.exists()
    assert (
        "This would cost about $0.66, but Harbour Films has $0.50 left this month of its $0.50 "
        "budget." in response.content.decode()
    )


def test_generate_all_automatically_routes_each_scene_by_its_policy(
    owner_client, workspace, episode, mina, accounts
):
    _scene(episode)
    _scene(
        episode, "Gulls over the jetty.", routing_policy="pinned", pinned_account=accounts["openai"]
    )
    url = reverse("episode_generate", args=[workspace.slug, episode.pk])
    page = owner_client.get(url).content.decode()
    assert "each scene to the provider its routing policy picks" in page
    assert "Seedance: 1 take" in page
    assert "OpenAI: 1 take" in page
    owner_client.post(url, {"account": "auto"})
    run_batches()  # the worker's part: the takes are made by a task
    made = dict(Job.objects.values_list("request__prompt", "provider_account__name"))
    assert made == {
        f"{{{{character:{mina.pk}}}}} looks out to sea.": "Seedance",
        "Gulls over the jetty.": "OpenAI",
    }


def test_the_preflight_answers_for_the_scene_as_typed(owner_client, workspace, episode, accounts):
    url = reverse("scene_preflight", args=[workspace.slug, episode.pk])
    page = owner_client.get(
        url, {"prompt": "Gulls.", "duration": "10", "size": "720x1280"}, headers=HTMX
    ).content.decode()
    assert "<html" not in page
    assert "Cheapest: Relay (about $0.12)." in page
    assert "OpenAI makes videos of 4, 8, 12 seconds; this scene asks for 10." in page


def test_the_preflight_names_an_unknown_handle(owner_client, workspace, episode, accounts):
    url = reverse("scene_preflight", args=[workspace.slug, episode.pk])
    page = owner_client.get(url, {"prompt": "@nobody waves.", "duration": "8"}).content.decode()
    assert "@nobody is not a character in this workspace or shared with it." in page
    assert "No provider can make this scene as it stands." in page


def test_editing_a_scene_shows_who_can_make_it(owner_client, workspace, episode, mina, accounts):
    scene = _scene(episode)
    page = owner_client.get(
        reverse("scene_edit", args=[workspace.slug, scene.pk]), headers=HTMX
    ).content.decode()
    assert "Who can make it" in page
    assert reverse("scene_preflight", args=[workspace.slug, episode.pk]) in page
    assert "Cheapest: Seedance (about $0.66)" in page


def test_the_scene_form_offers_the_workspaces_accounts_to_pin_from_one_plain_read(
    owner_client, workspace, episode, accounts
):
    ProviderAccountFactory(name="Elsewhere")  # another workspace's
    scene = _scene(episode, prompt="Gulls.")
    with CaptureQueriesContext(connection) as queries:
        page = owner_client.get(
            reverse("scene_edit", args=[workspace.slug, scene.pk]), headers=HTMX
        ).content.decode()
    start = page.index('<select name="pinned_account"')
    options = page[start : page.index("</select>", start)]
    pinned = re.findall(r"<option[^>]*>([^<(]+?)(?: \(|<)", options)
    assert pinned == ["None", "OpenAI", "Relay", "Seedance"]
    # Django's choice iterator read them through a server-side cursor on PostgreSQL:
    # DECLARE, FETCH and CLOSE for a handful of rows.
    assert not [q["sql"] for q in queries.captured_queries if "DECLARE" in q["sql"]]


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("reviewer", 403), ("outsider", 404)]
)
def test_the_preflight_is_for_those_who_may_edit(client, members, workspace, episode, role, status):
    client.force_login(members[role])
    url = reverse("scene_preflight", args=[workspace.slug, episode.pk])
    assert client.get(url, {"prompt": "Gulls."}).status_code == status


def test_pinning_a_series_needs_an_account(owner_client, workspace, series):
    response = owner_client.post(
        reverse("series_edit", args=[workspace.slug, series.pk]),
        {
            "title": series.title,
            "default_size": "1280x720",
            "default_duration": 8,
            "routing_policy": "pinned",
        },
    )
    assert "Choose the provider account the policy pins to." in response.content.decode()


def test_another_teams_account_cannot_be_pinned(owner_client, workspace, series):
    theirs = ProviderAccountFactory(name="Their account")
    response = owner_client.post(
        reverse("series_edit", args=[workspace.slug, series.pk]),
        {
            "title": series.title,
            "default_size": "1280x720",
            "default_duration": 8,
            "routing_policy": "pinned",
            "pinned_account": theirs.pk,
        },
    )
    assert "Select a valid choice." in response.content.decode()
    series.refresh_from_db()
    assert series.pinned_account is None


@pytest.mark.parametrize("role", ["owner", "editor", "reviewer", "viewer"])
def test_every_member_reads_the_capability_matrix(client, members, workspace, accounts, role):
    client.force_login(members[role])
    page = client.get(reverse("provider_capabilities", args=[workspace.slug])).content.decode()
    assert "no: characters travel as references" in page  # Seedance
    assert "$3.83 a million tokens" in page
    assert "$0.10 a second of video" in page
    assert "$0.12 a video" in page
    assert "about $0.66" in page  # an 8 s 1280x720 video at Seedance
    assert "about $0.80" in page  # and at OpenAI
    assert ("Manage accounts and keys" in page) == (role == "owner")


def test_an_outsider_gets_no_capability_matrix(client, members, workspace, accounts):
    client.force_login(members["outsider"])
    url = reverse("provider_capabilities", args=[workspace.slug])
    assert client.get(url).status_code == 404


def test_the_capability_matrix_tells_the_live_providers_apart(owner_client, workspace):
    for kind, model in (("kling", "kling-v3-omni"), ("runway", ""), ("veo", "")):
        ProviderAccountFactory(workspace=workspace, name=kind.title(), kind=kind, model=model)

    page = owner_client.get(
        reverse("provider_capabilities", args=[workspace.slug])
    ).content.decode()

    assert "yes, from up to 4 pictures or from a 3–8 s clip" in page  # Kling's elements
    assert "by the saved element: “&lt;&lt;&lt;element_1&gt;&gt;&gt;”" in page
    assert "$0.01 a credit" in page  # Runway
    assert "by reference, tagged: “Mina (@Image1)”" in page
    assert "with sound" in page
    assert "cannot stop it: abandoned, charged" in page  # Kling and Veo
    assert "stops it at the provider" in page  # Runway
