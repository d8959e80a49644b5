"""Sharing a character with another workspace: read and mention there, change only at home."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters import services
from characters.mentions import parse_mentions
from characters.models import Character, CharacterShare, ReferenceAsset
from studio.models import Role
from studio.services import scene_create, scene_resolve_mentions
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    MembershipFactory,
    SeriesFactory,
    WorkspaceFactory,
)
from tests.samples import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner():
    """Another team, which our character gets shared with."""
    return WorkspaceFactory(name="Harbour Films", slug="harbour")


@pytest.fixture
def partner_owner(partner):
    """An owner of the partner workspace: may change anything of theirs, not ours."""
    return MembershipFactory(workspace=partner, role=Role.OWNER).user


@pytest.fixture
def partner_client(client, partner_owner):
    client.force_login(partner_owner)
    return client


@pytest.fixture
def character(workspace):
    return CharacterFactory(workspace=workspace, name="Mina", handle="mina")


@pytest.fixture
def front(character):
    upload = SimpleUploadedFile("front.png", image_bytes("PNG"), "image/png")
    return services.asset_add(character=character, upload=upload)


@pytest.fixture
def share(character, partner, members):
    return services.character_share(
        character=character, workspace_slug=partner.slug, created_by=members["editor"]
    )


def share_url(character) -> str:
    return reverse("character_share", args=[character.workspace.slug, character.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Sharing -------------------------------------------------------------------------------


def test_it_lets_an_editor_share_a_character_with_another_workspace_by_slug(
    client, members, character, partner
):
    client.force_login(members["editor"])

    response = client.post(share_url(character), {"workspace": "harbour"}, follow=True)

    assert response.redirect_chain[-1][0] == character.get_absolute_url()
    assert "Mina is now shared with Harbour Films." in messages_of(response)
    share = CharacterShare.objects.get()
    assert (share.character, share.workspace, share.created_by) == (
        character,
        partner,
        members["editor"],
    )
    page = response.content.decode()
    assert "Harbour Films" in page
    assert "(harbour)" in page
    assert "Revoke" in page


def test_it_accepts_a_slug_typed_in_capitals(client, members, character, partner):
    client.force_login(members["editor"])

    response = client.post(share_url(character), {"workspace": "Harbour"})

    assert response.status_code == 302
    assert CharacterShare.objects.filter(character=character, workspace=partner).exists()


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_it_refuses_sharing_to_members_who_may_not_edit(client, members, character, partner, role):
    client.force_login(members[role])

    response = client.post(share_url(character), {"workspace": "harbour"})

    assert response.status_code == 403
    assert not CharacterShare.objects.exists()


def test_it_says_plainly_when_no_workspace_has_the_slug(owner_client, character):
    response = owner_client.post(share_url(character), {"workspace": "nowhere"})

    assert response.status_code == 400
    assert "No workspace is called “nowhere”." in response.content.decode()
    assert not CharacterShare.objects.exists()


def test_it_says_plainly_that_a_character_is_already_in_its_own_workspace(
    owner_client, workspace, character
):
    response = owner_client.post(share_url(character), {"workspace": workspace.slug})

    assert response.status_code == 400
    assert "A character is already available in its own workspace." in response.content.decode()
    assert not CharacterShare.objects.exists()


def test_it_says_plainly_when_the_character_is_already_shared_there(owner_client, character, share):
    response = owner_client.post(share_url(character), {"workspace": "harbour"})

    assert response.status_code == 400
    assert "Mina is already shared with Harbour Films." in response.content.decode()
    assert CharacterShare.objects.count() == 1


def test_it_explains_a_slug_that_cannot_be_a_workspace(owner_client, character):
    response = owner_client.post(share_url(character), {"workspace": "not a slug!"})

    assert response.status_code == 400
    assert "Enter a valid “slug”" in response.content.decode()
    assert not CharacterShare.objects.exists()


def test_it_keeps_the_typed_slug_in_the_share_form_after_an_error(owner_client, character):
    response = owner_client.post(share_url(character), {"workspace": "nowhere"})

    assert 'value="nowhere"' in response.content.decode()


# --- What the other workspace sees ---------------------------------------------------------


def test_it_shows_a_shared_character_in_the_other_library_under_shared_with(
    partner_client, partner, character, share
):
    CharacterFactory(workspace=partner, name="Jun", handle="jun")

    page = partner_client.get(reverse("character_list", args=[partner.slug])).content.decode()

    heading = page.index("Shared with Harbour Films")
    assert page.index("@jun") < heading < page.index("@mina")
    assert f"from {character.workspace.name}" in page


def test_it_shows_only_shared_characters_when_the_other_workspace_has_none_of_its_own(
    partner_client, partner, share
):
    page = partner_client.get(reverse("character_list", args=[partner.slug])).content.decode()

    assert "No characters yet." in page
    assert "Shared with Harbour Films" in page
    assert "@mina" in page


def test_it_lets_the_other_workspace_open_the_detail_page_read_only(
    partner_client, partner, character, front, share
):
    url = reverse("character_detail", args=[partner.slug, character.pk])

    response = partner_client.get(url)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Mina" in page
    assert f"Shared by {character.workspace.name}: you can mention it, not change it." in page
    thumbnail = reverse("asset_file", args=[partner.slug, character.pk, front.pk, "thumbnail"])
    assert thumbnail in page
    for name in ("character_edit", "character_delete", "asset_upload", "character_share"):
        assert f'"{reverse(name, args=[partner.slug, character.pk])}"' not in page
    assert "Revoke" not in page
    assert "Sharing" not in page


def test_it_serves_the_shared_references_to_the_other_workspace(
    partner_client, partner, character, front, share
):
    url = reverse("asset_file", args=[partner.slug, character.pk, front.pk, "thumbnail"])

    response = partner_client.get(url)
    b"".join(response.streaming_content)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"


def _change_urls(partner, character, front, share):
    slug, pk = partner.slug, character.pk
    return [
        ("get", reverse("character_edit", args=[slug, pk]), {}),
        ("post", reverse("character_edit", args=[slug, pk]), {"name": "X", "handle": "x_x"}),
        ("get", reverse("character_delete", args=[slug, pk]), {}),
        ("post", reverse("character_delete", args=[slug, pk]), {}),
        ("post", reverse("asset_upload", args=[slug, pk]), {"label": "x"}),
        ("post", reverse("asset_delete", args=[slug, pk, front.pk]), {}),
        ("post", reverse("character_share", args=[slug, pk]), {"workspace": "elsewhere"}),
        ("post", reverse("character_unshare", args=[slug, pk, share.pk]), {}),
    ]


def test_it_answers_404_to_the_other_workspace_for_every_change(
    partner_client, partner, character, front, share
):
    WorkspaceFactory(slug="elsewhere")

    for method, url, data in _change_urls(partner, character, front, share):
        response = getattr(partner_client, method)(url, data)
        assert response.status_code == 404, (method, url)

    character.refresh_from_db()
    assert (character.name, character.handle) == ("Mina", "mina")
    assert list(character.assets.all()) == [front]
    assert list(CharacterShare.objects.all()) == [share]


def test_it_hides_a_character_that_is_not_shared_from_the_other_workspace(
    partner_client, partner, character, front
):
    detail = reverse("character_detail", args=[partner.slug, character.pk])
    original = reverse("asset_file", args=[partner.slug, character.pk, front.pk, "original"])
    library = reverse("character_list", args=[partner.slug])

    assert partner_client.get(detail).status_code == 404
    assert partner_client.get(original).status_code == 404
    assert "@mina" not in partner_client.get(library).content.decode()


def test_it_keeps_sharing_out_of_a_third_workspace(client, character, share):
    stranger = MembershipFactory(role=Role.OWNER)
    client.force_login(stranger.user)

    url = reverse("character_detail", args=[stranger.workspace.slug, character.pk])

    assert client.get(url).status_code == 404


# --- Revoking ------------------------------------------------------------------------------


def unshare_url(character, share) -> str:
    return reverse("character_unshare", args=[character.workspace.slug, character.pk, share.pk])


def test_it_revokes_a_share_and_the_other_workspace_loses_access(
    client, members, partner_owner, partner, character, front, share
):
    client.force_login(members["editor"])

    response = client.post(unshare_url(character, share), follow=True)

    assert response.redirect_chain[-1][0] == character.get_absolute_url()
    assert "Harbour Films can no longer use Mina." in messages_of(response)
    assert "Not shared with other workspaces." in response.content.decode()
    assert not CharacterShare.objects.exists()
    client.force_login(partner_owner)
    detail = reverse("character_detail", args=[partner.slug, character.pk])
    thumbnail = reverse("asset_file", args=[partner.slug, character.pk, front.pk, "thumbnail"])
    library = reverse("character_list", args=[partner.slug])
    assert client.get(detail).status_code == 404
    assert client.get(thumbnail).status_code == 404
    assert "@mina" not in client.get(library).content.decode()


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_it_refuses_revoking_to_members_who_may_not_edit(client, members, character, share, role):
    client.force_login(members[role])

    response = client.post(unshare_url(character, share))

    assert response.status_code == 403
    assert CharacterShare.objects.count() == 1


def test_it_answers_404_for_a_share_of_another_character(owner_client, workspace, share):
    other = CharacterFactory(workspace=workspace)

    response = owner_client.post(unshare_url(other, share))

    assert response.status_code == 404
    assert CharacterShare.objects.count() == 1


def test_it_removes_the_shares_with_the_character(owner_client, workspace, character, share):
    url = reverse("character_delete", args=[workspace.slug, character.pk])

    owner_client.post(url)

    assert not CharacterShare.objects.exists()
    assert not Character.objects.exists()
    assert not ReferenceAsset.objects.exists()


# --- Scene counts stay within each workspace -----------------------------------------------


def test_it_counts_only_each_workspaces_own_scenes_on_a_shared_character_card(
    owner_client, client, partner_owner, workspace, partner, character, share
):
    partner_episode = EpisodeFactory(series=SeriesFactory(workspace=partner))
    for _ in range(2):
        scene_create(episode=partner_episode, prompt="@mina waves from the pier.")
    our_episode = EpisodeFactory(series=SeriesFactory(workspace=workspace))
    scene_create(episode=our_episode, prompt="@mina reads a letter.")

    ours = owner_client.get(reverse("character_list", args=[workspace.slug])).content.decode()
    client.force_login(partner_owner)
    theirs = client.get(reverse("character_list", args=[partner.slug])).content.decode()

    assert "0 references · 1 scene" in ours
    assert "0 references · 2 scenes" in theirs


def test_it_lists_only_the_viewers_own_scenes_on_a_shared_characters_page(
    partner_client, workspace, partner, character, share
):
    scene_create(
        episode=EpisodeFactory(series=SeriesFactory(workspace=workspace, title="Home Series")),
        prompt="@mina reads a letter.",
    )
    scene_create(
        episode=EpisodeFactory(series=SeriesFactory(workspace=partner, title="Pier Stories")),
        prompt="@mina waves from the pier.",
    )

    page = partner_client.get(
        reverse("character_detail", args=[partner.slug, character.pk])
    ).content.decode()

    assert "Pier Stories" in page
    assert "Home Series" not in page


# --- Mentions ------------------------------------------------------------------------------


def test_it_resolves_an_own_handle_and_a_shared_handle(partner, character, share):
    jun = CharacterFactory(workspace=partner, handle="jun")

    found = scene_resolve_mentions(workspace=partner, prompt="@jun hands @Mina a lantern.")

    assert found == [jun, character]


def test_it_links_a_scene_to_the_shared_character_it_mentions(partner, character, share):
    episode = EpisodeFactory(series=SeriesFactory(workspace=partner))

    scene = scene_create(episode=episode, prompt="Close-up: @mina smiles.")

    assert list(scene.mentions.all()) == [character]


def test_it_prefers_an_own_character_over_a_shared_one_with_the_same_handle(
    partner, character, share
):
    own = CharacterFactory(workspace=partner, handle="mina")

    assert scene_resolve_mentions(workspace=partner, prompt="@mina runs.") == [own]


def test_it_calls_a_handle_shared_from_two_workspaces_ambiguous(partner, character, share):
    twin = CharacterFactory(handle="mina")  # from a third workspace
    services.character_share(character=twin, workspace_slug=partner.slug)

    with pytest.raises(ValidationError) as caught:
        scene_resolve_mentions(workspace=partner, prompt="@mina runs.")

    assert caught.value.message_dict == {
        "prompt": [
            "@mina names characters shared from several workspaces; ask for one to be renamed."
        ]
    }


def test_it_names_an_unknown_handle(partner, character, share):
    with pytest.raises(ValidationError) as caught:
        scene_resolve_mentions(workspace=partner, prompt="@mina meets @nobody.")

    assert caught.value.message_dict == {
        "prompt": ["@nobody is not a character in this workspace or shared with it."]
    }


def test_it_no_longer_resolves_a_handle_once_its_share_is_revoked(partner, character, share):
    services.character_unshare(share=share)

    with pytest.raises(ValidationError) as caught:
        scene_resolve_mentions(workspace=partner, prompt="@mina runs.")

    assert "@mina is not a character" in caught.value.message_dict["prompt"][0]


def test_it_does_not_resolve_a_character_of_a_workspace_that_did_not_share_it(partner):
    CharacterFactory(handle="mina")  # another workspace's, not shared

    with pytest.raises(ValidationError):
        scene_resolve_mentions(workspace=partner, prompt="@mina runs.")


def test_it_refuses_a_scene_that_mentions_an_unknown_handle(partner):
    episode = EpisodeFactory(series=SeriesFactory(workspace=partner))

    with pytest.raises(ValidationError):
        scene_create(episode=episode, prompt="@ghost walks in.")

    assert not episode.scenes.exists()


@pytest.mark.parametrize(
    ("prompt", "handles"),
    [
        ("Write to a@b.com about it.", []),
        ("mina@studio.com and @jun", ["jun"]),
        ("@Mina meets @mina and @JUN.", ["mina", "jun"]),
        ("(@mina) and @jun's hat", ["mina", "jun"]),
        ("@@mina and @x", []),
        ("Nobody at all.", []),
    ],
)
def test_it_finds_mentions_but_not_e_mail_addresses(prompt, handles):
    assert parse_mentions(prompt) == handles
