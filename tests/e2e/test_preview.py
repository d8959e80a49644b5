"""The episode preview in a real browser: a viewer plays an episode's chosen takes (real
2-second videos) and the "now playing" scene goes 1 → 2 → 3 as each ends, past the scene
without a chosen take; a click in the scene list jumps there, the arrow keys step scenes,
Space pauses, "Open card" lands on the storyboard at that card; the page fits a desktop and
a phone."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from studio.models import Membership, Role, Workspace
from tests.e2e.browser import fits, log_in, policy_violations, watch_policy
from tests.factories import (
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
    UserFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes, image_bytes

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# Records each scene the preview says is playing, in order, from the moment it is called.
WATCH_PLAYING = """
() => {
  const preview = document.querySelector('[data-preview]');
  window.__played = [];
  new MutationObserver(() => {
    const number = preview.dataset.playing;
    if (window.__played[window.__played.length - 1] !== number) window.__played.push(number);
  }).observe(preview, {attributes: true, attributeFilter: ['data-playing']});
}
"""
SHOWN_VIDEO = "document.querySelector('[data-preview-video]:not([hidden])')"


def _episode() -> dict:
    """Vera watches in Gull Point Films; three scenes have a chosen take with a real 2 s
    video, a fourth (third in order) has a take nobody chose."""
    workspace = Workspace.objects.create(name="Gull Point Films", slug="gull")
    vera = UserFactory(username="vera")
    Membership.objects.create(workspace=workspace, user=vera, role=Role.VIEWER)
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI")
    series = SeriesFactory(workspace=workspace, title="The Lighthouse")
    episode = EpisodeFactory(series=series, number=1, title="The New Keeper")
    scenes, takes = [], []
    for title, colour, chosen in (
        ("Arrival", (200, 80, 40), True),
        ("The stairs", (40, 120, 200), True),
        ("The fog", (90, 90, 90), False),
        ("The lamp", (240, 200, 60), True),
    ):
        scene = SceneFactory(episode=episode, title=title, duration=2)
        take = TakeFactory(scene=scene, account=account, is_selected=chosen)
        take.job.result = {"duration": 2.0, "width": 320, "height": 180}
        take.job.video.save("video.mp4", ContentFile(clip_bytes(seconds=2.0, size=(320, 180))))
        take.job.thumbnail.save(
            "thumbnail.jpg", ContentFile(image_bytes("JPEG", size=(320, 180), color=colour))
        )
        scenes.append(scene)
        if chosen:
            takes.append(take)
    return {"episode": episode, "scenes": scenes, "takes": takes}


def _playing(page, number: int) -> None:
    page.wait_for_function(
        "(number) => document.querySelector('[data-preview]').dataset.playing === number",
        arg=str(number),
    )


def _shown_video_is(page, take) -> None:
    """The player in view plays `take`'s video and is moving."""
    page.wait_for_function(
        f"(take) => {{ const video = {SHOWN_VIDEO};"
        " return video.currentSrc.includes(`/takes/${take}/video/`)"
        " && !video.paused && video.currentTime > 0; }",
        arg=str(take.pk),
    )


def _video_ready(page) -> None:
    """The player in view shows its first frame (not the loading spinner)."""
    page.wait_for_function(f"() => {SHOWN_VIDEO}.readyState >= 2")


