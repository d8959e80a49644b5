"""Rate limits: starting takes and importing references per user and per workspace, and failed
sign-ins, answered with 429 and Retry-After, counted in Redis across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.urls import reverse

from jobs.models import Job
from studio.models import Role
from studio.project import ratelimit
from studio.project.ratelimit import Rate
from tests.factories import PASSWORD, MembershipFactory, SceneFactory, UserFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.support.processes import ROOT

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

HTMX = {"HX-Request": "true"}


@pytest.fixture
def tight(settings):
    settings.RATE_LIMIT_GENERATE = "3/60"
    settings.RATE_LIMIT_GENERATE_WORKSPACE = "5/60"
    settings.RATE_LIMIT_IMPORT = "2/60"
    settings.RATE_LIMIT_IMPORT_WORKSPACE = "10/60"
    settings.RATE_LIMIT_LOGIN = "3/900"
    settings.RATE_LIMIT_LOGIN_ADDRESS = "10/900"
    settings.RATE_LIMIT_LOGIN_ACCOUNT = "20/3600"
    return settings


@pytest.fixture
def scene(workspace):
    ProviderAccountFactory(workspace=workspace, name="OpenAI", model="sora-2")
    return SceneFactory(episode__series__workspace=workspace, prompt="A harbour.", duration=4)


def _generate(client, scene, **headers):
    url = reverse("scene_generate", args=[scene.episode.series.workspace.slug, scene.pk])
    return client.post(url, {"account": "auto"}, headers=headers)


def test_an_editor_who_starts_takes_too_fast_gets_a_429_and_nothing_is_made(
    client, members, scene, tight
):
    client.force_login(members["editor"])
    for _ in range(3):
        assert _generate(client, scene).status_code == 302

    refused = _generate(client, scene)

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    page = refused.content.decode()
    assert "more takes than you may start in a short while; nothing was made" in page
    assert Job.objects.filter(workspace=scene.episode.series.workspace).count() == 3


def test_the_limit_is_per_user_until_the_workspace_has_had_its_share(client, members, scene, tight):
    client.force_login(members["editor"])
    for _ in range(3):
        _generate(client, scene)
    client.force_login(members["owner"])  # another member still may...
    assert _generate(client, scene).status_code == 302
    assert _generate(client, scene).status_code == 302

    refused = _generate(client, scene)  # ...until the workspace's 5 a minute are used

    assert refused.status_code == 429
    assert "more takes than this workspace may start" in refused.content.decode()


def test_an_htmx_refusal_keeps_the_card_and_shows_the_message_in_place(
    client, members, scene, tight
):
    client.force_login(members["editor"])
    for _ in range(3):
        _generate(client, scene, **HTMX)

    refused = _generate(client, scene, **HTMX)

    assert refused.status_code == 429
    assert refused["HX-Reswap"] == "none"
    body = refused.content.decode()
    assert 'id="messages"' in body
    assert 'hx-swap-oob="true"' in body
    assert "Try again in" in body


def test_other_workspaces_are_not_slowed_by_a_busy_one(client, members, scene, tight):
    client.force_login(members["editor"])
    for _ in range(4):
        _generate(client, scene)
    other = MembershipFactory(role=Role.EDITOR)
    elsewhere = SceneFactory(episode__series__workspace=other.workspace, prompt="Fog.")
    ProviderAccountFactory(workspace=other.workspace, model="sora-2")
    client.force_login(other.user)

    assert _generate(client, elsewhere).status_code == 302


def test_a_count_made_in_another_process_is_the_same_count(client, members, scene, tight):
    """Two web processes share one window: a separate Python process takes the editor's three
    places (through the same Redis), and this one is refused."""
    editor = members["editor"]
    from studio.project.celery import app

    connection = app.connection_for_write()
    broker = connection.as_uri(include_password=True)  # this run's Redis
    connection.release()
    code = (
        "import django, json; django.setup()\n"
        "from studio.project import ratelimit\n"
        "from studio.project.ratelimit import Rate\n"
        f"hits = [ratelimit.hit('generate:user', '{editor.pk}', Rate(3, 60)) for _ in range(3)]\n"
        "print(json.dumps([hit is None for hit in hits]))\n"
    )
    child = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "studio.project.settings",
            "REDIS_URL": broker,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(child.stdout.strip().splitlines()[-1]) == [True, True, True]
    client.force_login(editor)

    assert _generate(client, scene).status_code == 429


def test_a_redis_that_is_down_never_refuses_work(monkeypatch):
    monkeypatch.setattr(ratelimit, "_redis", lambda: ratelimit._client("redis://127.0.0.1:9/0"))
    assert all(ratelimit.hit("generate:user", "1", Rate(1, 60)) is None for _ in range(3))


# --- Importing from the web -------------------------------------------------------------------


def test_imports_from_web_addresses_are_limited_and_the_form_keeps_what_was_typed(
    client, members, workspace, tight, settings
):
    from tests.factories import CharacterFactory

    settings.REFERENCE_IMPORT_ALLOWED_NETWORKS = []  # nothing is fetched in this test anyway
    character = CharacterFactory(workspace=workspace)
    client.force_login(members["editor"])
    url = reverse("asset_upload", args=[workspace.slug, character.pk])
    data = {"reference_url": "http://127.0.0.1:9/mina.png", "label": "front"}
    for _ in range(2):
        assert client.post(url, data).status_code == 400  # refused: a private address

    refused = client.post(url, data)

    assert refused.status_code == 429
    assert refused["Retry-After"]
    page = refused.content.decode()
    assert "Too many imports from web addresses in a short while" in page
    assert 'value="http://127.0.0.1:9/mina.png"' in page
    assert 'value="front"' in page


# --- Signing in ---------------------------------------------------------------------------------


def _login(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_repeated_failed_sign_ins_are_held_back_even_with_the_right_password(client, tight):
    user = UserFactory(username="mina")
    for _ in range(3):
        assert _login(client, "mina", "wrong").status_code == 200

    held = _login(client, "mina", PASSWORD)

    assert held.status_code == 429
    assert int(held["Retry-After"]) > 60
    page = held.content.decode()
    assert "Too many failed sign-ins for this account from here" in page
    assert 'value="mina"' in page  # the name as typed
    assert "_auth_user_id" not in client.session
    assert user.is_active  # no lockout of the account itself


def test_the_same_account_can_still_sign_in_from_elsewhere(client, tight):
    UserFactory(username="mina")
    for _ in range(3):
        _login(client, "mina", "wrong", address="203.0.113.7")

    assert _login(client, "mina", PASSWORD, address="198.51.100.2").status_code == 302


def test_a_right_password_clears_the_failures_at_that_address(client, tight):
    UserFactory(username="mina")
    for _ in range(2):
        _login(client, "mina", "wrong")
    assert _login(client, "mina", PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        _login(client, "mina", "wrong")

    assert _login(client, "mina", PASSWORD).status_code == 302


def test_one_address_guessing_many_accounts_is_held_back(client, tight):
    for n in range(10):
        _login(client, f"someone{n}", "wrong")
    UserFactory(username="mina")

    assert _login(client, "mina", PASSWORD).status_code == 429


def _admin_login(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(
        reverse("admin:login") + "?next=/admin/studio/take/",
        {"username": username, "password": password, "next": "/admin/studio/take/"},
        REMOTE_ADDR=address,
    )


def test_the_admins_sign_in_is_held_back_as_the_studios_is(client, tight):
    staff = UserFactory(username="rita", is_staff=True)
    for _ in range(3):
        failed = _admin_login(client, "rita", "wrong")
        assert failed.status_code == 200
        assert "Please enter the correct username and password" in failed.content.decode()

    held = _admin_login(client, "rita", PASSWORD)

    assert held.status_code == 429
    assert int(held["Retry-After"]) > 60
    page = held.content.decode()
    assert "Too many failed sign-ins for this account from here" in page
    assert "Castboard admin" in page  # the admin's own page, not the studio's
    assert 'value="rita"' in page
    assert "_auth_user_id" not in client.session
    assert staff.is_active


def test_failures_at_either_door_count_together(client, tight):
    UserFactory(username="rita", is_staff=True)
    _login(client, "rita", "wrong")
    _admin_login(client, "rita", "wrong")
    _login(client, "rita", "wrong")

    assert _admin_login(client, "rita", PASSWORD).status_code == 429
    assert _login(client, "rita", PASSWORD).status_code == 429


def test_the_right_password_at_the_admin_signs_in_and_clears_the_failures(client, tight):
    UserFactory(username="rita", is_staff=True)
    for _ in range(2):
        _admin_login(client, "rita", "wrong")

    signed_in = _admin_login(client, "rita", PASSWORD)

    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/admin/studio/take/"
    client.logout()
    for _ in range(2):
        _admin_login(client, "rita", "wrong")
    assert _admin_login(client, "rita", PASSWORD).status_code == 302
