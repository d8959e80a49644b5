"""Sharing a character: an offer the receiving owners accept or decline; either side ends it."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from characters import services
from characters.mentions import parse_mentions
from characters.models import Character, CharacterShare, ReferenceAsset
from characters.selectors import characters_visible_to, share_offers_for
from studio.models import Role
from studio.services import scene_create, scene_resolve_mentions
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    MembershipFactory,
    SeriesFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.samples import image_bytes
from tests.support.library import list_url, share_url
from tests.support.pages import messages_of

pytestmark = pytest.mark.django_db

Status = CharacterShare.Status
WAITING = "Offered to “{}”: waiting for its owners to accept."


@pytest.fixture
def partner():
    """Another team, which our character gets offered to."""
    return WorkspaceFactory(name="Harbour Films", slug="harbour")


@pytest.fixture
def partner_owner(partner):
    """An owner of the partner workspace: answers offers made to it."""
    return MembershipFactory(workspace=partner, role=Role.OWNER).user


@pytest.fixture
def partner_members(partner, partner_owner):
    """One user per role in the partner workspace."""
    users = {
        role.value: MembershipFactory(workspace=partner, role=role).user
        for role in Role
        if role != Role.OWNER
    }
    return {"owner": partner_owner, **users}


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
def offer(character, partner, members):
    """Mina offered to Harbour Films by our editor, not answered yet."""
    return services.character_share(
        character=character, workspace_slug=partner.slug, offered_by=members["editor"]
    )


@pytest.fixture
def share(offer, partner_owner):
    """Mina shared with Harbour Films: offered, then accepted by its owner."""
    services.share_accept(share=offer, accepted_by=partner_owner)
    return offer


def shared_with(character, workspace) -> CharacterShare:
    """Offer and accept in one go, for tests about what a share then allows."""
    offered = services.character_share(character=character, workspace_slug=workspace.slug)
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER).user
    services.share_accept(share=offered, accepted_by=owner)
    return offered


def unshare_url(character, share) -> str:
    return reverse("character_unshare", args=[character.workspace.slug, character.pk, share.pk])


def accept_url(workspace, share) -> str:
    return reverse("share_accept", args=[workspace.slug, share.pk])


def decline_url(workspace, share) -> str:
    return reverse("share_decline", args=[workspace.slug, share.pk])


def picture_url(workspace, share) -> str:
    return reverse("share_offer_picture", args=[workspace.slug, share.pk])


def remove_url(workspace, character) -> str:
    return reverse("share_remove", args=[workspace.slug, character.pk])


def refreshed(share) -> CharacterShare | None:
    return CharacterShare.objects.filter(pk=share.pk).first()


def mentionable(workspace, handle="mina") -> bool:
    try:
        scene_resolve_mentions(workspace=workspace, prompt=f"@{handle} waves.")
    except ValidationError:
        return False
    return True


# --- Offering ------------------------------------------------------------------------------


def test_it_offers_a_character_by_slug_and_waits_for_the_other_owners(
    client, members, character, partner
):
    client.force_login(members["editor"])

    response = client.post(share_url(character), {"workspace": "harbour"}, follow=True)

    assert response.redirect_chain[-1][0] == character.get_absolute_url()
    assert messages_of(response) == [WAITING.format("harbour")]
    share = CharacterShare.objects.get()
    assert (share.character, share.workspace, share.offered_slug, share.status) == (
        character,
        partner,
        "harbour",
        Status.OFFERED,
    )
    assert share.created_by == members["editor"]
    page = response.content.decode()
    assert "Withdraw" in page
    assert "Harbour Films" not in page  # not named until it answers
    assert not mentionable(partner)


def test_it_does_not_say_that_no_workspace_has_the_slug(owner_client, character):
    response = owner_client.post(share_url(character), {"workspace": "nowhere"}, follow=True)

    page = response.content.decode()
    assert "No workspace is called" not in page
    assert messages_of(response) == [WAITING.format("nowhere")]
    assert CharacterShare.objects.get().workspace is None


def _normalized(html: str, share: CharacterShare) -> str:
    """The page without what differs on every render (CSRF masks) or per row (its id)."""
    html = re.sub(r'(X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+', r"\1…", html)
    return html.replace(f"/shares/{share.pk}/", "/shares/…/").replace(
        f'id="share-{share.pk}"', 'id="share-…"'
    )


def _offer_and_look(client, character, slug: str) -> tuple[tuple, str, tuple, CharacterShare]:
    """What the sender observes: the answer, the page after it, and offering again."""
    response = client.post(share_url(character), {"workspace": slug})
    answer = (response.status_code, response["Location"], response.content)
    share = CharacterShare.objects.get(character=character)
    page = _normalized(client.get(character.get_absolute_url()).content.decode(), share)
    again = client.post(share_url(character), {"workspace": slug})
    again_answer = (again.status_code, _normalized(again.content.decode(), share))
    return answer, page, again_answer, share


def test_it_answers_an_unknown_slug_and_another_teams_slug_in_exactly_the_same_way(
    owner_client, character, partner, partner_owner
):
    """Otherwise the form tells anyone which workspace slugs exist."""
    unknown = _offer_and_look(owner_client, character, "lighthouse")
    services.character_unshare(share=unknown[3])
    foreign = _offer_and_look(owner_client, character, "harbour")

    answer, page, again, _ = unknown
    assert answer == foreign[0]
    assert answer[0] == 302
    assert page.replace("lighthouse", "SLUG") == foreign[1].replace("harbour", "SLUG")
    assert again[1].replace("lighthouse", "SLUG") == foreign[2][1].replace("harbour", "SLUG")
    assert again[0] == foreign[2][0] == 400
    assert WAITING.format("lighthouse") in page
    assert "Mina is already offered to “harbour”" in foreign[2][1]


def test_it_never_hands_an_offer_to_a_workspace_created_later_under_its_slug(
    owner_client, character
):
    owner_client.post(share_url(character), {"workspace": "lighthouse"})
    later = WorkspaceFactory(name="Lighthouse", slug="lighthouse")
    later_owner = MembershipFactory(workspace=later, role=Role.OWNER).user

    assert not share_offers_for(workspace=later).exists()
    client = Client()
    client.force_login(later_owner)
    assert "Mina" not in client.get(list_url(later)).content.decode()
    assert not mentionable(later)


def test_it_accepts_a_slug_typed_in_capitals(client, members, character, partner):
    client.force_login(members["editor"])

    response = client.post(share_url(character), {"workspace": "Harbour"})

    assert response.status_code == 302
    share = CharacterShare.objects.get()
    assert (share.workspace, share.offered_slug) == (partner, "harbour")


def test_it_shares_at_once_with_a_workspace_the_user_owns_too(client, members, character):
    ads = WorkspaceFactory(name="Ads", slug="ads")
    MembershipFactory(workspace=ads, user=members["editor"], role=Role.OWNER)
    client.force_login(members["editor"])

    response = client.post(share_url(character), {"workspace": "ads"}, follow=True)

    assert messages_of(response) == ["Mina is now shared with Ads."]
    share = CharacterShare.objects.get()
    assert (share.status, share.answered_by) == (Status.ACCEPTED, members["editor"])
    assert "Revoke" in response.content.decode()
    assert mentionable(ads)


def test_it_only_offers_to_a_workspace_where_the_user_is_an_editor(client, members, character):
    broll = WorkspaceFactory(name="B-roll", slug="b-roll")
    MembershipFactory(workspace=broll, user=members["editor"], role=Role.EDITOR)
    client.force_login(members["editor"])

    response = client.post(share_url(character), {"destination": broll.pk}, follow=True)

    assert messages_of(response) == [WAITING.format("b-roll")]
    assert CharacterShare.objects.get().status == Status.OFFERED
    assert not mentionable(broll)


@pytest.mark.parametrize(
    ("role", "status"), [("reviewer", 403), ("viewer", 403), ("outsider", 404)]
)
def test_it_refuses_offers_from_members_who_may_not_edit(
    client, members, character, partner, role, status
):
    client.force_login(members[role])

    response = client.post(share_url(character), {"workspace": "harbour"})

    assert response.status_code == status
    assert not CharacterShare.objects.exists()


def test_it_says_plainly_that_a_character_is_already_in_its_own_workspace(
    owner_client, workspace, character
):
    response = owner_client.post(share_url(character), {"workspace": workspace.slug})

    assert response.status_code == 400
    assert "A character is already available in its own workspace." in response.content.decode()
    assert not CharacterShare.objects.exists()


def test_it_says_plainly_when_an_offer_is_already_waiting(owner_client, character, offer):
    response = owner_client.post(share_url(character), {"workspace": "harbour"})

    assert response.status_code == 400
    assert (
        "Mina is already offered to “harbour”: waiting for its owners to accept."
        in response.content.decode()
    )
    assert CharacterShare.objects.count() == 1


def test_it_says_plainly_when_the_character_is_already_shared_there(owner_client, character, share):
    response = owner_client.post(share_url(character), {"workspace": "harbour"})

    assert response.status_code == 400
    assert "Mina is already shared with Harbour Films." in response.content.decode()
    assert CharacterShare.objects.count() == 1


def test_it_explains_a_slug_that_cannot_be_a_workspace(owner_client, character):
    response = owner_client.post(share_url(character), {"workspace": "not a slug!"})

    page = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid “slug”" in page
    assert 'value="not a slug!"' in page  # what was typed stays
    assert not CharacterShare.objects.exists()


def test_it_needs_a_csrf_token_to_offer(members, character, partner):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(members["owner"])

    assert strict.post(share_url(character), {"workspace": "harbour"}).status_code == 403
    assert not CharacterShare.objects.exists()


# --- Receiving -----------------------------------------------------------------------------


def test_it_shows_the_receiving_owners_the_offer_with_its_name_picture_and_sender(
    partner_client, workspace, partner, character, front, offer
):
    page = partner_client.get(list_url(partner)).content.decode()

    offers = page[page.index(f"Offered to {partner.name}") :]
    assert "Mina" in offers
    assert "@mina" in offers
    assert f"from {workspace.name}" in offers
    assert picture_url(partner, offer) in offers
    assert accept_url(partner, offer) in offers
    assert decline_url(partner, offer) in offers
    assert f"Shared with {partner.name}" not in page  # not in the library yet
    picture = partner_client.get(picture_url(partner, offer))
    b"".join(picture.streaming_content)
    assert (picture.status_code, picture["Content-Type"]) == (200, "image/jpeg")


def test_it_warns_before_accepting_a_handle_the_library_already_has(partner_client, partner, offer):
    CharacterFactory(workspace=partner, handle="mina")

    page = partner_client.get(list_url(partner)).content.decode()

    assert "This library already has its own @mina" in page


@pytest.mark.parametrize("role", ["editor", "reviewer", "viewer"])
def test_it_shows_other_roles_of_the_receiving_workspace_nothing_to_answer(
    client, partner, partner_members, offer, role
):
    client.force_login(partner_members[role])

    page = client.get(list_url(partner)).content.decode()

    assert "Mina" not in page
    assert accept_url(partner, offer) not in page


def test_an_offer_is_not_mentionable_until_its_owners_accept_it(
    partner_client, partner_owner, workspace, partner, character, offer
):
    episode = EpisodeFactory(series=SeriesFactory(workspace=partner))
    assert not mentionable(partner)
    assert character not in characters_visible_to(workspace=partner)
    with pytest.raises(ValidationError):
        scene_create(episode=episode, prompt="@mina waves.")

    response = partner_client.post(accept_url(partner, offer), follow=True)

    assert response.redirect_chain[-1][0] == list_url(partner)
    assert messages_of(response) == [
        f"Mina from {workspace.name} is in your library: mention it as @mina."
    ]
    page = response.content.decode()
    assert page.index(f"Shared with {partner.name}") < page.index("<code>@mina</code>")
    assert accept_url(partner, offer) not in page
    share = refreshed(offer)
    assert share.status == Status.ACCEPTED
    assert share.answered_by == partner_owner
    assert list(scene_create(episode=episode, prompt="@mina waves.").mentions.all()) == [character]


def test_the_sender_then_sees_the_workspace_it_is_shared_with(owner_client, character, share):
    page = owner_client.get(character.get_absolute_url()).content.decode()

    assert "Harbour Films" in page
    assert "(harbour)" in page
    assert "Revoke" in page
    assert "waiting for its owners" not in page


@pytest.mark.parametrize("role", ["editor", "reviewer", "viewer"])
def test_only_the_receiving_owners_may_answer_an_offer(
    client, partner, partner_members, offer, role
):
    client.force_login(partner_members[role])

    assert client.post(accept_url(partner, offer)).status_code == 403
    assert client.post(decline_url(partner, offer)).status_code == 403
    assert client.get(picture_url(partner, offer)).status_code == 403
    assert refreshed(offer).status == Status.OFFERED
    assert not mentionable(partner)


def test_an_outsider_cannot_answer_an_offer(client, members, workspace, partner, offer):
    """Neither through the receiving workspace's address nor through their own."""
    for user in (members["outsider"], members["owner"]):
        client.force_login(user)
        own = user.memberships.get().workspace
        for url in (accept_url(partner, offer), decline_url(partner, offer)):
            assert client.post(url).status_code == 404
        assert client.post(accept_url(own, offer)).status_code == 404
        assert client.get(picture_url(partner, offer)).status_code == 404
    assert refreshed(offer).status == Status.OFFERED


