"""Rough edges a new user reads: prices as people write them, copy without slips, the
character library's empty state only when there is nothing at all, and a provider that
cannot make a scene offered with its reason beside its (disabled) radio."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from characters import services as character_services
from jobs.models import JobState, PriceEntry
from studio import cards
from studio.models import Role, Take
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    MembershipFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
    WorkspaceFactory,
)
from tests.jobs.factories import ProviderAccountFactory

pytestmark = pytest.mark.django_db

EMPTY_LIBRARY = "No characters yet."


@pytest.fixture
def scene(workspace):
    series = SeriesFactory(workspace=workspace)
    return SceneFactory(episode=EpisodeFactory(series=series), duration=8, size="1280x720")


def shared_with(character, workspace) -> None:
    """Offer the character to `workspace` and accept it there."""
    offer = character_services.character_share(character=character, workspace_slug=workspace.slug)
    receiver = MembershipFactory(workspace=workspace, role=Role.OWNER).user
    character_services.share_accept(share=offer, accepted_by=receiver)


# --- Prices ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0.1000000000", "$0.10"),
        ("0.0350000000", "$0.035"),
        ("0.1680000000", "$0.168"),
        ("0.0000038272", "$0.0000038272"),
        ("1200", "$1,200.00"),
        ("0", "$0.00"),
        ("2.5", "$2.50"),
    ],
)
def test_a_price_keeps_two_decimals_and_only_the_others_that_count(amount, shown):
    assert cards.price(Decimal(amount)) == shown


def test_a_rate_names_its_unit_in_words():
    assert cards.rate(Decimal("0.1000000000"), "second") == "$0.10 per second"
    assert cards.rate(Decimal("0.5000000000"), "request") == "$0.50 per video"
    assert cards.rate(Decimal("0.0000038272"), "token") == "$3.8272 per million tokens"
    assert cards.price(None) == cards.rate(None, "second") == ""


def test_the_price_book_shows_prices_without_raw_decimals(client, members, workspace):
    PriceEntry.objects.update_or_create(
        provider_kind="openai",
        model="sora-2",
        size="",
        unit="second",
        defaults={"amount": Decimal("0.1"), "source": "OpenAI pricing"},
    )
    client.force_login(members["viewer"])
    page = client.get(reverse("provider_capabilities", args=[workspace.slug])).content.decode()
    assert "$0.10 per second" in page
    assert not re.search(r"\d\.\d{5,}0\b", page), "a price with its raw trailing zeros"


def test_an_accounts_own_price_is_edited_as_it_was_typed(owner_client, workspace):
    account = ProviderAccountFactory(workspace=workspace, price_override=Decimal("0.035"))
    url = reverse("provider_account_edit", args=[workspace.slug, account.pk])
    page = owner_client.get(url).content.decode()
    assert 'value="0.035"' in page
    assert "0.0350000000" not in page


# --- Copy -----------------------------------------------------------------------------


def test_an_extension_says_why_it_stays_at_its_provider(owner_client, scene, workspace):
    openai = ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    finished = TakeFactory(scene=scene, account=openai, job__provider_job_id="video_123")
    url = reverse("take_extend", args=[workspace.slug, finished.pk])
    owner_client.post(url, {"prompt": "She turns to the sea.", "seconds": 4})
    extension = Take.objects.exclude(pk=finished.pk).get()
    assert extension.job.routing["reason"] == (
        "An extension stays at the provider that made its source."
    )
    page = owner_client.get(scene.get_absolute_url()).content.decode()
    assert "An extension stays at the provider that made its source." in page
    assert "A extend" not in page


def test_a_remix_says_why_it_stays_at_its_provider(owner_client, scene, workspace):
    openai = ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    finished = TakeFactory(scene=scene, account=openai, job__provider_job_id="video_123")
    url = reverse("take_remix", args=[workspace.slug, finished.pk])
    owner_client.post(url, {"prompt": "At night."})
    remix = Take.objects.exclude(pk=finished.pk).get()
    assert remix.job.routing["reason"] == "A remix stays at the provider that made its source."


def test_a_retry_names_its_account_once(owner_client, scene, workspace):
    seedance = ProviderAccountFactory(
        workspace=workspace, name="Seedance (emulator)", kind="seedance", model=""
    )
    failed = TakeFactory(scene=scene, account=seedance, state=JobState.FAILED)
    response = owner_client.post(
        reverse("take_retry", args=[workspace.slug, failed.pk]), follow=True
    )
    page = response.content.decode()
    retry = Take.objects.exclude(pk=failed.pk).get()
    assert f"Take {retry.pk} retries take {failed.pk} at Seedance (emulator)." in page
    assert "(ModelArk))" not in page


def test_generating_every_scene_automatically_reads_without_a_stray_comma(
    owner_client, scene, workspace
):
    ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    url = reverse("episode_generate", args=[workspace.slug, scene.episode_id])
    page = " ".join(owner_client.get(url).content.decode().split())
    assert "Automatic</strong>: 1 take, about" in page
    assert "each scene to the provider its routing policy picks" in page
    assert "picks," not in page


# --- The character library's empty state ----------------------------------------------


def test_a_library_with_only_shared_characters_lists_them_without_the_empty_state(
    client, members, workspace
):
    elsewhere = WorkspaceFactory(name="Harbour Films")
    shared_with(CharacterFactory(workspace=elsewhere, name="Mina Okafor"), workspace)
    client.force_login(members["editor"])
    page = client.get(reverse("character_list", args=[workspace.slug])).content.decode()
    assert "Mina Okafor" in page
    assert f"Shared with {workspace.name}" in page
    assert EMPTY_LIBRARY not in page
    assert "has no characters of its own yet" in page
    assert reverse("character_create", args=[workspace.slug]) in page


def test_a_library_with_nothing_at_all_shows_the_empty_state(client, members, workspace):
    client.force_login(members["viewer"])
    page = client.get(reverse("character_list", args=[workspace.slug])).content.decode()
    assert EMPTY_LIBRARY in page
    assert "Shared with" not in page


def test_a_library_with_its_own_characters_shows_no_empty_state(client, members, workspace):
    CharacterFactory(workspace=workspace, name="Otto Brandt")
    client.force_login(members["viewer"])
    page = client.get(reverse("character_list", args=[workspace.slug])).content.decode()
    assert "Otto Brandt" in page
    assert EMPTY_LIBRARY not in page
    assert "of its own yet" not in page


def test_an_outsider_sees_no_library(client, members, workspace):
    client.force_login(members["outsider"])
    response = client.get(reverse("character_list", args=[workspace.slug]))
    assert response.status_code == 404


# --- Provider options -----------------------------------------------------------------


def test_a_provider_that_cannot_make_the_scene_is_disabled_with_its_reason(
    owner_client, scene, workspace
):
    relay = ProviderAccountFactory(workspace=workspace, name="Relay", kind="sora_relay", model="")
    page = owner_client.get(scene.get_absolute_url()).content.decode()
    radio = re.search(rf'<input type="radio" name="account" value="{relay.pk}"[^>]*>', page)
    assert radio
    assert " disabled" in radio.group(0)
    assert f'aria-describedby="why-not-{relay.pk}"' in radio.group(0)
    reason = re.search(rf'id="why-not-{relay.pk}">([^<]*)<', page)
    assert "this scene asks for 8" in reason.group(1)
