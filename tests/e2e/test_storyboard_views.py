"""The storyboard's views in a real browser: the grid of pictures reordered by dragging, the
timeline strip with its gaps and running time, the choice remembered across visits, and
every view fitting a desktop and a phone without the page scrolling sideways."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from studio.models import Episode, Membership, Role, Scene, Take, Workspace
from tests.e2e.browser import drag_before, fits, log_in, policy_violations, watch_policy
from tests.factories import (
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
    UserFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import image_bytes

pytestmark = pytest.mark.django_db(transaction=True)

# (title, seconds, what the scene has): a chosen take with a picture, a take in flight, nothing.
SHOTS = [
    ("Arrival", 8, "chosen"),
    ("The stairs", 4, "chosen"),
    ("The lamp", 12, "running"),
    ("The storm", 6, "chosen"),
    ("Morning", 8, None),
    ("The boat", 10, None),
]
COLOURS = [(200, 80, 40), (40, 120, 200), (240, 200, 60), (60, 160, 90)]


@pytest.fixture
def episode() -> Episode:
    workspace = Workspace.objects.create(name="Harbour Films", slug="harbour")
    owner = UserFactory(username="olga")
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI")
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")
    episode = EpisodeFactory(series=series, number=1, title="Pilot")
    for n, (title, seconds, has) in enumerate(SHOTS):
        scene = SceneFactory(episode=episode, title=title, duration=seconds)
        if has == "chosen":
            take = TakeFactory(scene=scene, account=account)
            take.job.thumbnail.save(
                "thumbnail.jpg",
                ContentFile(image_bytes("JPEG", size=(320, 180), color=COLOURS[n % 4])),
            )
            Take.objects.filter(pk=take.pk).update(is_selected=True)
        elif has == "running":
            TakeFactory(scene=scene, account=account, state="running", job__progress=30)
    return episode


def _order(episode: Episode) -> list[int]:
    scenes = Scene.objects.filter(episode=episode).order_by("position")
    return list(scenes.values_list("pk", flat=True))


def _at_both_widths(page, screenshot, name: str) -> None:
    """A screenshot at 1440 px and at 390 px; neither scrolls the page sideways."""
    for width, height in ((1440, 1000), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)  # the layout settles
        screenshot(f"storyboard-{name}-{width}")
        assert fits(page), f"The {name} view scrolls sideways at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_grid_reorders_by_dragging_and_the_timeline_shows_the_gaps(
    live_server, page, screenshot, episode
):
    base = live_server.url
    watch_policy(page)
    log_in(page, base)
    page.goto(f"{base}{episode.get_absolute_url()}")
    assert page.locator("#scene-list .scene-card").count() == len(SHOTS)
    _at_both_widths(page, screenshot, "list")

    # Grid: the pictures of the chosen takes, the state over each.
    page.get_by_role("link", name="Grid").click()
    page.wait_for_selector("#scene-list .grid-card")
    assert page.locator(".view-switch [aria-current=page]").inner_text() == "Grid"
    cards = page.locator("#scene-list .grid-card")
    assert cards.count() == len(SHOTS)
    assert page.locator("#scene-list .grid-card .scene-thumb img").count() == 3
    page.wait_for_function(
        "() => [...document.querySelectorAll('.grid-card .scene-thumb img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    order = _order(episode)
    lamp = page.locator(f"#scene-{order[2]}")
    assert "Generating" in lamp.locator(".status-line").inner_text()
    # The state sits over the picture, not under it.
    _at_both_widths(page, screenshot, "grid")
    thumb = lamp.locator(".scene-thumb").bounding_box()
    badge = lamp.locator(".status-line .badge").bounding_box()
    assert thumb["y"] < badge["y"] < thumb["y"] + thumb["height"]

    # The last shot dragged in front of the second: saved, and the numbers follow.
    moving, target = order[5], order[1]
    drag_before(
        page, page.locator(f"#scene-{moving} .drag-handle"), page.locator(f"#scene-{target}")
    )
    page.wait_for_selector(f'#scene-{moving}[data-position="1"]')
    page.wait_for_selector("#scene-list:not([aria-busy])")
    assert _order(episode) == [order[0], moving, *order[1:5]]
    assert page.locator(f"#scene-{moving} .scene-number").inner_text() == "2"
    assert page.locator(f"#scene-{order[4]} .scene-number").inner_text() == "6"
    assert page.locator("#scene-list .grid-card").count() == len(SHOTS)  # still the grid
    numbers = page.locator("#scene-list .grid-card .scene-number").all_inner_texts()
    assert numbers == ["1", "2", "3", "4", "5", "6"]

    # Timeline: every scene at its length, a gap where no take is chosen.
    page.get_by_role("link", name="Timeline").click()
    page.wait_for_selector(".timeline-strip")
    assert page.locator("[data-running-time]").inner_text() == "0:48"
    gaps = page.locator(".timeline-track .gap")
    assert gaps.count() == 3
    assert gaps.all_inner_texts()[0].startswith("no take")
    widths = page.locator(".timeline-track .shot").evaluate_all(
        "shots => shots.map(s => s.getBoundingClientRect().width)"
    )
    seconds = [Scene.objects.get(pk=pk).duration for pk in _order(episode)]
    assert [round(w / s) for w, s in zip(widths, seconds, strict=True)] == [12] * len(SHOTS)
    _at_both_widths(page, screenshot, "timeline")
    # On a phone the strip scrolls sideways in its own box.
    page.set_viewport_size({"width": 390, "height": 844})
    strip = page.locator(".timeline-strip")
    assert strip.evaluate("(strip) => strip.scrollWidth > strip.clientWidth")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Remembered: the page opens as a timeline again.
    page.goto(f"{base}{episode.get_absolute_url()}")
    assert page.locator(".view-switch [aria-current=page]").inner_text() == "Timeline"
    assert page.locator(".timeline-track .shot").count() == len(SHOTS)
    assert Membership.objects.get(user__username="olga").storyboard_view == "timeline"

    # A move in the list under the strip: the strip follows.
    first, second = _order(episode)[:2]
    page.get_by_role("button", name="Move scene 1 down").click()
    page.wait_for_selector(f'.timeline-track .shot:first-child[data-scene="{second}"]')
    assert _order(episode)[:2] == [second, first]

    # A block leads to its card.
    last = _order(episode)[-1]
    page.locator(f'.timeline-track [data-scene="{last}"] a').click()
    page.wait_for_url(f"**?at={last}#scene-{last}")
    assert page.locator(f"#scene-{last}").evaluate("(card) => card.matches(':target')")
    assert policy_violations(page) == []


def test_the_empty_state_gives_way_to_the_new_scene_form(live_server, page, episode):
    empty = EpisodeFactory(series=episode.series, number=2, title="Empty")
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}{empty.get_absolute_url()}")
    assert page.locator("#scene-list .empty").is_visible()
    page.locator(".page-head").get_by_role("link", name="Add scene").click()
    page.wait_for_selector("#scene-list .editing textarea[name=prompt]")
    assert not page.locator("#scene-list .empty").is_visible()
    # Cancelled, the empty state is back.
    page.locator("#scene-list .editing").get_by_role("link", name="Cancel").click()
    page.wait_for_selector("#scene-list .editing", state="detached")
    assert page.locator("#scene-list .empty").is_visible()