def test_it_needs_a_csrf_token_to_accept(partner_owner, partner, offer):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(partner_owner)

    assert strict.post(accept_url(partner, offer)).status_code == 403
    assert refreshed(offer).status == Status.OFFERED


def test_a_declined_offer_stays_out_and_the_sender_may_offer_again(
    partner_client, owner, workspace, partner, character, offer
):
    response = partner_client.post(decline_url(partner, offer), follow=True)

    assert messages_of(response) == [f"You declined Mina from {workspace.name}."]
    assert "@mina" not in response.content.decode()
    assert refreshed(offer).status == Status.DECLINED
    assert not mentionable(partner)
    sender = Client()
    sender.force_login(owner)
    page = sender.get(character.get_absolute_url()).content.decode()
    assert "Declined" in page
    again = sender.post(share_url(character), {"workspace": "harbour"}, follow=True)
    assert messages_of(again) == [WAITING.format("harbour")]
    assert refreshed(offer).status == Status.OFFERED
    assert share_offers_for(workspace=partner).get() == offer


def test_it_says_so_when_an_offer_was_answered_already(partner_client, partner, share):
    response = partner_client.post(decline_url(partner, share), follow=True)

    assert messages_of(response) == [
        "Mina is no longer waiting for an answer here: the offer was withdrawn or already answered."
    ]
    assert refreshed(share).status == Status.ACCEPTED


