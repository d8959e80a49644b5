"""The demo workspace: created once, complete, and safe to seed again."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from characters.models import Character, ReferenceAsset
from jobs.emulators.catalog import EMULATORS
from jobs.models import Budget, ProviderAccount
from studio.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME, REVIEWER_USERNAME
from studio.models import Membership, Role, Scene, Series

pytestmark = pytest.mark.django_db


def test_seeding_twice_creates_the_demo_once(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    assert Character.objects.filter(workspace__slug="demo").count() == 3
    assert ReferenceAsset.objects.filter(kind="image").count() == 6
    assert ReferenceAsset.objects.filter(kind="clip").count() == 3
    accounts = ProviderAccount.objects.filter(workspace__slug="demo")
    assert sorted(accounts.values_list("kind", flat=True)) == sorted(row.kind for row in EMULATORS)
    assert Budget.objects.filter(workspace__slug="demo").count() == 1
    series = Series.objects.get(workspace__slug="demo")
    assert list(series.episodes.values_list("number", flat=True)) == [1, 2]
    assert Scene.objects.filter(episode__series=series).count() == 8
    assert get_user_model().objects.filter(username=REVIEWER_USERNAME).count() == 1
    assert Membership.objects.filter(workspace__slug="demo").count() == 2
    out = capsys.readouterr().out
    assert "log in as demo / castboard-demo" in out
    assert "Reviewers: log in as reviewer / castboard-demo at /w/demo/review/" in out


def test_every_demo_scene_mentions_a_demo_character():
    call_command("seed_demo")
    for scene in Scene.objects.all():
        assert scene.mentions.exists(), scene.prompt


def test_the_demo_login_opens_the_demo_workspace(client):
    call_command("seed_demo")
    response = client.post(
        reverse("login"), {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}, follow=True
    )
    page = response.content.decode()
    assert "Demo Studio" in page
    assert "The Lighthouse at Gull Point" in page


def test_the_demo_reviewer_is_staff_with_the_reviewer_role_only():
    call_command("seed_demo")
    reviewer = get_user_model().objects.get(username=REVIEWER_USERNAME)
    assert reviewer.is_staff
    assert not reviewer.is_superuser
    assert [(m.workspace.slug, m.role) for m in reviewer.memberships.all()] == [
        ("demo", Role.REVIEWER)
    ]


def test_the_reviewer_login_opens_the_review_list(client):
    call_command("seed_demo")
    response = client.post(
        reverse("admin:login"),
        {
            "username": REVIEWER_USERNAME,
            "password": DEMO_PASSWORD,
            "next": reverse("admin:studio_take_changelist"),
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("admin:studio_take_changelist")
    page = response.content.decode()
    assert "Select take to change" in page
    assert "0 takes" in page  # the demo has made none yet


def test_the_demo_has_an_account_at_every_emulator_each_with_its_own_address():
    call_command("seed_demo")
    accounts = {a.kind: a for a in ProviderAccount.objects.filter(workspace__slug="demo")}
    for row in EMULATORS:
        account = accounts[row.kind]
        assert account.base_url == row.api_url()
        assert account.model == row.model
        assert account.sends_callbacks is row.callbacks
