"""Every studio page that shows takes, at a desktop (1440 x 900) and a phone (390 x 844): the
storyboard in each of its views, the large viewer, takes side by side, the episode preview,
the review board, the dashboard, the character library and the admin's take list. Long
titles and prompts are used on purpose: nothing may run off the side of the window.

A full-page screenshot of each is saved under the test's tmp dir and, when
CASTBOARD_SCREENSHOTS names a directory, there too (to look at, or attach to a review)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.urls import NoReverseMatch, reverse

from jobs.models import JobState
from studio.models import Episode, Membership, Role, Scene, Series, Take, Workspace
from tests.e2e.browser import log_in
from tests.factories import CharacterFactory, TakeFactory, UserFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes, image_bytes

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
SLUG = "harbour"
LONG_SERIES = "The Lighthouse Keepers of the Northern Harbour: A Serial in Twelve Parts"
LONG_EPISODE = "In Which the New Keeper Climbs Two Hundred and Twelve Stairs Before Dawn"
LONG_PROMPT = (
    "@mina climbs the spiral staircase of the old lighthouse at dawn, a storm lantern in her "
    "left hand, rain streaming down the salt-crusted windows, the beam sweeping the harbour "
    "behind her; slow dolly-in, 35 mm, anamorphic flares, muted teal-and-amber-grade, "
    "handheld-feel-without-shake. "
) * 2
SCENES = [
    "Arrival at the harbour in the rain, with the whole village watching from the quay",
    "The two hundred and twelve stairs, climbed by lantern light without a single pause",
    "The lamp room: the great lens turns for the first time in eleven years of darkness",
]


def _studio() -> dict:
    """Olga owns Harbour Films (and is staff, for the admin's list). One episode of three
    scenes with long titles and prompts: the first two have two finished takes each (the
    first chosen), the third none chosen (a gap on the timeline); the second's chosen take
    was rejected."""
    workspace = Workspace.objects.create(name="Harbour Films and Sons Production Co.", slug=SLUG)
    olga = UserFactory(username="olga", is_staff=True)
    Membership.objects.create(workspace=workspace, user=olga, role=Role.OWNER)
    CharacterFactory(
        workspace=workspace,
        handle="mina",
        name="Mina Okafor-Lindqvist, the New Keeper of the Northern Light",
        description=LONG_PROMPT,
    )
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI Videos (studio account)")
    series = Series.objects.create(workspace=workspace, title=LONG_SERIES)
    episode = Episode.objects.create(series=series, number=1, title=LONG_EPISODE)
    scenes, takes = [], []
    for position, title in enumerate(SCENES):
        scene = Scene.objects.create(
            episode=episode,
            position=position,
            title=title,
            prompt=LONG_PROMPT,
            duration=2 + 2 * position,
            size="1280x720",
        )
        scenes.append(scene)
        for colour in [(200, 80, 40), (40, 120, 200)][: 2 if position < 2 else 1]:
            take = TakeFactory(scene=scene, account=account)
            take.job.video.save(
                "video.mp4", ContentFile(clip_bytes(seconds=2.0, size=(320, 180), fps=24))
            )
            take.job.thumbnail.save(
                "thumbnail.jpg", ContentFile(image_bytes("JPEG", size=(320, 180), color=colour))
            )
            takes.append(take)
    TakeFactory(scene=scenes[2], account=account, state=JobState.RUNNING, job__progress=40)
    for take in (takes[0], takes[2]):
        take.is_selected = True
        take.save(update_fields=["is_selected"])
    Take.objects.filter(pk=takes[2].pk).update(
        review_state=Take.Review.REJECTED, review_reason="The lantern flickers out of sync."
    )
    return {"episode": episode, "scenes": scenes, "takes": takes}


def _pages(studio: dict) -> list[tuple[str, str | None, str]]:
    """(name, path or None when the page does not exist yet, why it is missing)."""
    episode, scenes, takes = studio["episode"], studio["scenes"], studio["takes"]

    def url(name: str, *args, query: str = "") -> str | None:
        try:
            return reverse(name, args=[SLUG, *args]) + query
        except NoReverseMatch:
            return None

    compare = "?" + "&".join(f"takes={take.pk}" for take in takes[:2])
    pages = [
        ("dashboard", url("dashboard")),
        ("characters", url("character_list")),
        ("storyboard-list", url("episode_detail", episode.pk, query="?view=list")),
        ("storyboard-grid", url("episode_detail", episode.pk, query="?view=grid")),
        ("storyboard-timeline", url("episode_detail", episode.pk, query="?view=timeline")),
        ("viewer", url("take_viewer", takes[0].pk)),
        ("compare", url("take_compare", scenes[0].pk, query=compare)),
        ("episode-preview", url("episode_preview", episode.pk)),
        ("review-board", url("review_episode", episode.pk, query="?show=all")),
    ]
    admin = reverse("admin:studio_take_changelist")
    return [(name, path, f"{name}: its URL does not resolve yet") for name, path in pages] + [
        ("admin-takes", admin, "")
    ]


def _overflow(page) -> dict:
    """How wide the page is against the window, and the widest elements that stick out."""
    return page.evaluate(
        """() => {
            const width = window.innerWidth;
            const culprits = [...document.querySelectorAll('body *')]
                .filter((el) => el.getBoundingClientRect().right > width + 1)
                .slice(0, 5)
                .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`
                    + ` (right ${Math.round(el.getBoundingClientRect().right)})`);
            return {scrollWidth: document.documentElement.scrollWidth, width, culprits};
        }"""
    )


def _save(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    if wanted := os.environ.get("CASTBOARD_SCREENSHOTS"):
        directory = Path(wanted)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / shot.name).write_bytes(shot.read_bytes())


@pytest.mark.parametrize("size", SIZES)
def test_no_page_runs_off_the_side_of_the_window(live_server, page, tmp_path, size):
    studio = _studio()
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, live_server.url)

    missing, overflowing = [], {}
    for name, path, why in _pages(studio):
        if path is None:
            missing.append(why)
            continue
        response = page.goto(live_server.url + path)
        assert response is not None
        assert response.status == 200, f"{name} ({path}) answered {response.status}"
        page.wait_for_load_state("load")
        page.evaluate("() => document.fonts.ready")
        _save(page, tmp_path, f"{name}-{width}")
        found = _overflow(page)
        if found["scrollWidth"] > found["width"]:
            overflowing[name] = found
    # Close the storyboard's event stream before the database is torn down.
    page.goto("about:blank")

    assert not overflowing, overflowing
    if missing:
        pytest.skip("; ".join(missing))


def test_the_admin_take_list_shows_cost_review_selected_and_created_at_at_1440(
    live_server, page, tmp_path
):
    studio = _studio()
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url)
    videos = []

    def heard(request) -> None:
        if "/video/" in request.url:
            videos.append(request.url)

    page.on("request", heard)

    page.goto(live_server.url + reverse("admin:studio_take_changelist"))
    page.wait_for_selector("#result_list")

    # The list's own box does not scroll sideways, and the last columns are inside it.
    results = page.locator("#changelist .results")
    assert results.evaluate("(box) => box.scrollWidth <= box.clientWidth"), _overflow(page)
    right = results.evaluate("(box) => box.getBoundingClientRect().right")
    for column in ("cost", "review_summary", "selected", "created"):
        header = page.locator(f"#result_list th.column-{column}")
        box = header.bounding_box()
        assert box is not None, column
        assert box["x"] + box["width"] <= right + 1, column
    assert (
        page.locator("#result_list th.column-created").inner_text().strip().lower() == "created at"
    )
    _save(page, tmp_path, "admin-takes-columns-1440")

    # No video loads until one is played; then that one plays.
    assert page.locator("#result_list video").count() == 0
    assert page.locator("#result_list .take-play").count() == len(studio["takes"])
    assert videos == []
    page.locator("#result_list .take-play").first.click()
    player = page.locator("#result_list video.take-player")
    player.wait_for()
    page.wait_for_function(
        "() => document.querySelector('#result_list video.take-player').readyState >= 1"
    )
    assert len(set(videos)) == 1
