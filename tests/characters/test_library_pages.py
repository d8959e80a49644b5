"""The library as a tool: registrations on cards and pages, drop zones, sharing, renaming."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from characters import services
from characters.models import Character, CharacterShare
from jobs.models import JobKind, JobState, Registration
from jobs.requests import CastMember
from studio.models import Role, Scene
from studio.services import scene_create
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    MembershipFactory,
    SeriesFactory,
    WorkspaceFactory,
)
from tests.jobs.factories import JobFactory, ProviderAccountFactory, job_request
from tests.samples import image_bytes
from tests.support.library import detail_url, list_url, share_url
from tests.support.pages import messages_of

pytestmark = pytest.mark.django_db


def register(account, character, *, status=Registration.Status.ACTIVE, **fields):
    return Registration.objects.create(
        provider_account=account,
        subject=character.registration_subject,
        status=status,
        **fields,
    )


def registration_job(account, character, state, **fields):
    return JobFactory(
        provider_account=account,
        kind=JobKind.REGISTER_CHARACTER,
        request=job_request(
            "",
            seconds=0,
            size="",
            kind=JobKind.REGISTER_CHARACTER,
            cast=(CastMember(subject=character.registration_subject, name=character.name),),
        ),
        state=state,
        **fields,
    )


@pytest.fixture
def character(workspace):
    return CharacterFactory(workspace=workspace, name="Mina", handle="mina")


@pytest.fixture
def accounts(workspace):
    return {
        "openai": ProviderAccountFactory(workspace=workspace, name="OpenAI main"),
        "relay": ProviderAccountFactory(workspace=workspace, name="Relay", kind="sora_relay"),
    }


# --- Registrations on the library's cards ---------------------------------------------------


def card_of(page: str, handle: str) -> str:
    start = page.index(f"<code>@{handle}</code>")
    return page[start : page.index("</li>", start)]


def test_it_badges_each_card_with_the_accounts_the_character_is_registered_at(
    owner_client, workspace, character, accounts
):
    jun = CharacterFactory(workspace=workspace, name="Jun", handle="jun")
    register(accounts["openai"], character, external_id="char_1")
    register(accounts["relay"], character, external_id="rel_1")
    register(accounts["relay"], jun, status=Registration.Status.FAILED, error_message="No clip.")

    page = owner_client.get(list_url(workspace)).content.decode()

    mina, jun_card = card_of(page, "mina"), card_of(page, "jun")
    assert 'title="Registered with OpenAI main">OpenAI main</span>' in mina
    assert 'title="Registered with Relay">Relay</span>' in mina
    assert "Registered with" not in jun_card  # a failed registration is not a place it is known


def test_it_marks_a_registration_at_a_switched_off_account(
    owner_client, workspace, character, accounts
):
    accounts["relay"].enabled = False
    accounts["relay"].save()
    register(accounts["relay"], character, external_id="rel_1")

    page = owner_client.get(list_url(workspace)).content.decode()

    assert 'class="badge provider off" title="Registered with Relay (switched off)"' in page


def test_it_shows_a_partner_only_the_registrations_at_its_own_accounts(
    client, workspace, character, accounts
):
    partner = WorkspaceFactory(name="Harbour")
    partner_owner = MembershipFactory(workspace=partner, role=Role.OWNER).user
    offer = services.character_share(character=character, workspace_slug=partner.slug)
    services.share_accept(share=offer, accepted_by=partner_owner)
    theirs = ProviderAccountFactory(workspace=partner, name="Harbour relay")
    register(accounts["openai"], character, external_id="char_1")
    register(theirs, character, external_id="har_1")
    client.force_login(partner_owner)

    page = client.get(list_url(partner)).content.decode()

    assert "Harbour relay" in card_of(page, "mina")
    assert "OpenAI main" not in page


def add_registered_characters(workspace, accounts, count: int) -> None:
    for _ in range(count):
        character = CharacterFactory(workspace=workspace)
        services.asset_add(
            character=character,
            upload=SimpleUploadedFile("front.png", image_bytes("PNG"), "image/png"),
        )
        register(accounts["openai"], character, external_id=f"char_{character.pk}")
        register(accounts["relay"], character, status=Registration.Status.FAILED)


def library_queries(client, workspace) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(list_url(workspace))
    assert response.status_code == 200
    return len(queries), "\n".join(query["sql"] for query in queries.captured_queries)


def test_it_reads_the_library_with_registrations_in_the_same_queries_for_2_or_12_characters(
    owner_client, workspace, accounts
):
    add_registered_characters(workspace, accounts, 2)
    with_two, _ = library_queries(owner_client, workspace)
    add_registered_characters(workspace, accounts, 10)

    with_twelve, sql = library_queries(owner_client, workspace)

    assert with_twelve == with_two, sql
    page = owner_client.get(list_url(workspace)).content.decode()
    assert page.count("Registered with OpenAI main") == 12


# --- Registrations on the detail page -------------------------------------------------------


def test_it_shows_where_the_character_is_registered_and_where_not_yet(
    owner_client, workspace, character, accounts
):
    register(accounts["openai"], character, external_id="char_7f3", external_name="Mina v2")

    page = owner_client.get(detail_url(character)).content.decode()

    assert "OpenAI main" in page
    assert "Registered</span>" in page
    assert "as Mina v2 <code>char_7f3</code>" in page
    # The relay makes characters from a clip of at least 1 s, and Mina has none yet.
    assert "Not registered yet; it needs a reference clip of at least 1 s" in page


def test_it_says_a_character_travels_as_references_where_a_provider_keeps_none(
    owner_client, workspace, character
):
    ProviderAccountFactory(workspace=workspace, name="Ark", kind="seedance")
    upload = SimpleUploadedFile("front.png", image_bytes("PNG"), "image/png")
    services.asset_add(character=character, upload=upload)

    page = owner_client.get(detail_url(character)).content.decode()

    assert "As references</span>" in page
    assert "travels with each take as 1 reference image" in page
    assert "Not registered yet" not in page  # it never will be: nothing to wait for


def test_it_shows_a_registration_under_way_as_registering(
    owner_client, workspace, character, accounts
):
    registration_job(accounts["relay"], character, JobState.SUBMITTING)

    page = owner_client.get(detail_url(character)).content.decode()

    assert "Registering…" in page


def test_it_shows_the_error_of_the_latest_failed_registration(
    owner_client, workspace, character, accounts
):
    register(
        accounts["openai"],
        character,
        status=Registration.Status.FAILED,
        error_message="Replaced by a newer registration.",
    )
    registration_job(
        accounts["openai"],
        character,
        JobState.FAILED,
        error_message="The clip shows no person the provider can follow.",
    )

    page = owner_client.get(detail_url(character)).content.decode()

    assert "Registration failed" in page
    assert escape("The clip shows no person the provider can follow.") in page
    assert "Replaced by a newer registration." not in page


def test_it_prefers_an_active_registration_over_older_failures(
    owner_client, workspace, character, accounts
):
    registration_job(accounts["openai"], character, JobState.FAILED, error_message="Timed out.")
    register(accounts["openai"], character, external_id="char_2")

    page = owner_client.get(detail_url(character)).content.decode()

    assert "char_2" in page
    assert "Timed out." not in page


def test_it_leaves_switched_off_accounts_and_other_characters_out_of_the_status(
    owner_client, workspace, character, accounts
):
    accounts["relay"].enabled = False
    accounts["relay"].save()
    other = CharacterFactory(workspace=workspace)
    register(accounts["openai"], other, external_id="not_mina")
    registration_job(accounts["openai"], other, JobState.RUNNING)

    page = owner_client.get(detail_url(character)).content.decode()

    assert "Relay" not in page
    assert "not_mina" not in page
    assert "Registering…" not in page
    assert "Not registered yet" in page


def test_it_says_when_the_workspace_has_no_provider_switched_on(client, members, character):
    client.force_login(members["owner"])
    owner_page = client.get(detail_url(character)).content.decode()
    client.force_login(members["editor"])
    editor_page = client.get(detail_url(character)).content.decode()

    providers = reverse("provider_accounts", args=[character.workspace.slug])
    assert "No provider account is switched on in this workspace." in owner_page
    assert f'href="{providers}"' in owner_page
    assert f'href="{providers}"' not in editor_page


def test_it_reads_the_detail_page_in_the_same_queries_for_one_or_three_accounts(
    owner_client, workspace, character, accounts
):
    register(accounts["openai"], character, external_id="char_1")
    with CaptureQueriesContext(connection) as before:
        owner_client.get(detail_url(character))
    for name in ("Third", "Fourth"):
        account = ProviderAccountFactory(workspace=workspace, name=name)
        register(account, character, external_id=f"{name}_1")
        registration_job(account, character, JobState.FAILED)

    with CaptureQueriesContext(connection) as after:
        owner_client.get(detail_url(character))

    assert len(after) == len(before)


# --- Scenes ---------------------------------------------------------------------------------


def test_it_links_each_scene_to_its_place_on_the_storyboard(owner_client, workspace, character):
    episode = EpisodeFactory(series=SeriesFactory(workspace=workspace, title="Harbour"))
    scene = scene_create(episode=episode, prompt="@mina waves.")

    page = owner_client.get(detail_url(character)).content.decode()

    assert f'href="{episode.get_absolute_url()}#scene-{scene.pk}"' in page


# --- Drop zones and who sees the controls ---------------------------------------------------


def test_it_gives_the_reference_pickers_a_drop_zone_and_loads_the_script(
    owner_client, workspace, character, settings
):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 12
    settings.REFERENCE_IMAGE_MAX_BYTES = 1000
    settings.REFERENCE_CLIP_MAX_BYTES = 5000
    pages = [
        owner_client.get(reverse("character_create", args=[workspace.slug])),
        owner_client.get(reverse("character_edit", args=[workspace.slug, character.pk])),
        owner_client.get(detail_url(character)),
    ]

    for response in pages:
        page = response.content.decode()
        assert "/static/js/library.js" in page
        assert "/static/css/library.css" in page
        assert 'type="file" name="references"' in page
        assert 'data-dropzone=""' in page
        assert 'data-max-files="12"' in page
        assert 'data-max-bytes="5000"' in page
        assert 'accept="image/*,video/*"' in page
        assert 'name="reference_url"' in page


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
@pytest.mark.usefixtures("accounts")
def test_it_shows_members_who_may_not_edit_no_controls(client, members, character, role):
    client.force_login(members[role])

    detail = client.get(detail_url(character)).content.decode()
    library = client.get(list_url(character.workspace)).content.decode()

    for control in ("references", "reference_url", "destination", "workspace"):
        assert f'name="{control}"' not in detail
    for name in ("character_edit", "character_delete", "asset_upload", "character_share"):
        assert reverse(name, args=[character.workspace.slug, character.pk]) not in detail
    assert "New character" not in library
    assert "Not registered yet" in detail  # what it reads stays visible


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_it_refuses_the_forms_to_members_who_may_not_edit(client, members, character, role):
    client.force_login(members[role])
    slug = character.workspace.slug

    assert client.get(reverse("character_create", args=[slug])).status_code == 403
    assert client.get(reverse("character_edit", args=[slug, character.pk])).status_code == 403
    edit = client.post(
        reverse("character_edit", args=[slug, character.pk]),
        {"name": "Mina", "handle": "mina_x", "description": ""},
    )
    assert edit.status_code == 403
    character.refresh_from_db()
    assert character.handle == "mina"


# --- Sharing with one of your own workspaces ------------------------------------------------


@pytest.fixture
def own_workspaces(members):
    """The editor's other workspaces: one they edit, one they own, one they only view."""
    editor = members["editor"]
    edits = MembershipFactory(
        user=editor, role=Role.EDITOR, workspace=WorkspaceFactory(name="B-roll")
    )
    owns = MembershipFactory(user=editor, role=Role.OWNER, workspace=WorkspaceFactory(name="Ads"))
    views = MembershipFactory(
        user=editor, role=Role.VIEWER, workspace=WorkspaceFactory(name="Client review")
    )
    return {"edits": edits.workspace, "owns": owns.workspace, "views": views.workspace}


