"""Logging in, the workspace switcher, creating a workspace and the dashboard."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studio.models import Membership, Role
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_user_logs_in_and_lands_on_their_workspace(client):
    membership = MembershipFactory(role=Role.EDITOR)
    response = client.post(
        reverse("login"),
        {"username": membership.user.username, "password": PASSWORD},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard", args=[membership.workspace.slug])
    assert membership.workspace.name in response.content.decode()


def test_a_wrong_password_is_refused_with_a_message(client):
    user = UserFactory()
    response = client.post(reverse("login"), {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_home_returns_to_the_last_workspace_visited(client):
    first = MembershipFactory(workspace__name="A team")
    second = MembershipFactory(user=first.user, workspace__name="B team")
    client.force_login(first.user)
    client.get(reverse("dashboard", args=[second.workspace.slug]))
    response = client.get(reverse("home"))
    assert response.url == reverse("dashboard", args=[second.workspace.slug])


def test_the_switcher_lists_only_my_workspaces(client):
    mine = MembershipFactory(workspace__name="Mine")
    MembershipFactory(workspace__name="Theirs")
    client.force_login(mine.user)
    page = client.get(reverse("dashboard", args=[mine.workspace.slug])).content.decode()
    assert "Mine" in page
    assert "Theirs" not in page


def test_a_user_without_workspace_is_offered_to_create_one(client):
    user = UserFactory()
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.url == reverse("workspace_create")
    response = client.post(
        reverse("workspace_create"), {"name": "Night Owls", "slug": "night-owls"}, follow=True
    )
    assert "Workspace Night Owls created" in response.content.decode()
    assert Membership.objects.get(user=user, workspace__slug="night-owls").role == Role.OWNER


def test_a_taken_or_malformed_slug_is_refused_with_a_message(client, workspace):
    client.force_login(UserFactory())
    page = client.post(
        reverse("workspace_create"), {"name": "X", "slug": workspace.slug}
    ).content.decode()
    assert "Workspace with this Slug already exists." in page
    page = client.post(reverse("workspace_create"), {"name": "X", "slug": "Bad--Slug"}).content
    assert b"Use lowercase letters, digits and single hyphens." in page


def test_logging_out_needs_a_post_and_ends_the_session(owner_client, workspace):
    assert owner_client.get(reverse("logout")).status_code == 405
    owner_client.post(reverse("logout"))
    assert owner_client.get(reverse("dashboard", args=[workspace.slug])).status_code == 302


def test_another_teams_page_is_a_friendly_404(owner_client):
    other = MembershipFactory()
    response = owner_client.get(reverse("dashboard", args=[other.workspace.slug]))
    assert response.status_code == 404
    assert "belongs to a workspace you are not a member of" in response.content.decode()
