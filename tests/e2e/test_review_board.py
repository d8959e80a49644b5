"""The review board in a real browser: a reviewer works through an episode's three takes by
keyboard alone (approve, step between takes, reject with reasons, step frames, approve),
and the database holds the three decisions; the board fits a desktop and a phone."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters.services import asset_add, character_version_latest
from studio.models import Membership, Role, Take, TakeScore, Workspace
from tests.e2e.browser import fits, log_in, policy_violations, watch_policy
from tests.factories import (
    CharacterFactory,
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


def _episode_with_three_takes() -> dict:
    """Rita reviews in Gull Point Films; Mina (one picture) is in each of three scenes, and
    each scene has one finished take with a real 2 s video (24 fps) and a thumbnail."""
    workspace = Workspace.objects.create(name="Gull Point Films", slug="gull")
    rita = UserFactory(username="rita")
    Membership.objects.create(workspace=workspace, user=rita, role=Role.REVIEWER)
    mina = CharacterFactory(workspace=workspace, name="Mina Okafor", handle="mina")
    asset_add(
        character=mina,
        upload=SimpleUploadedFile("mina.png", image_bytes(size=(320, 320)), "image/png"),
        label="front",
    )
    version = character_version_latest(mina)
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI")
    series = SeriesFactory(workspace=workspace, title="The Lighthouse")
    episode = EpisodeFactory(series=series, number=1, title="The New Keeper")
    takes = []
    for title, colour in (
        ("Arrival", (200, 80, 40)),
        ("The stairs", (40, 120, 200)),
        ("The lamp", (240, 200, 60)),
    ):
        scene = SceneFactory(
            episode=episode, title=title, prompt=f"@mina in “{title}”, at dusk.", duration=2
        )
        take = TakeFactory(scene=scene, account=account)
        take.job.video.save(
            "video.mp4", ContentFile(clip_bytes(seconds=2.0, size=(320, 180), fps=FPS))
        )
        take.job.thumbnail.save(
            "thumbnail.jpg", ContentFile(image_bytes("JPEG", size=(320, 180), color=colour))
        )
        take.character_versions.add(version)
        takes.append(take)
    # The automatic check flagged the second take's face.
    TakeScore.objects.create(
        take=takes[1],
        state=TakeScore.State.SCORED,
        face=41.0,
        clothing=77.0,
        style=82.0,
        persistence=0.8,
        threshold=60,
        flagged=True,
        flag_reasons=[{"axis": "face", "score": 41.0, "character": "Mina Okafor"}],
    )
    return {"workspace": workspace, "rita": rita, "episode": episode, "takes": takes}


def _wait_for_take(page, take: Take | None) -> None:
    """Wait until the board shows `take` in its player (None: nothing left to show)."""
    page.wait_for_function(
        "(expected) => { const board = document.querySelector('#review-board');"
        " return Boolean(board) && (board.dataset.take || null) === expected"
        # htmx has settled the swap: until then it may put back the attributes (the
        # classes) the elements were sent with, over what a key just changed.
        " && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling'); }",
        arg=None if take is None else str(take.pk),
    )


def _video_ready(page) -> None:
    page.wait_for_function(
        "() => { const video = document.getElementById('review-video');"
        " return Boolean(video) && video.readyState >= 1; }"
    )


def _frame(page) -> float:
    return page.evaluate("() => document.getElementById('review-video').currentTime")


def test_a_reviewer_works_through_an_episodes_takes_by_keyboard_alone(
    live_server, page, screenshot
):
    studio = _episode_with_three_takes()
    first, second, third = studio["takes"]
    base = live_server.url
    board_url = base + reverse("review_episode", args=["gull", studio["episode"].pk])
    watch_policy(page)
    page.set_viewport_size({"width": 1440, "height": 1000})

    log_in(page, base, "rita")
    page.goto(board_url)
    _wait_for_take(page, first)
    assert page.locator(".review-tile").count() == 3
    assert page.locator(".review-refs img").count() == 1  # Mina's picture, v1
    assert "v1" in page.locator(".review-refs").inner_text()
    assert "Face 41 (Mina Okafor): below 60" in page.locator(f"#tile-{second.pk}").inner_text()

    # ? shows the keys, Escape hides them.
    page.keyboard.press("?")
    assert page.locator("#review-keys").evaluate("(keys) => keys.open")
    page.keyboard.press("Escape")
    assert not page.locator("#review-keys").evaluate("(keys) => keys.open")

    # a: approve the first; the board moves on to the next take awaiting review.
    page.keyboard.press("a")
    _wait_for_take(page, second)
    assert f"Take {first.pk} approved." in page.locator("#messages").inner_text()

    # j, k: step to the third take and back.
    page.keyboard.press("j")
    _wait_for_take(page, third)
    page.keyboard.press("k")
    _wait_for_take(page, second)
    assert "Flagged: Face 41 (Mina Okafor): below 60" in page.locator(".review-stage").inner_text()

    # r: reject, with reasons 1 (face) and 2 (clothing), then Enter.
    page.keyboard.press("r")
    assert page.evaluate("() => document.activeElement.dataset.key") == "1"
    page.keyboard.press("1")
    page.keyboard.press("2")
    ticked = page.locator("[data-review-form] input[name=codes]:checked")
    assert [box.get_attribute("value") for box in ticked.all()] == ["face", "clothing"]
    page.keyboard.press("Enter")
    _wait_for_take(page, third)
    assert f"Take {second.pk} rejected: Face, Clothing." in page.locator("#messages").inner_text()

    # Frames: . . . forward three, , back one (1/24 s each); Space plays and pauses.
    _video_ready(page)
    for key in (".", ".", ".", ","):
        page.keyboard.press(key)
    assert _frame(page) == pytest.approx(2.5 / FPS, abs=1e-3)
    page.wait_for_function(
        "() => document.querySelector('[data-readout]').value.endsWith('frame 3')"
    )
    page.keyboard.press(" ")
    page.wait_for_function("() => !document.getElementById('review-video').paused")
    page.keyboard.press(" ")
    page.wait_for_function("() => document.getElementById('review-video').paused")

    # a: approve the third; nothing is left awaiting review.
    page.keyboard.press("a")
    _wait_for_take(page, None)
    assert "Nothing awaiting review here." in page.locator(".review-stage").inner_text()

    decisions = {
        take.pk: (take.review_state, take.review_codes, take.reviewed_by.username)
        for take in Take.objects.filter(pk__in=[first.pk, second.pk, third.pk]).select_related(
            "reviewed_by"
        )
    }
    assert decisions == {
        first.pk: (Take.Review.APPROVED, [], "rita"),
        second.pk: (Take.Review.REJECTED, ["face", "clothing"], "rita"),
        third.pk: (Take.Review.APPROVED, [], "rita"),
    }

    # The whole board at 1440 px and at 390 px: nothing runs off the side.
    page.goto(f"{board_url}?show=all&take={second.pk}")
    _wait_for_take(page, second)
    _video_ready(page)
    assert fits(page)
    screenshot("review-board")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    _wait_for_take(page, second)
    assert fits(page), page.evaluate("() => document.documentElement.scrollWidth")
    screenshot("review-board-phone")
    assert policy_violations(page) == []