def test_a_viewer_plays_the_episode_through_jumps_between_scenes_and_opens_a_card(
    live_server, page, screenshot
):
    studio = _episode()
    arrival, stairs, fog, lamp = studio["scenes"]
    first, second, third = studio["takes"]
    base = live_server.url
    url = base + reverse("episode_preview", args=["gull", studio["episode"].pk])
    watch_policy(page)
    page.set_viewport_size({"width": 1440, "height": 1000})

    log_in(page, base, "vera")
    page.goto(url)
    rows = page.locator(".preview-scene")
    assert rows.count() == 4
    assert "Skipped: no take chosen" in page.locator(f"#preview-scene-{fog.pk}").inner_text()
    assert page.locator("[data-now]").inner_text() == "Scene 1 of 4: Arrival"
    assert page.locator("[data-clock]").inner_text() == "0:00 / 0:06"
    assert page.locator("[data-previous]").is_disabled()  # nothing before the first scene
    _video_ready(page)
    assert fits(page)
    screenshot("episode-preview")

    # Play: each take ends and the next begins, the skipped scene passed over.
    page.evaluate(WATCH_PLAYING)
    page.locator("[data-play]").click()
    _shown_video_is(page, first)
    page.wait_for_function(
        "() => document.querySelector('[data-preview]').dataset.state === 'finished'",
        timeout=30_000,
    )
    assert page.evaluate("() => window.__played") == ["2", "4"]
    assert f"/takes/{third.pk}/video/" in page.evaluate(f"() => {SHOWN_VIDEO}.currentSrc")
    assert page.locator("[data-now]").inner_text() == "Scene 4 of 4: The lamp"
    assert page.locator(f"#preview-scene-{lamp.pk}").get_attribute("aria-current") == "true"
    assert page.locator("[data-clock]").inner_text() == "0:06 / 0:06"
    assert page.locator("[data-play]").inner_text().startswith("Play again")
    assert page.locator("[data-next]").is_disabled()

    # A click on a scene in the list plays from there; ← steps back a scene, Space pauses.
    # From here the players run at a tenth of the speed (a 2 s take lasts 20 s): on a busy
    # machine a step could take longer than a take, which then ended and moved the preview
    # on to the next scene under the test (as it should), about one run in ten.
    page.evaluate(
        "() => document.querySelectorAll('[data-preview-video]').forEach((video) => {"
        " video.defaultPlaybackRate = 0.1; video.playbackRate = 0.1; })"
    )
    page.locator(f"#preview-scene-{stairs.pk} [data-jump]").click()
    _playing(page, 2)
    page.keyboard.press(" ")
    page.wait_for_function(f"() => {SHOWN_VIDEO}.paused")
    assert f"?scene={stairs.pk}" in page.url
    page.keyboard.press("ArrowLeft")
    _playing(page, 1)
    assert page.locator(f"#preview-scene-{arrival.pk}").get_attribute("aria-current") == "true"
    assert page.locator(".preview-scene[aria-current]").count() == 1
    page.keyboard.press(" ")
    _shown_video_is(page, first)
    page.keyboard.press("ArrowRight")
    _shown_video_is(page, second)

    # "Open card" lands on the storyboard with that scene's card in view.
    page.locator(f"#preview-scene-{lamp.pk} [data-open-card]").click()
    page.wait_for_url(f"**/episodes/{studio['episode'].pk}/?at={lamp.pk}#scene-{lamp.pk}")
    card = page.locator(f"#scene-{lamp.pk}")
    card.wait_for()
    assert "The lamp" in card.inner_text()
    assert card.evaluate(
        "(card) => { const box = card.getBoundingClientRect();"
        " return box.top < window.innerHeight && box.bottom > 0; }"
    )

    # On a phone the player scales to the width and the list stacks below it.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    page.locator("[data-preview-controls]").wait_for()
    _video_ready(page)
    assert fits(page), page.evaluate("() => document.documentElement.scrollWidth")
    stage = page.locator(".preview-stage").bounding_box()
    listed = page.locator(".preview-list").bounding_box()
    assert listed["y"] >= stage["y"] + stage["height"]
    assert stage["width"] <= 390
    screenshot("episode-preview-phone")
    assert policy_violations(page) == []


def test_an_episode_with_no_chosen_take_says_so_in_the_browser(live_server, page):
    studio = _episode()
    for take in studio["takes"]:
        take.is_selected = False
        take.save(update_fields=["is_selected"])
    log_in(page, live_server.url, "vera")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + reverse("episode_preview", args=["gull", studio["episode"].pk]))
    assert "Nothing to play yet" in page.locator(".preview-empty").inner_text()
    assert fits(page)
    page.locator(".preview-empty a", has_text="Back to the storyboard").click()
    page.wait_for_url(f"**/episodes/{studio['episode'].pk}/")