def test_it_offers_the_users_other_workspaces_they_may_add_to(
    client, members, character, own_workspaces
):
    services.character_share(character=character, workspace_slug=own_workspaces["owns"].slug)
    client.force_login(members["editor"])

    page = client.get(detail_url(character)).content.decode()

    select = page[page.index('name="destination"') : page.index("</select>")]
    assert f'value="{own_workspaces["edits"].pk}">B-roll</option>' in select
    assert "Ads" not in select  # already shared there
    assert "Client review" not in select  # they only view it
    assert character.workspace.name not in select
    assert "Or another workspace&#x27;s short name" in page


def test_it_shares_with_the_workspace_chosen_in_the_select(
    client, members, character, own_workspaces
):
    client.force_login(members["editor"])
    target = own_workspaces["owns"]  # they own it, so they accept it there too

    response = client.post(share_url(character), {"destination": target.pk}, follow=True)

    assert response.redirect_chain[-1][0] == character.get_absolute_url()
    assert "Mina is now shared with Ads." in messages_of(response)
    assert CharacterShare.objects.filter(character=character, workspace=target).exists()


def test_it_refuses_a_chosen_workspace_the_user_may_not_add_to(
    client, members, character, own_workspaces
):
    client.force_login(members["editor"])

    response = client.post(share_url(character), {"destination": own_workspaces["views"].pk})

    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()
    assert not CharacterShare.objects.exists()


