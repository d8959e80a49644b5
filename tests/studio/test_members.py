"""Members: owners add, re-role and remove members; a workspace keeps an owner."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studio.models import Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _membership(workspace, user) -> Membership:
    return workspace.memberships.get(user=user)


def test_an_owner_adds_a_member_by_email(owner_client, workspace):
    newcomer = UserFactory(email="ana@example.com")
    response = owner_client.post(
        reverse("members", args=[workspace.slug]),
        {"username_or_email": "ANA@example.com", "role": "reviewer"},
        follow=True,
    )
    assert f"{newcomer.username} joined as reviewer." in response.content.decode()
    assert _membership(workspace, newcomer).role == Role.REVIEWER


def test_adding_an_unknown_user_says_so_and_keeps_the_input(owner_client, workspace):
    response = owner_client.post(
        reverse("members", args=[workspace.slug]),
        {"username_or_email": "ghost@example.com", "role": "viewer"},
    )
    page = response.content.decode()
    assert "No user has the username or e-mail “ghost@example.com”." in page
    assert 'value="ghost@example.com"' in page


def test_adding_someone_twice_is_refused(owner_client, workspace, members):
    response = owner_client.post(
        reverse("members", args=[workspace.slug]),
        {"username_or_email": members["viewer"].username, "role": "owner"},
    )
    assert "is already a member" in response.content.decode()
    assert _membership(workspace, members["viewer"]).role == Role.VIEWER


def test_an_owner_changes_a_role_with_htmx_and_gets_the_row_back(owner_client, workspace, members):
    viewer = _membership(workspace, members["viewer"])
    response = owner_client.post(
        reverse("member_role", args=[workspace.slug, viewer.pk]),
        {"role": "editor"},
        headers={"HX-Request": "true"},
    )
    page = response.content.decode()
    assert page.lstrip().startswith(f'<tr id="member-{viewer.pk}">')
    assert '<option value="editor" selected>' in page
    viewer.refresh_from_db()
    assert viewer.role == Role.EDITOR


def test_the_last_owner_cannot_be_demoted(client, workspace):
    only_owner = MembershipFactory(workspace=workspace, role=Role.OWNER)
    client.force_login(only_owner.user)
    response = client.post(
        reverse("member_role", args=[workspace.slug, only_owner.pk]),
        {"role": "viewer"},
        headers={"HX-Request": "true"},
    )
    assert "A workspace needs at least one owner" in response.content.decode()
    only_owner.refresh_from_db()
    assert only_owner.role == Role.OWNER


def test_the_last_owner_cannot_be_removed(client, workspace):
    only_owner = MembershipFactory(workspace=workspace, role=Role.OWNER)
    client.force_login(only_owner.user)
    response = client.post(
        reverse("member_remove", args=[workspace.slug, only_owner.pk]), follow=True
    )
    assert "The last owner cannot be removed" in response.content.decode()
    assert Membership.objects.filter(pk=only_owner.pk).exists()


def test_one_of_two_owners_can_leave(client, workspace):
    first = MembershipFactory(workspace=workspace, role=Role.OWNER)
    MembershipFactory(workspace=workspace, role=Role.OWNER)
    client.force_login(first.user)
    response = client.post(reverse("member_remove", args=[workspace.slug, first.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=first.pk).exists()


def test_a_member_of_another_workspace_cannot_be_re_roled_from_ours(owner_client, workspace):
    foreign = MembershipFactory(role=Role.VIEWER)
    response = owner_client.post(
        reverse("member_role", args=[workspace.slug, foreign.pk]), {"role": "owner"}
    )
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == Role.VIEWER


def test_viewers_see_roles_but_no_buttons(client, workspace, members):
    client.force_login(members["viewer"])
    page = client.get(reverse("members", args=[workspace.slug])).content.decode()
    assert members["editor"].username in page
    assert "Add a member" not in page
    assert "Remove" not in page
