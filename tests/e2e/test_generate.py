"""In a real browser: log in, generate a take for a scene, watch it progress, play it, select it."""

from __future__ import annotations

import httpx
import pytest

from studio.models import Membership, Role, Take
from tests.e2e.browser import log_in
from tests.factories import SceneFactory, UserFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_a_user_generates_a_take_and_plays_it(studio, live_server, page, screenshot):
    user = UserFactory(username="ana")
    Membership.objects.create(workspace=studio["workspace"], user=user, role=Role.EDITOR)
    scene = SceneFactory(
        episode=studio["episode"],
        title="Arrival",
        prompt="@mina steps off the ferry.",
        duration=4,
        size="1280x720",
    )
    # Long enough to see the progress bar move before the video arrives.
    httpx.post(f"{studio['openai'].url}/_emulator/config", json={"latency_seconds": 3})

    log_in(page, live_server.url, "ana")
    page.goto(f"{live_server.url}{scene.get_absolute_url()}")
    assert "about $0.40" in page.inner_text(".generate")
    page.check(f"input[name=account][value='{studio['accounts']['openai'].pk}']")
    page.click("button:has-text('Generate')")

    page.wait_for_selector(".take .progress")
    screenshot("take-in-progress")
    page.wait_for_selector(".take video", timeout=30_000)
    ready = page.wait_for_function(
        "() => { const v = document.querySelector('.take video'); return v && v.readyState >= 3; }",
        timeout=20_000,
    )
    assert ready
    duration = page.evaluate("document.querySelector('.take video').duration")
    assert duration == pytest.approx(4, abs=0.3)
    assert "$0.40" in page.inner_text(".take")
    screenshot("take-finished")

    take = Take.objects.get(scene=scene)
    page.click(f"#take-{take.pk} button:has-text('Select for the scene')")
    # The take's own badge: the provider options above also carry a "selected" badge
    # (the policy's pick), so a page-wide selector would match before the click lands.
    page.wait_for_selector(f"#take-{take.pk} .badge.selected")
    take.refresh_from_db()
    assert take.is_selected
