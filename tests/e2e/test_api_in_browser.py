"""In a real browser and a real script: an owner makes a token on the API page and copies it
from the page (shown once); a script uses it through the OpenAI gateway with OpenAI's own
SDK; the take appears on the storyboard of the series the token is bound to; the call log
lists the calls; revoking the token stops the script."""

from __future__ import annotations

import openai
import pytest

from studio.models import Membership, Role, Take
from tests.e2e.browser import log_in
from tests.factories import SeriesFactory, UserFactory

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    # OpenAI's SDK marks videos.* deprecated (Sora's shutdown); the gateway is what it calls.
    pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning"),
]


def test_an_owner_makes_a_token_a_script_uses_it_and_its_take_is_on_the_storyboard(
    studio, live_server, page, screenshot, wait_for_job
):
    owner = UserFactory(username="olga")
    Membership.objects.create(workspace=studio["workspace"], user=owner, role=Role.OWNER)
    series = SeriesFactory(workspace=studio["workspace"], title="Harbour Nights")
    slug = studio["workspace"].slug

    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/w/{slug}/api/")
    page.fill("#id_name", "nightly script")
    page.select_option("#id_role", "editor")
    page.select_option("#id_series", str(series.pk))
    page.click("button:has-text('Make the token')")
    raw = page.input_value("#shown-once-value")
    assert raw.startswith("cb_")
    screenshot("api-token-shown-once")
    page.goto(f"{live_server.url}/w/{slug}/api/")
    assert raw not in page.content()  # never shown again

    client = openai.OpenAI(
        base_url=f"{live_server.url}/gateway/openai/v1", api_key=raw, max_retries=0
    )
    video = client.videos.create(prompt="Lanterns along the quay.", seconds="4")
    take = Take.objects.get(pk=int(video.id.removeprefix("video_")))
    wait_for_job(take.job)
    done = client.videos.retrieve(video.id)
    assert done.status == "completed"
    assert take.scene.episode.series == series
    assert take.scene.episode.inbox

    page.goto(f"{live_server.url}{take.scene.episode.get_absolute_url()}")
    page.wait_for_selector(f"#scene-{take.scene.pk}")
    assert "Lanterns along the quay." in page.inner_text(f"#scene-{take.scene.pk}")
    screenshot("api-take-in-inbox")

    page.goto(f"{live_server.url}/w/{slug}/api/")
    page.click("a:has-text('Calls')")
    log = page.inner_text("main")
    assert f"/gateway/openai/v1/videos/{video.id}" in log
    assert "POST" in log
    assert "/gateway/openai/v1/videos" in log
    screenshot("api-call-log")

    page.goto(f"{live_server.url}/w/{slug}/api/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Revoke')")
    page.wait_for_selector("text=revoked")
    with pytest.raises(openai.AuthenticationError):
        client.videos.list()


def test_the_interactive_api_reference_renders_under_the_sites_policy(live_server, page):
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=20_000)
    tags = page.inner_text(".swagger-ui")
    for tag in ("Characters", "Takes", "Cuts", "Costs and budgets"):
        assert tag in tags
    assert violations == []
