"""In a real browser: the preflight follows the scene form as it is edited, and the Costs and
Providers pages render (their screenshots are looked at by hand)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.models import Budget, Job, JobState, LedgerEntry, ProviderAccount
from studio.models import Episode, Membership, Role, Scene, Series, Take, Workspace
from tests.e2e.browser import log_in
from tests.factories import UserFactory
from tests.jobs.factories import job_request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def studio():
    workspace = Workspace.objects.create(name="Gull Point Films", slug="gull")
    owner = UserFactory(username="olga")
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    accounts = [
        ProviderAccount.objects.create(
            workspace=workspace, name=name, kind=kind, base_url="http://127.0.0.1:9/v1", model=model
        )
        for name, kind, model in (
            ("OpenAI", "openai", "sora-2"),
            ("Relay", "sora_relay", ""),
            ("Seedance", "seedance", ""),
        )
    ]
    series = Series.objects.create(workspace=workspace, title="The Lighthouse")
    episode = Episode.objects.create(series=series, number=1, title="The New Keeper")
    scene = Scene.objects.create(
        episode=episode,
        position=0,
        title="Gulls",
        prompt="Gulls over the jetty.",
        duration=8,
        size="1280x720",
    )
    Budget.objects.create(workspace=workspace, cap=Decimal("20.00"), label="Gull Point Films")
    for account, cost in ((accounts[0], "0.80"), (accounts[2], "0.66")):
        job = Job.objects.create(
            workspace=workspace,
            provider_account=account,
            request=job_request("Gulls over the jetty.", seconds=8),
            state=JobState.SUCCEEDED,
            cost_estimate=Decimal(cost),
            cost_actual=Decimal(cost),
            result={"duration": 8.0, "width": 1280, "height": 720},
            budget_scope=f"series:{series.pk}",
        )
        Take.objects.create(scene=scene, job=job, review_state="approved")
        LedgerEntry.objects.create(
            workspace=workspace,
            job=job,
            provider_account=account,
            kind="charge",
            amount=Decimal(cost),
            period=job.created_at.strftime("%Y-%m"),
            scope=job.budget_scope,
        )
    return {"workspace": workspace, "episode": episode, "scene": scene}


def test_the_preflight_follows_the_scene_as_it_is_edited(live_server, page, screenshot, studio):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}{studio['episode'].get_absolute_url()}")
    card = page.locator(f"#scene-{studio['scene'].pk}")
    card.locator("a:has-text('Edit')").first.click()
    preflight = page.locator("li.editing .preflight")
    preflight.wait_for()
    assert "Cheapest: Seedance (about $0.66). If it is down: OpenAI." in preflight.inner_text()

    page.fill("li.editing input[name=duration]", "10")
    page.select_option("li.editing select[name=size]", "720x1280")
    page.locator("li.editing .preflight:has-text('Cheapest: Relay (about $0.12)')").wait_for()
    text = preflight.inner_text()
    assert "OpenAI makes videos of 4, 8, 12 seconds; this scene asks for 10." in text
    assert "about $0.83" in text  # Seedance, a fallback now
    screenshot("scene-preflight")
    assert page.locator("li.editing form.scene-form button:has-text('Save scene')").count() == 1


def test_the_costs_and_providers_pages_render(live_server, page, screenshot, studio):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/w/gull/costs/")
    assert "$1.46" in page.inner_text("main")  # spent so far
    assert page.locator("svg[role=img]").count() >= 2
    screenshot("costs")
    page.goto(f"{live_server.url}/w/gull/providers/")
    assert "no: characters travel as references" in page.inner_text("main")
    screenshot("providers")


def test_a_start_picture_is_uploaded_shown_and_weighed_by_each_provider(
    live_server, page, screenshot, studio, tmp_path
):
    from tests.samples import image_bytes

    picture = tmp_path / "dawn.png"
    picture.write_bytes(image_bytes(size=(320, 180), color=(240, 180, 90)))
    log_in(page, live_server.url)
    scene = studio["scene"]
    page.goto(f"{live_server.url}/w/gull/scenes/{scene.pk}/")

    slot = page.locator("#frames .frame-slot").first
    slot.locator("input[type=file]").set_input_files(str(picture))
    slot.locator("button:has-text('Save')").click()
    page.wait_for_url(lambda url: url.endswith("#frames"))

    assert "Saved dawn.png as the picture the scene starts from." in page.inner_text("body")
    thumbnail = page.locator("#frames img").first
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth > 0")
    assert "Seedance cannot start a video from a given picture." in page.inner_text("main")
    screenshot("scene-start-picture")