def test_share_offers_for_lists_only_offers_waiting_for_that_workspace(
    workspace, partner, character, offer
):
    elsewhere = WorkspaceFactory()
    shared_with(CharacterFactory(workspace=workspace), partner)  # accepted: not waiting
    services.character_share(character=character, workspace_slug=elsewhere.slug)

    assert list(share_offers_for(workspace=partner)) == [offer]
    assert share_offers_for(workspace=partner).count() == 1
    assert share_offers_for(workspace=workspace).count() == 0


# --- Ending a share, from either side ------------------------------------------------------


def test_it_withdraws_a_waiting_offer(client, members, partner_owner, partner, character, offer):
    client.force_login(members["editor"])

    response = client.post(unshare_url(character, offer), follow=True)

    assert messages_of(response) == ["The offer to “harbour” was withdrawn."]
    assert "Not shared with other workspaces." in response.content.decode()
    assert not CharacterShare.objects.exists()
    client.force_login(partner_owner)
    assert "Mina" not in client.get(list_url(partner)).content.decode()
    assert client.post(accept_url(partner, offer)).status_code == 404


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
    assert client.get(detail).status_code == 404
    assert client.get(thumbnail).status_code == 404
    assert "@mina" not in client.get(list_url(partner)).content.decode()


def test_the_receiving_owners_remove_a_shared_character_from_their_library(
    partner_client, owner, partner, character, share
):
    detail = reverse("character_detail", args=[partner.slug, character.pk])
    assert remove_url(partner, character) in partner_client.get(detail).content.decode()

    response = partner_client.post(remove_url(partner, character), follow=True)

    assert response.redirect_chain[-1][0] == list_url(partner)
    assert messages_of(response) == [
        "Mina is no longer in this library; scenes that mention @mina will need another "
        "character before they generate."
    ]
    assert "<code>@mina</code>" not in response.content.decode()
    assert refreshed(share).status == Status.REMOVED
    assert not mentionable(partner)
    sender = Client()
    sender.force_login(owner)
    page = sender.get(character.get_absolute_url()).content.decode()
    assert "Removed from their library" in page
    cleared = sender.post(unshare_url(character, share), follow=True)
    assert messages_of(cleared) == [
        "Harbour Films was taken off the list; you can offer Mina again."
    ]
    assert not CharacterShare.objects.exists()