def test_it_asks_for_one_workspace_when_the_select_and_the_slug_disagree(
    client, members, character, own_workspaces
):
    client.force_login(members["editor"])
    data = {"destination": own_workspaces["edits"].pk, "workspace": own_workspaces["owns"].slug}

    response = client.post(share_url(character), data)

    assert response.status_code == 400
    assert "Choose a workspace or type a short name, not both." in response.content.decode()
    assert not CharacterShare.objects.exists()


def test_it_asks_for_a_workspace_when_neither_is_given(client, members, character, own_workspaces):
    client.force_login(members["editor"])

    response = client.post(share_url(character), {})

    assert response.status_code == 400
    assert (
        escape("Choose one of your workspaces or type another workspace's short name.")
        in response.content.decode()
    )


def test_it_shows_only_the_slug_field_to_someone_with_no_other_workspace(owner_client, character):
    page = owner_client.get(detail_url(character)).content.decode()

    assert 'name="destination"' not in page
    assert 'name="workspace"' in page


# --- Renaming a handle ----------------------------------------------------------------------


def edit(client, character, handle: str):
    return client.post(
        reverse("character_edit", args=[character.workspace.slug, character.pk]),
        {"name": character.name, "handle": handle, "description": character.description},
        follow=True,
    )


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace))


