"""The whole studio in a real browser, with the emulators and a real worker process:

an editor builds a character from uploaded references, writes a series, an episode and
three scenes that mention it, drags the last scene to the top (the order survives a
reload), generates a scene from its storyboard card and watches it finish, plays and
selects the take; then a reviewer approves it in the Django admin.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from jobs.models import ProviderAccount
from jobs.services import account_save
from studio.models import Membership, Role, Scene, Take, Workspace
from tests.e2e.browser import drag, log_in, scripts_ready
from tests.factories import UserFactory
from tests.samples import clip_bytes, image_bytes
from tests.support.processes import WorkerProcess, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# Engine timings for the worker process: poll as often as the emulator hints.
WORKER_ENV = {
    "JOBS_MIN_POLL_MS": "100",
    "JOBS_RECONCILE_DELAY_SECONDS": "0",
    "JOBS_SWEEP_GRACE_SECONDS": "0",
    "JOBS_PROVIDER_TIMEOUT_SECONDS": "10",
}


@pytest.fixture
def worker(redis_url, live_server, tmp_path, transactional_db):
    """`celery -A studio worker` as its own process, on the test database and Redis."""
    process = WorkerProcess(
        redis_url=redis_url,
        media_root=Path(settings.STORAGES["default"]["OPTIONS"]["location"]),
        env={**WORKER_ENV, "PUBLIC_BASE_URL": live_server.url},
        log_path=tmp_path / "worker.log",
    ).start()
    yield process
    process.stop()


def _add_scene(page, title: str, prompt: str) -> None:
    scripts_ready(page)
    page.click("a.button:has-text('Add scene')")
    form = page.locator("li.editing form.scene-form")
    form.locator("input[name=title]").fill(title)
    form.locator("textarea[name=prompt]").fill(prompt)
    form.locator("button:has-text('Save scene')").click()
    page.wait_for_selector(f".scene-card h3:has-text('{title}')")


def test_a_team_makes_an_episode_and_a_reviewer_approves_it(
    live_server, openai_emulator, worker, page, screenshot
):
    base = live_server.url
    owner = UserFactory(username="olga")
    workspace = Workspace.objects.create(name="Gull Point Films", slug="gull")
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    editor = UserFactory(username="ana")
    Membership.objects.create(workspace=workspace, user=editor, role=Role.EDITOR)
    reviewer = UserFactory(username="rita", is_staff=True)
    Membership.objects.create(workspace=workspace, user=reviewer, role=Role.REVIEWER)
    account_save(
        account=ProviderAccount(
            workspace=workspace,
            name="OpenAI",
            kind="openai",
            base_url=openai_emulator.api_url,
            model="sora-2",
        ),
        api_key="sk-test-1234",
    )
    # Long enough to see the progress bar move before the video arrives.
    httpx.post(f"{openai_emulator.url}/_emulator/config", json={"latency_seconds": 3})

    log_in(page, base, "ana")

    # A character from an uploaded portrait and a 3 s clip.
    page.goto(f"{base}/w/gull/characters/new/")
    page.fill("input[name=name]", "Mina Okafor")
    page.fill("input[name=handle]", "mina")
    page.set_input_files(
        "input[name=references]",
        files=[
            {"name": "mina.png", "mimeType": "image/png", "buffer": image_bytes(size=(320, 320))},
            {"name": "mina.mp4", "mimeType": "video/mp4", "buffer": clip_bytes(seconds=3.0)},
        ],
    )
    page.locator("form button.primary").first.click()
    page.wait_for_selector("h1:has-text('Mina Okafor')")
    assert "2 reference" in page.content() or page.locator(".asset, .reference").count() >= 2

    # A series and its first episode.
    page.goto(f"{base}/w/gull/series/new/")
    page.fill("input[name=title]", "The Lighthouse")
    page.select_option("select[name=default_size]", "1280x720")
    page.fill("input[name=default_duration]", "4")
    page.locator("form button.primary").first.click()
    page.fill("input[name=title]", "The New Keeper")
    page.locator("form:has(input[name=title]) button.primary").click()
    page.wait_for_selector("h1:has-text('Episode 1: The New Keeper')")

    # Three scenes, written in place on the storyboard; the third uses the @-suggestions.
    _add_scene(page, "Arrival", "@mina steps off the ferry at dusk.")
    _add_scene(page, "The stairs", "@mina climbs the spiral stairs.")
    scripts_ready(page)
    page.click("a.button:has-text('Add scene')")
    form = page.locator("li.editing form.scene-form")
    form.locator("input[name=title]").fill("The lamp")
    prompt = form.locator("textarea[name=prompt]")
    prompt.click()
    prompt.press_sequentially("The lamp turns; @mi")
    page.wait_for_selector(".mention-box li[data-handle=mina]")
    prompt.press("Enter")
    prompt.press_sequentially("looks out to sea.")
    assert prompt.input_value() == "The lamp turns; @mina looks out to sea."
    form.locator("button:has-text('Save scene')").click()
    page.wait_for_selector(".scene-card h3:has-text('The lamp')")
    titles = page.locator(".scene-card h3").all_inner_texts()
    assert titles == ["Arrival", "The stairs", "The lamp"]
    assert page.locator(".scene-card .chip.mention img").count() == 3  # chips with thumbnails

    # Drag the last scene to the top; the order is saved at once and survives a reload.
    cards = page.locator(".scene-card")
    # The card moves at once in the page; wait for the server's answer (the renumbered
    # list) before reloading, as a reload would otherwise cancel the request in flight.
    with page.expect_response(lambda response: "/move/" in response.url) as moved:
        drag(page, cards.nth(2).locator(".drag-handle"), cards.nth(0))
    assert moved.value.ok
    page.wait_for_function(
        "() => document.querySelector('.scene-card h3').textContent.includes('The lamp')"
    )
    page.reload()
    assert page.locator(".scene-card h3").all_inner_texts() == ["The lamp", "Arrival", "The stairs"]
    assert list(Scene.objects.order_by("position").values_list("title", flat=True)) == [
        "The lamp",
        "Arrival",
        "The stairs",
    ]

    # Generate the first scene from its card: the price is shown before paying.
    first = page.locator(".scene-card").first
    first.locator("a:has-text('Generate…')").click()
    panel = first.locator(".generate-panel")
    assert re.search(r"OpenAI\s+about \$0\.40", panel.inner_text())
    panel.locator("button:has-text('Generate 1 take')").click()
    first.locator(".progress").wait_for()
    screenshot("storyboard-generating")
    progress = []
    for _ in range(100):
        # Read the status block in one step: polling replaces it, and a bar found by one
        # call may be gone by the next (the take finished in between).
        seen = page.evaluate(
            """() => {
                const status = document.querySelector('.scene-card .scene-status');
                const bar = status && status.querySelector('.progress');
                if (bar) return {progress: Number(bar.getAttribute('aria-valuenow'))};
                return {done: Boolean(status && status.querySelector('img'))};
            }"""
        )
        if "progress" in seen:
            progress.append(seen["progress"])
        elif seen["done"]:
            break
        page.wait_for_timeout(200)
    page.locator(".scene-card").first.locator(".scene-status img").wait_for(timeout=30_000)
    assert progress, "the card never showed a progress bar"
    assert max(progress) > 0, progress
    assert "Ready to choose" in page.locator(".scene-card").first.inner_text()
    screenshot("storyboard")

    # The takes panel: play the take and select it.
    page.locator(".scene-card").first.locator("a:has-text('Takes (1)')").click()
    video = page.locator(".take video")
    video.wait_for()
    assert page.wait_for_function(
        "() => { const v = document.querySelector('.take video'); return v && v.readyState >= 3; }",
        timeout=20_000,
    )
    assert page.evaluate("document.querySelector('.take video').duration") == pytest.approx(
        4, abs=0.3
    )
    take = Take.objects.get()
    assert "$0.40" in page.inner_text(f"#take-{take.pk}")
    page.click("button:has-text('Select for the scene')")
    page.wait_for_selector(f"#take-{take.pk} .badge.selected")
    screenshot("takes-panel")
    take.refresh_from_db()
    assert take.is_selected

    page.goto(f"{base}/w/gull/characters/")
    screenshot("library")

    # A reviewer approves it in the admin.
    page.goto(f"{base}/w/gull/")
    page.click("button:has-text('Log out')")
    log_in(page, base, "rita", path="/admin/login/?next=/admin/studio/take/")
    page.wait_for_selector("#result_list")
    row = page.locator(f"#result_list tr:has(input[value='{take.pk}'])")
    assert row.locator(".take-play").count() == 1  # its player loads when asked
    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "approve_takes")
    page.click("button[name=index]")
    page.wait_for_selector("text=1 take(s) approved.")
    screenshot("admin-review")
    wait_until(lambda: Take.objects.get().review_state == Take.Review.APPROVED, timeout=5)
    approved = Take.objects.get()
    assert approved.reviewed_by == reviewer