@pytest.mark.parametrize("role", ["editor", "reviewer", "viewer"])
def test_only_the_receiving_owners_may_remove_a_shared_character(
    client, partner, partner_members, character, share, role
):
    client.force_login(partner_members[role])
    detail = reverse("character_detail", args=[partner.slug, character.pk])

    assert remove_url(partner, character) not in client.get(detail).content.decode()
    assert client.post(remove_url(partner, character)).status_code == 403
    assert refreshed(share).status == Status.ACCEPTED


def test_an_outsider_cannot_remove_a_shared_character(client, members, partner, character, share):
    client.force_login(members["outsider"])

    assert client.post(remove_url(partner, character)).status_code == 404
    assert refreshed(share).status == Status.ACCEPTED


def test_it_answers_404_when_removing_a_character_of_the_workspace_itself(
    partner_client, partner, share
):
    own = CharacterFactory(workspace=partner)

    assert partner_client.post(remove_url(partner, own)).status_code == 404
    assert Character.objects.filter(pk=own.pk).exists()


def _withdraw(share, partner_owner):
    services.character_unshare(share=share)


def _remove(share, partner_owner):
    services.share_remove(share=share, removed_by=partner_owner)


@pytest.mark.parametrize("end", [_withdraw, _remove], ids=["withdrawn", "removed"])
def test_a_scene_that_mentions_the_character_then_names_the_handle_as_unknown(
    partner, partner_owner, character, share, end
):
    episode = EpisodeFactory(series=SeriesFactory(workspace=partner))
    scene_create(episode=episode, prompt="@mina waves from the pier.")

    end(share, partner_owner)

    with pytest.raises(ValidationError) as caught:
        scene_resolve_mentions(workspace=partner, prompt="@mina waves from the pier.")
    assert caught.value.message_dict == {
        "prompt": ["@mina is not a character in this workspace or shared with it."]
    }