def test_it_rewrites_the_handle_in_the_scenes_that_mention_the_character(
    owner_client, workspace, character, episode
):
    minami = CharacterFactory(workspace=workspace, handle="minami")
    first = scene_create(episode=episode, prompt="@mina waves to @minami. (@Mina's hat flies.)")
    second = scene_create(episode=episode, prompt="Close-up: @MINA, then mina@example.com")
    untouched = scene_create(episode=episode, prompt="@minami alone; write to a@mina.")

    response = edit(owner_client, character, "mina_park")

    assert "Handle changed; 2 scenes updated." in messages_of(response)
    first.refresh_from_db()
    second.refresh_from_db()
    untouched.refresh_from_db()
    assert first.prompt == "@mina_park waves to @minami. (@mina_park's hat flies.)"
    assert second.prompt == "Close-up: @mina_park, then mina@example.com"
    assert untouched.prompt == "@minami alone; write to a@mina."
    assert set(first.mentions.all()) == {character, minami}


def test_it_says_one_scene_in_the_singular(owner_client, character, episode):
    scene_create(episode=episode, prompt="@mina waves.")

    response = edit(owner_client, character, "mina_p")

    assert "Handle changed; 1 scene updated." in messages_of(response)


def test_it_says_character_saved_when_the_handle_stays(owner_client, character, episode):
    scene_create(episode=episode, prompt="@mina waves.")

    response = edit(owner_client, character, "mina")

    assert messages_of(response) == ["Character saved."]


def test_it_leaves_the_scenes_of_a_workspace_it_is_shared_with_alone(
    owner_client, workspace, character, episode
):
    partner = WorkspaceFactory()
    offer = services.character_share(character=character, workspace_slug=partner.slug)
    partner_owner = MembershipFactory(workspace=partner, role=Role.OWNER).user
    services.share_accept(share=offer, accepted_by=partner_owner)
    theirs = scene_create(
        episode=EpisodeFactory(series=SeriesFactory(workspace=partner)), prompt="@mina waves."
    )
    ours = scene_create(episode=episode, prompt="@mina waves.")

    response = edit(owner_client, character, "mina_p")

    assert "Handle changed; 1 scene updated." in messages_of(response)
    theirs.refresh_from_db()
    ours.refresh_from_db()
    assert (ours.prompt, theirs.prompt) == ("@mina_p waves.", "@mina waves.")


def test_it_rewrites_the_handle_and_the_scenes_together_or_not_at_all(
    character, episode, monkeypatch
):
    scene = scene_create(episode=episode, prompt="@mina waves.")

    def refuse(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Scene.objects, "bulk_update", refuse)  # as if the scene write failed
    with pytest.raises(RuntimeError):
        services.character_update(
            character=Character.objects.get(pk=character.pk),
            name="Mina",
            handle="mina_p",
            description="",
        )

    character.refresh_from_db()
    scene.refresh_from_db()
    assert (character.handle, scene.prompt) == ("mina", "@mina waves.")


def test_it_returns_how_many_scenes_the_service_rewrote(character, episode):
    scene_create(episode=episode, prompt="@mina waves.")

    saved, rewritten = services.character_update(
        character=character, name="Mina", handle="Mina_P", description=""
    )

    assert (saved.handle, rewritten) == ("mina_p", 1)
