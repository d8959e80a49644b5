"""#16's walk through the studio in one browser session, as an owner making an episode:
reorder the shots in the grid, open a take large and compare it side by side with the
scene's other take (one transport plays both in step), choose the other one, then play the
episode preview across its three scenes in their new order, the new choice included."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from studio.models import Membership, Role, Scene, Take, Workspace
from tests.e2e.browser import drag_before, log_in, policy_violations, watch_policy
from tests.e2e.test_preview import SHOWN_VIDEO, WATCH_PLAYING
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

SECONDS = 2.0
VIDEOS = "[...document.querySelectorAll('[data-viewer-video]')]"


def _take(scene, account, colour, *, chosen: bool) -> Take:
    take = TakeFactory(
        scene=scene,
        account=account,
        is_selected=chosen,
        job__result={"duration": SECONDS, "fps": 24, "width": 320, "height": 180},
    )
    take.job.video.save("video.mp4", ContentFile(clip_bytes(seconds=SECONDS, size=(320, 180))))
    take.job.thumbnail.save(
        "thumbnail.jpg", ContentFile(image_bytes("JPEG", size=(320, 180), color=colour))
    )
    return take


@pytest.fixture
def studio() -> dict:
    """Olga owns Gull Point Films. Three scenes, each with a chosen take (real 2 s videos);
    the first also has a second take nobody chose yet."""
    workspace = Workspace.objects.create(name="Gull Point Films", slug="gull")
    Membership.objects.create(
        workspace=workspace, user=UserFactory(username="olga"), role=Role.OWNER
    )
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI")
    series = SeriesFactory(workspace=workspace, title="The Lighthouse")
    episode = EpisodeFactory(series=series, number=1, title="The New Keeper")
    arrival = SceneFactory(episode=episode, title="Arrival", duration=2)
    stairs = SceneFactory(episode=episode, title="The stairs", duration=2)
    lamp = SceneFactory(episode=episode, title="The lamp", duration=2)
    return {
        "episode": episode,
        "scenes": (arrival, stairs, lamp),
        "arrival_first": _take(arrival, account, (200, 80, 40), chosen=True),
        "arrival_second": _take(arrival, account, (40, 120, 200), chosen=False),
        "stairs_take": _take(stairs, account, (90, 90, 90), chosen=True),
        "lamp_take": _take(lamp, account, (240, 200, 60), chosen=True),
    }


def _order(episode) -> list[int]:
    return list(
        Scene.objects.filter(episode=episode).order_by("position").values_list("pk", flat=True)
    )


def test_reorder_in_the_grid_compare_two_takes_choose_one_and_preview_the_episode(
    live_server, page, studio
):
    base = live_server.url
    episode = studio["episode"]
    arrival, stairs, lamp = studio["scenes"]
    first, second = studio["arrival_first"], studio["arrival_second"]
    watch_policy(page)
    page.set_viewport_size({"width": 1440, "height": 1000})
    log_in(page, base)

    # 1. The grid: the lamp dragged in front of the arrival.
    page.goto(f"{base}{episode.get_absolute_url()}?view=grid")
    page.wait_for_selector("#scene-list .grid-card")
    drag_before(
        page,
        page.locator(f"#scene-{lamp.pk} .drag-handle"),
        page.locator(f"#scene-{arrival.pk}"),
    )
    page.wait_for_selector(f'#scene-{lamp.pk}[data-position="0"]')
    page.wait_for_selector("#scene-list:not([aria-busy])")
    assert _order(episode) == [lamp.pk, arrival.pk, stairs.pk]
    numbers = page.locator("#scene-list .grid-card .scene-number").all_inner_texts()
    assert numbers == ["1", "2", "3"]

    # 2. The arrival's chosen take large, then compared with its other take.
    page.goto(base + reverse("take_viewer", args=["gull", first.pk]))
    page.wait_for_function("() => document.getElementById('viewer-video').readyState >= 2")
    page.keyboard.press("c")
    page.wait_for_url("**/compare/**")
    page.wait_for_function(f"() => {VIDEOS}.length === 2 && {VIDEOS}.every(v => v.readyState >= 2)")
    columns = [page.locator(f"#compare-{take.pk}") for take in (first, second)]
    left, right = (column.bounding_box() for column in columns)
    assert right["x"] >= left["x"] + left["width"]  # side by side
    page.click("[data-play]")
    page.wait_for_function(f"() => {VIDEOS}.every(v => v.currentTime > 0.8)")
    times = page.evaluate(f"() => {VIDEOS}.map(v => v.currentTime)")
    assert abs(times[0] - times[1]) < 0.3, times  # in step
    columns[1].get_by_role("button", name="Choose this take").click()
    page.wait_for_function(
        "(text) => document.querySelector('#messages').innerText.includes(text)",
        arg=f"Take {second.pk} is now the scene's selected take.",
    )
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.is_selected
    assert not first.is_selected

    # 3. The preview plays the three scenes in their new order, the new choice second.
    page.goto(base + reverse("episode_preview", args=["gull", episode.pk]))
    assert page.locator("[data-now]").inner_text() == "Scene 1 of 3: The lamp"
    page.evaluate(WATCH_PLAYING)
    page.evaluate(
        f"""() => {{
            window.__sources = [];
            setInterval(() => {{
                const video = {SHOWN_VIDEO};
                if (video && !video.paused && !window.__sources.includes(video.currentSrc))
                    window.__sources.push(video.currentSrc);
            }}, 50);
        }}"""
    )
    page.locator("[data-play]").click()
    page.wait_for_function(
        "() => document.querySelector('[data-preview]').dataset.state === 'finished'",
        timeout=30_000,
    )
    assert page.evaluate("() => window.__played") == ["2", "3"]
    sources = page.evaluate("() => window.__sources")
    played = [
        next(
            take.pk
            for take in (studio["lamp_take"], second, studio["stairs_take"])
            if f"/takes/{take.pk}/video/" in source
        )
        for source in sources
    ]
    assert played == [studio["lamp_take"].pk, second.pk, studio["stairs_take"].pk]
    assert page.locator("[data-now]").inner_text() == "Scene 3 of 3: The stairs"
    assert policy_violations(page) == []
