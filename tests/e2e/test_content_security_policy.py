"""In a real browser, every page the studio shows passes its own Content-Security-Policy.

The pages are visited as a user meets them (polling blocks polling, the storyboard's drag
handles and Generate panel, a finished take's player, the confirm of a plain form, the
admin's review queue); the test collects every `securitypolicyviolation` event, every
console message about the policy, and every expression htmx was asked to evaluate, and
fails listing them.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from characters.services import asset_add
from jobs.models import Budget, Job, JobState, ProviderAccount
from studio.models import Episode, Membership, Role, Scene, Series, Take, Workspace
from tests.e2e.browser import drag
from tests.factories import PASSWORD, CharacterFactory, UserFactory
from tests.jobs.factories import job_request
from tests.samples import clip_bytes, image_bytes

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# Runs in every document before its own scripts, so a violation during parsing is seen too.
REPORTER = """
(() => {
  const report = (kind, detail) =>
    window.castboardReport({kind, page: location.pathname, ...detail});
  document.addEventListener("securitypolicyviolation", (event) => report("violation", {
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    sample: event.sample,
    where: `${event.sourceFile}:${event.lineNumber}`,
  }), true);
  // With allowEval off htmx evaluates nothing; an attribute that asks it to is an error.
  document.addEventListener("htmx:evalDisallowedError", (event) => report("htmx eval", {
    element: event.target.outerHTML.slice(0, 200),
  }), true);
})();
"""


def _make_studio() -> dict:
    workspace = Workspace.objects.create(name="Gull Point Films", slug="gull")
    # A superuser reviews in the admin (jobs and accounts too) and owns the workspace.
    owner = UserFactory(username="olga", is_staff=True, is_superuser=True)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    editor = UserFactory(username="ana")
    Membership.objects.create(workspace=workspace, user=editor, role=Role.EDITOR)
    # Never called: every page here renders from what is stored.
    account = ProviderAccount.objects.create(
        workspace=workspace,
        name="OpenAI",
        kind="openai",
        base_url="http://127.0.0.1:9/v1",
        model="sora-2",
    )
    mina = CharacterFactory(workspace=workspace, name="Mina Okafor", handle="mina")
    for name, data, kind in (
        ("mina.png", image_bytes(size=(320, 320)), "image/png"),
        ("mina.mp4", clip_bytes(seconds=1.0), "video/mp4"),
    ):
        asset_add(character=mina, upload=SimpleUploadedFile(name, data, kind))
    series = Series.objects.create(workspace=workspace, title="The Lighthouse")
    episode = Episode.objects.create(series=series, number=1, title="The New Keeper")
    arriving, lamp = (
        Scene.objects.create(
            episode=episode,
            position=position,
            title=title,
            prompt=prompt,
            duration=4,
            size="1280x720",
        )
        for position, title, prompt in (
            (0, "Arrival", "@mina steps off the ferry."),
            (1, "The lamp", "@mina lights the lamp."),
        )
    )
    in_flight = Take.objects.create(
        scene=arriving,
        job=Job.objects.create(
            workspace=workspace,
            provider_account=account,
            request=job_request("Mina steps off the ferry."),
            state=JobState.RUNNING,
            progress=40,
            cost_estimate=Decimal("0.80"),
        ),
    )
    finished_job = Job.objects.create(
        workspace=workspace,
        provider_account=account,
        request=job_request("Mina lights the lamp."),
        state=JobState.SUCCEEDED,
        progress=100,
        cost_estimate=Decimal("0.40"),
        cost_actual=Decimal("0.40"),
        result={"duration": 1.0, "width": 64, "height": 48},
    )
    finished_job.video.save("video.mp4", ContentFile(clip_bytes(seconds=1.0)))
    finished_job.thumbnail.save("thumbnail.jpg", ContentFile(image_bytes("JPEG", (64, 48))))
    finished_job.spritesheet.save("spritesheet.jpg", ContentFile(image_bytes("JPEG", (320, 96))))
    finished = Take.objects.create(scene=lamp, job=finished_job)
    Budget.objects.create(workspace=workspace, cap=Decimal("20.00"), label="Gull Point Films")
    return {
        "workspace": workspace,
        "account": account,
        "mina": mina,
        "series": series,
        "episode": episode,
        "arriving": arriving,
        "lamp": lamp,
        "in_flight": in_flight,
        "finished": finished,
    }


@pytest.fixture
def policy_problems(page) -> list[dict]:
    """What the page reports about the policy, from the next document on."""
    problems: list[dict] = []

    def report(problem: dict) -> None:
        problems.append(problem)

    def console(message) -> None:
        if "Content Security Policy" in message.text:
            report({"kind": "console", "page": page.url, "text": message.text})

    page.expose_function("castboardReport", report)
    page.add_init_script(REPORTER)
    page.on("console", console)
    page.on(
        "pageerror", lambda error: report({"kind": "error", "page": page.url, "text": str(error)})
    )
    return problems


def test_the_studios_pages_pass_its_content_security_policy(
    live_server, page, policy_problems, screenshot
):
    studio = _make_studio()
    try:
        _walk_the_studio(page, live_server.url, studio, screenshot)
    finally:
        page.wait_for_timeout(300)  # the last reports arrive through the exposed function
        # Listed even when a step above failed: a blocked script is often why it did.
        assert not policy_problems, "\n".join(str(problem) for problem in policy_problems)


def _walk_the_studio(page, base: str, studio: dict, screenshot) -> None:
    dialogs: list[str] = []

    page.goto(f"{base}/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.locator("form button.primary").first.click()
    page.wait_for_url(lambda url: "/login/" not in url)
    workspace = f"{base}/w/gull"

    # The dashboard, its in-progress block polling (every 3 s).
    with page.expect_response(lambda response: "shown=" in response.url, timeout=10_000):
        page.goto(f"{workspace}/")
    assert page.locator("#in-progress progress").count() == 1

    page.goto(f"{workspace}/characters/")
    page.wait_for_selector("text=Mina Okafor")
    page.goto(f"{base}{studio['mina'].get_absolute_url()}")
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.thumb')].some((img) => img.naturalWidth > 0)"
    )
    page.goto(f"{base}{studio['series'].get_absolute_url()}")
    page.wait_for_selector("h1:has-text('The Lighthouse')")

    # The storyboard: its event stream (htmx's SSE extension; studio/views/live.py), a drag by
    # its handle (Sortable), the Generate panel opened through htmx, and the @-suggestions of a
    # new scene's prompt.
    with page.expect_response(lambda response: "/events/" in response.url, timeout=10_000):
        page.goto(f"{base}{studio['episode'].get_absolute_url()}")
    assert page.evaluate("() => Boolean(window.Sortable)")
    assert page.locator("#scene-list[data-sortable-ready]").count() == 1
    bar = page.locator(f"#scene-status-{studio['arriving'].pk} .progress")
    assert bar.evaluate("(bar) => bar.position") == pytest.approx(0.4)
    cards = page.locator(".scene-card")
    with page.expect_response(lambda response: "/move/" in response.url) as moved:
        drag(page, cards.nth(1).locator(".drag-handle"), cards.nth(0))
    assert moved.value.ok
    page.wait_for_function(
        "() => document.querySelector('.scene-card h3').textContent.includes('The lamp')"
    )
    lamp = page.locator(f"#scene-{studio['lamp'].pk}")
    lamp.locator("a:has-text('Generate…')").click()
    lamp.locator(".generate-panel").wait_for()
    screenshot("csp-storyboard")
    page.click("a.button:has-text('Add scene')")
    prompt = page.locator("li.editing form.scene-form textarea[name=prompt]")
    prompt.click()
    prompt.press_sequentially("The lamp turns; @mi")
    page.wait_for_selector(".mention-box li[data-handle=mina]")

    # A finished take's player (and its poster and spritesheet), an in-flight take's bar.
    page.goto(f"{base}{studio['lamp'].get_absolute_url()}")
    page.wait_for_function(
        "() => { const v = document.querySelector('.take video'); return v && v.readyState >= 1; }"
    )
    page.hover(".take .player")
    page.wait_for_selector(".scrub-preview.shown")
    screenshot("csp-scene-player")
    card_url = f"/takes/{studio['in_flight'].pk}/"
    with page.expect_response(lambda response: response.url.endswith(card_url), timeout=10_000):
        page.goto(f"{base}{studio['arriving'].get_absolute_url()}")
    take_bar = page.locator(f"#take-{studio['in_flight'].pk} .progress")
    assert take_bar.evaluate("(bar) => bar.position") == pytest.approx(0.4)
    screenshot("csp-take-in-flight")

    # Costs: a budget's form, and its remove asks first (declined, then accepted).
    page.goto(f"{workspace}/costs/")
    page.wait_for_selector("form.budget-form")
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click("button:has-text('Remove the cap')")
    page.wait_for_timeout(300)
    assert dialogs == ["Remove the cap of This workspace?"]
    assert Budget.objects.filter(workspace=studio["workspace"]).count() == 1
    screenshot("csp-costs")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("button:has-text('Remove the cap')")
    assert not Budget.objects.filter(workspace=studio["workspace"]).exists()

    page.goto(f"{workspace}/providers/")
    page.goto(f"{workspace}/settings/providers/")
    page.goto(f"{workspace}/members/")
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.locator("tr:has-text('ana') button:has-text('Remove')").click()
    page.wait_for_timeout(300)
    assert dialogs[-1] == "Remove ana from Gull Point Films? They lose access at once."
    assert Membership.objects.filter(user__username="ana").exists()
    page.goto(f"{workspace}/series/999999/")  # the studio's own 404 page

    # The admin: the review queue with its players, a take, jobs and provider accounts.
    page.goto(f"{base}/admin/")
    page.goto(f"{base}/admin/studio/take/?review=pending")
    page.locator("#result_list .take-play").first.click()  # admin_takes.js loads the player
    page.wait_for_selector("#result_list video")
    screenshot("csp-admin-review-queue")
    page.locator(f"#result_list input[value='{studio['finished'].pk}']").check()
    page.select_option("select[name=action]", "reject_takes")
    page.click("button[name=index]")
    page.wait_for_selector("textarea[name=reason]")
    page.goto(f"{base}/admin/studio/take/{studio['finished'].pk}/change/")
    page.goto(f"{base}/admin/jobs/job/")
    page.goto(f"{base}/admin/jobs/job/{studio['finished'].job_id}/change/")
    page.goto(f"{base}/admin/jobs/provideraccount/")
    page.goto(f"{base}/admin/jobs/provideraccount/{studio['account'].pk}/change/")