def test_a_declined_offer_leaves_its_handle_unknown(partner, partner_owner, offer):
    services.share_decline(share=offer, declined_by=partner_owner)

    with pytest.raises(ValidationError) as caught:
        scene_resolve_mentions(workspace=partner, prompt="@mina waves.")
    assert caught.value.message_dict == {
        "prompt": ["@mina is not a character in this workspace or shared with it."]
    }


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_it_refuses_withdrawing_to_members_who_may_not_edit(
    client, members, character, share, role
):
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


# --- What the other workspace sees once it accepted ----------------------------------------


def test_it_shows_a_shared_character_in_the_other_library_under_shared_with(
    partner_client, partner, character, share
):
    CharacterFactory(workspace=partner, name="Jun", handle="jun")

    page = partner_client.get(list_url(partner)).content.decode()

    heading = page.index("Shared with Harbour Films")
    assert page.index("@jun") < heading < page.index("@mina")
    assert f"from {character.workspace.name}" in page


def test_it_shows_only_shared_characters_when_the_other_workspace_has_none_of_its_own(
    partner_client, partner, share
):
    page = partner_client.get(list_url(partner)).content.decode()

    assert "No characters yet." not in page
    assert "has no characters of its own yet" in page
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


def test_an_offer_does_not_open_the_character_page_before_it_is_accepted(
    partner_client, partner, character, front, offer
):
    url = reverse("character_detail", args=[partner.slug, character.pk])
    thumbnail = reverse("asset_file", args=[partner.slug, character.pk, front.pk, "thumbnail"])

    assert partner_client.get(url).status_code == 404
    assert partner_client.get(thumbnail).status_code == 404


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

    assert partner_client.get(detail).status_code == 404
    assert partner_client.get(original).status_code == 404
    assert "@mina" not in partner_client.get(list_url(partner)).content.decode()


