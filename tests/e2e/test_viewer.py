"""The take viewer and compare in a real browser: an editor opens a take large, steps to the
scene's next take by keyboard, compares the two side by side (one transport plays both in
step), chooses the second, and the scene and the storyboard show it chosen; the viewer and
compare fit a desktop and a phone."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from studio.models import Membership, Role, Take, Workspace
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

FPS = 24
SECONDS = 4.0
RESULT = {"duration": SECONDS, "fps": FPS, "width": 320, "height": 180}
VIDEOS = "[...document.querySelectorAll('[data-viewer-video]')]"
VIDEO_TIMES = f"() => {VIDEOS}.map(v => v.currentTime)"


def _finished_take(scene, account, colour) -> Take:
    take = TakeFactory(scene=scene, account=account, job__result=RESULT)
    take.job.video.save(
        "video.mp4", ContentFile(clip_bytes(seconds=SECONDS, size=(320, 180), fps=FPS))
    )
    take.job.thumbnail.save(
        "thumbnail.jpg", ContentFile(image_bytes("JPEG", size=(320, 180), color=colour))
    )
    return take


def _studio() -> dict:
    """Eddie edits in Gull Point Films: scene 1 of the episode has two finished takes (real
    4 s videos at 24 fps), scene 2 one."""
    workspace = Workspace.objects.create(name="Gull Point Films", slug="gull")
    eddie = UserFactory(username="eddie")
    Membership.objects.create(workspace=workspace, user=eddie, role=Role.EDITOR)
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI")
    episode = EpisodeFactory(
        series=SeriesFactory(workspace=workspace, title="The Lighthouse"),
        number=1,
        title="The New Keeper",
    )
    arrival = SceneFactory(episode=episode, title="Arrival", duration=4)
    stairs = SceneFactory(episode=episode, title="The stairs", duration=4)
    return {
        "workspace": workspace,
        "episode": episode,
        "arrival": arrival,
        "stairs": stairs,
        "first": _finished_take(arrival, account, (200, 80, 40)),
        "second": _finished_take(arrival, account, (40, 120, 200)),
        "stairs_take": _finished_take(stairs, account, (240, 200, 60)),
    }


def _videos_ready(page, count: int) -> None:
    page.wait_for_function(
        "(count) => { const videos = [...document.querySelectorAll('[data-viewer-video]')];"
        " return videos.length === count && videos.every(v => v.readyState >= 2); }",
        arg=count,
    )


def _box(page, selector: str) -> dict:
    return page.locator(selector).bounding_box()


def test_an_editor_steps_to_the_next_take_compares_two_in_step_and_chooses_one(
    live_server, page, screenshot
):
    studio = _studio()
    first, second = studio["first"], studio["second"]
    base = live_server.url
    watch_policy(page)
    page.set_viewport_size({"width": 1440, "height": 1000})
    log_in(page, base, "eddie")

    # The viewer: the first take large; → goes to the scene's next take.
    page.goto(base + reverse("take_viewer", args=["gull", first.pk]))
    _videos_ready(page, 1)
    assert "Scene 1: Arrival" in page.locator("h1").inner_text()
    assert page.locator(".strip-take").count() == 2
    player = _box(page, "#viewer-video")
    assert player["width"] > 1100  # as wide as the page allows
    assert fits(page)
    screenshot("viewer")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**{reverse('take_viewer', args=['gull', second.pk])}")
    _videos_ready(page, 1)

    # . steps one frame forward (paused), ? shows the keys.
    page.keyboard.press(".")
    page.keyboard.press(".")
    assert page.evaluate("() => document.getElementById('viewer-video').currentTime") == (
        pytest.approx(2.5 / FPS, abs=1e-3)
    )
    page.keyboard.press("?")
    assert page.locator("#viewer-keys").evaluate("(keys) => keys.open")
    page.keyboard.press("Escape")
    assert not page.locator("#viewer-keys").evaluate("(keys) => keys.open")

    # c: compare this take with the newest other (none is chosen yet).
    page.keyboard.press("c")
    page.wait_for_url("**/compare/**")
    _videos_ready(page, 2)
    columns = [page.locator(f"#compare-{take.pk}") for take in (first, second)]
    left, right = (column.bounding_box() for column in columns)
    assert right["x"] >= left["x"] + left["width"]  # side by side at 1440 px
    assert abs(right["y"] - left["y"]) < 1
    # One transport: the videos' own controls are gone, only the first plays its sound.
    assert page.evaluate(f"() => {VIDEOS}.map(v => [v.controls, v.muted])") == [
        [False, False],
        [False, True],
    ]

    # Play: both advance together.
    page.click("[data-play]")
    page.wait_for_function(f"() => {VIDEOS}.every(v => v.currentTime > 1.5)")
    playing = page.evaluate(VIDEO_TIMES)
    assert abs(playing[0] - playing[1]) < 0.3, playing
    page.wait_for_timeout(500)
    later = page.evaluate(VIDEO_TIMES)
    assert later[0] > playing[0], (playing, later)
    assert later[1] > playing[1], (playing, later)
    assert abs(later[0] - later[1]) < 0.3, later
    page.keyboard.press(" ")
    page.wait_for_function(f"() => {VIDEOS}.every(v => v.paused)")
    # A frame step moves both to the same frame.
    page.keyboard.press(",")
    stepped = page.evaluate(VIDEO_TIMES)
    assert stepped[0] == pytest.approx(stepped[1], abs=1e-3)
    assert policy_violations(page) == []
    screenshot("compare")

    # Choose the second: back on the compare page with the message, the second chosen.
    columns[1].get_by_role("button", name="Choose this take").click()
    page.wait_for_function(
        "(text) => document.querySelector('#messages').innerText.includes(text)",
        arg=f"Take {second.pk} is now the scene's selected take.",
    )
    assert "Chosen" in columns[1].inner_text()
    assert columns[0].get_by_role("button", name="Choose this take").count() == 1
    second.refresh_from_db()
    assert second.is_selected

    # The compare page stacks on a phone, without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    _videos_ready(page, 2)
    top, bottom = (column.bounding_box() for column in columns)
    assert bottom["y"] >= top["y"] + top["height"]
    assert fits(page), page.evaluate("() => document.documentElement.scrollWidth")
    screenshot("compare-phone")
    page.goto(base + reverse("take_viewer", args=["gull", second.pk]))
    _videos_ready(page, 1)
    assert fits(page), page.evaluate("() => document.documentElement.scrollWidth")
    screenshot("viewer-phone")

    # ↓ goes to the next scene's take; Esc back to the storyboard, where the choice shows.
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.keyboard.press("ArrowDown")
    page.wait_for_url(f"**{reverse('take_viewer', args=['gull', studio['stairs_take'].pk])}")
    page.keyboard.press("ArrowUp")
    page.wait_for_url(f"**{reverse('take_viewer', args=['gull', second.pk])}")
    page.keyboard.press("Escape")
    page.wait_for_url(f"**{reverse('episode_detail', args=['gull', studio['episode'].pk])}*")
    card = page.locator(f"#scene-{studio['arrival'].pk}")
    assert f"Take {second.pk} chosen" in card.inner_text()

    page.goto(base + studio["arrival"].get_absolute_url())
    assert "Selected" in page.locator(f"#take-{second.pk} .take-head").inner_text()
    assert "Selected" not in page.locator(f"#take-{first.pk} .take-head").inner_text()
    assert policy_violations(page) == []
