"""The user read in front of every page (studio.sessions.Backend and its middleware): one
compiled query, Django's session checks kept (a changed password or a deactivated account
signs the session out), and sessions signed in before it stay signed in."""

from __future__ import annotations

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

DJANGOS_BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture
def member():
    membership = MembershipFactory()
    membership.user.set_password("a long passphrase")
    membership.user.save()
    return membership


def dashboard(membership) -> str:
    return reverse("dashboard", args=[membership.workspace.slug])


def test_signing_in_reads_the_user_once_a_page(client, member):
    response = client.post(
        reverse("login"), {"username": member.user.username, "password": "a long passphrase"}
    )
    assert response.status_code == 302
    assert client.session[BACKEND_SESSION_KEY] == "studio.sessions.Backend"
    with CaptureQueriesContext(connection) as queries:
        assert client.get(dashboard(member)).status_code == 200
    user_reads = [q["sql"] for q in queries if 'FROM "auth_user"' in q["sql"]]
    assert len(user_reads) == 1


def test_a_wrong_password_signs_no_one_in(client, member):
    response = client.post(reverse("login"), {"username": member.user.username, "password": "no"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert BACKEND_SESSION_KEY not in client.session


def test_a_session_from_before_stays_signed_in_and_moves_to_the_new_backend(client, member):
    client.force_login(member.user, backend=DJANGOS_BACKEND)
    assert client.session[BACKEND_SESSION_KEY] == DJANGOS_BACKEND
    assert client.get(dashboard(member)).status_code == 200
    assert client.session[BACKEND_SESSION_KEY] == "studio.sessions.Backend"
    assert client.get(dashboard(member)).status_code == 200


def test_a_changed_password_signs_out_the_other_sessions(client, member):
    client.force_login(member.user)
    assert client.get(dashboard(member)).status_code == 200
    member.user.set_password("another long passphrase")
    member.user.save()
    response = client.get(dashboard(member))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_deactivated_account_is_signed_out(client, member):
    client.force_login(member.user)
    member.user.is_active = False
    member.user.save()
    response = client.get(dashboard(member))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_session_of_a_backend_we_do_not_have_is_no_one(client, member):
    client.force_login(member.user, backend="django.contrib.auth.backends.RemoteUserBackend")
    assert client.get(dashboard(member)).status_code == 302