def test_it_keeps_sharing_out_of_a_third_workspace(client, character, share):
    stranger = MembershipFactory(role=Role.OWNER)
    client.force_login(stranger.user)

    url = reverse("character_detail", args=[stranger.workspace.slug, character.pk])

    assert client.get(url).status_code == 404


# --- Scene counts stay within each workspace -----------------------------------------------


def test_it_counts_only_each_workspaces_own_scenes_on_a_shared_character_card(
    owner_client, client, partner_owner, workspace, partner, character, share
):
    partner_episode = EpisodeFactory(series=SeriesFactory(workspace=partner))
    for _ in range(2):
        scene_create(episode=partner_episode, prompt="@mina waves from the pier.")
    our_episode = EpisodeFactory(series=SeriesFactory(workspace=workspace))
    scene_create(episode=our_episode, prompt="@mina reads a letter.")

    ours = owner_client.get(list_url(workspace)).content.decode()
    client.force_login(partner_owner)
    theirs = client.get(list_url(partner)).content.decode()

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
    shared_with(twin, partner)

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


# --- Admin ---------------------------------------------------------------------------------


def test_the_admin_lists_shares_with_their_status_and_filters_by_it(
    client, workspace, partner, character, offer
):
    accepted = shared_with(CharacterFactory(workspace=workspace, name="Jun"), partner)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:characters_charactershare_changelist")

    everything = client.get(url).content.decode()
    waiting = client.get(url, {"status__exact": "offered"}).content.decode()

    assert "Offered" in everything
    assert "Accepted" in everything
    assert f"/charactershare/{offer.pk}/change/" in waiting
    assert f"/charactershare/{accepted.pk}/change/" not in waiting


# --- Existing shares -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_existing_share_in_use():
    executor = MigrationExecutor(connection)
    before = [("characters", "0002_initial")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    workspaces = old.get_model("studio", "Workspace").objects
    home = workspaces.create(name="Home", slug="home")
    harbour = workspaces.create(name="Harbour Films", slug="harbour")
    character = old.get_model("characters", "Character").objects.create(
        workspace=home, name="Mina", handle="mina"
    )
    old.get_model("characters", "CharacterShare").objects.create(
        character=character, workspace=harbour
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    share = CharacterShare.objects.select_related("workspace").get()
    assert (share.status, share.offered_slug, share.workspace.slug) == (
        Status.ACCEPTED,
        "harbour",
        "harbour",
    )
    assert mentionable(share.workspace)
