"""The scene page: preflight per provider, generating, the live take card, media and selection."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from jobs.models import Job, JobState, ProviderAccount
from studio.models import Take
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(workspace):
    series = SeriesFactory(workspace=workspace)
    return SceneFactory(
        episode=EpisodeFactory(series=series), prompt="Gulls.", duration=8, size="1280x720"
    )


@pytest.fixture
def accounts(workspace):
    return {
        "openai": ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai"),
        "relay": ProviderAccountFactory(
            workspace=workspace, name="Relay", kind="sora_relay", model=""
        ),
    }


def test_the_scene_page_shows_each_providers_price_or_why_it_cannot(owner_client, scene, accounts):
    page = owner_client.get(scene.get_absolute_url()).content.decode()
    assert "OpenAI" in page
    assert "about $0.80" in page
    assert "Sora relay makes videos of 5, 10, 15 seconds; this scene asks for 8." in page


def test_generating_makes_a_pending_take_at_the_chosen_provider(owner_client, scene, accounts):
    url = reverse("scene_generate", args=[scene.episode.series.workspace.slug, scene.pk])
    response = owner_client.post(url, {"account": accounts["openai"].pk}, follow=True)
    take = Take.objects.get(scene=scene)
    assert take.job.provider_account == accounts["openai"]
    assert take.job.state == JobState.PENDING
    assert take.job.cost_estimate == Decimal("0.80")
    assert f"Take {take.pk} of scene 1 is on its way to OpenAI" in response.content.decode()


def test_a_refused_generation_says_why_and_creates_nothing(owner_client, scene, accounts):
    url = reverse("scene_generate", args=[scene.episode.series.workspace.slug, scene.pk])
    response = owner_client.post(url, {"account": accounts["relay"].pk}, follow=True)
    assert "this scene asks for 8" in response.content.decode()
    assert not Take.objects.exists()


def test_another_workspaces_account_is_not_offered_or_usable(owner_client, scene, accounts):
    foreign = ProviderAccountFactory(name="Foreign")
    assert "Foreign" not in owner_client.get(scene.get_absolute_url()).content.decode()
    url = reverse("scene_generate", args=[scene.episode.series.workspace.slug, scene.pk])
    owner_client.post(url, {"account": foreign.pk})
    assert not Take.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"), [("reviewer", 403), ("viewer", 403), ("outsider", 404)]
)
def test_only_editors_and_owners_may_generate(client, members, scene, accounts, role, status):
    client.force_login(members[role])
    url = reverse("scene_generate", args=[scene.episode.series.workspace.slug, scene.pk])
    assert client.post(url, {"account": accounts["openai"].pk}).status_code == status
    assert not Take.objects.exists()


def test_an_in_flight_take_card_keeps_polling_and_a_finished_one_stops(
    owner_client, scene, accounts
):
    slug = scene.episode.series.workspace.slug
    take = TakeFactory(
        scene=scene, account=accounts["openai"], state=JobState.RUNNING, job__progress=40
    )
    url = reverse("take_card", args=[slug, take.pk])
    response = owner_client.get(url, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith(f'<li class="card take" id="take-{take.pk}"')
    assert 'hx-trigger="every 1s"' in page
    assert 'aria-valuenow="40"' in page
    Job.objects.filter(pk=take.job.pk).update(
        state=JobState.FAILED, error_message="The provider could not make this video: no."
    )
    response = owner_client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 286  # htmx stops polling
    assert "The provider could not make this video: no." in response.content.decode()


def test_a_finished_take_plays_from_access_checked_media(client, members, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.SUCCEEDED)
    take.job.video.save("video.mp4", ContentFile(clip_bytes(seconds=1.0)))
    slug = scene.episode.series.workspace.slug
    url = reverse("take_media", args=[slug, take.pk, "video"])
    client.force_login(members["viewer"])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == clip_bytes(seconds=1.0)
    client.force_login(members["outsider"])
    assert client.get(url).status_code == 404
    client.force_login(members["viewer"])
    assert client.get(reverse("take_media", args=[slug, take.pk, "bogus"])).status_code == 404


def test_selecting_a_take_replaces_the_scenes_previous_choice(owner_client, scene, accounts):
    first = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.SUCCEEDED)
    second = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.SUCCEEDED)
    slug = scene.episode.series.workspace.slug
    owner_client.post(reverse("take_select", args=[slug, first.pk]))
    owner_client.post(reverse("take_select", args=[slug, second.pk]))
    assert list(Take.objects.filter(is_selected=True)) == [second]


def test_an_unfinished_take_cannot_be_selected(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.RUNNING)
    slug = scene.episode.series.workspace.slug
    response = owner_client.post(reverse("take_select", args=[slug, take.pk]), follow=True)
    assert "Only a finished take can be selected." in response.content.decode()
    assert not Take.objects.filter(is_selected=True).exists()


def test_cancelling_a_waiting_take_needs_no_provider(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.PENDING)
    slug = scene.episode.series.workspace.slug
    owner_client.post(reverse("take_cancel", args=[slug, take.pk]))
    take.job.refresh_from_db()
    assert take.job.state == JobState.CANCELLED


# --- Provider accounts --------------------------------------------------------


def test_an_owner_adds_an_account_and_the_key_is_never_shown_again(owner_client, workspace):
    url = reverse("provider_accounts", args=[workspace.slug])
    owner_client.post(
        url,
        {
            "name": "Gateway",
            "kind": "openai",
            "base_url": "https://gateway.example/v1",
            "model": "sora-2",
            "enabled": "on",
            "concurrency_limit": 3,
            "api_key": "sk-live-SECRET-9876",
        },
    )
    account = ProviderAccount.objects.get(workspace=workspace)
    assert account.api_key() == "sk-live-SECRET-9876"
    assert "SECRET" not in account.api_key_encrypted
    assert account.api_key_hint == "…9876"
    for page in (url, reverse("provider_account_edit", args=[workspace.slug, account.pk])):
        html = owner_client.get(page).content.decode()
        assert "sk-live-SECRET" not in html
        assert "…9876" in html


def test_saving_an_account_without_a_key_keeps_the_old_one(owner_client, workspace):
    account = ProviderAccountFactory(workspace=workspace)
    account.set_api_key("sk-old-key-1234")
    account.save()
    owner_client.post(
        reverse("provider_account_edit", args=[workspace.slug, account.pk]),
        {"name": "Renamed", "kind": "openai", "base_url": account.base_url, "concurrency_limit": 2},
    )
    account.refresh_from_db()
    assert (account.name, account.api_key()) == ("Renamed", "sk-old-key-1234")


@pytest.mark.parametrize(("role", "status"), [("editor", 403), ("viewer", 403), ("outsider", 404)])
def test_only_owners_manage_provider_accounts(client, members, workspace, role, status):
    client.force_login(members[role])
    assert client.get(reverse("provider_accounts", args=[workspace.slug])).status_code == status


@pytest.mark.parametrize(
    ("header", "status", "span"),
    [
        ("bytes=0-99", 206, (0, 99)),
        ("bytes=100-", 206, (100, None)),
        ("bytes=-10", 206, (-10, None)),
        ("bytes=0-999999999", 206, (0, None)),
        ("bytes=999999999-", 416, None),
        ("bytes=0-1,5-9", 200, None),  # several ranges: the whole file is a valid answer
    ],
)
def test_a_players_byte_ranges_are_honoured(owner_client, scene, accounts, header, status, span):
    take = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.SUCCEEDED)
    data = clip_bytes(seconds=1.0)
    take.job.video.save("video.mp4", ContentFile(data))
    url = reverse("take_media", args=[scene.episode.series.workspace.slug, take.pk, "video"])
    response = owner_client.get(url, headers={"Range": header})
    assert response.status_code == status
    if status == 416:
        assert response["Content-Range"] == f"bytes */{len(data)}"
        return
    assert response["Accept-Ranges"] == "bytes"
    body = b"".join(response.streaming_content)
    if span is None:
        assert body == data
        return
    start, end = span
    expected = data[start:] if end is None else data[start : end + 1]
    assert body == expected
    first = len(data) + start if start < 0 else start
    assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert response["Content-Length"] == str(len(expected))
