"""A long storyboard in a real browser: its cards arrive a slice at a time as the list is
scrolled, a card of a later slice is edited in place with an @-suggestion, and a card
dragged across a slice boundary keeps its new place after a reload."""

from __future__ import annotations

import pytest

from studio.models import Episode, Membership, Role, Scene, Series, Workspace
from tests.e2e.browser import drag, log_in
from tests.factories import CharacterFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SCENES = 120
SLICE = 20


@pytest.fixture
def episode(settings):
    settings.STORYBOARD_SLICE = SLICE
    workspace = Workspace.objects.create(name="Harbour Films", slug="harbour")
    owner = UserFactory(username="olga")
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    CharacterFactory(workspace=workspace, handle="keeper", name="The Keeper")
    series = Series.objects.create(workspace=workspace, title="Harbour Lights")
    episode = Episode.objects.create(series=series, number=1, title="Pilot")
    Scene.objects.bulk_create(
        Scene(
            episode=episode,
            position=i,
            title=f"Shot {i + 1}",
            prompt=f"Gulls over the pier, shot {i + 1}.",
            duration=8,
            size="1280x720",
        )
        for i in range(SCENES)
    )
    return episode


def _scroll_to_the_end(page) -> None:
    """Scroll the last loader into view until there is none: each brings the next slice."""
    for loaded in range(SLICE, SCENES + SLICE, SLICE):
        page.wait_for_selector(f'.scene-card[data-position="{min(loaded, SCENES) - 1}"]')
        later = page.locator("[data-later]")
        if not later.count():
            return
        later.scroll_into_view_if_needed()
    raise AssertionError("The loaders did not bring every scene")


def _centre(page, card) -> None:
    """Scroll `card` to the middle of the window at once (no smooth scrolling, so that what
    is measured next is where the card stays) and wait until nothing moves."""
    card.evaluate("card => card.scrollIntoView({block: 'center', behavior: 'instant'})")
    page.wait_for_function(
        """(card) => new Promise((resolve) => {
            const top = card.getBoundingClientRect().top;
            requestAnimationFrame(() => requestAnimationFrame(
                () => resolve(card.getBoundingClientRect().top === top)));
        })""",
        arg=card.element_handle(),
    )


def _order(episode) -> list[int]:
    scenes = Scene.objects.filter(episode=episode).order_by("position")
    return list(scenes.values_list("pk", flat=True))


def test_a_long_storyboard_loads_as_it_is_scrolled_and_stays_editable(live_server, page, episode):
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}{episode.get_absolute_url()}")
    cards = page.locator("#scene-list .scene-card")
    assert cards.count() == SLICE
    assert page.locator("[data-later]").count() == 1

    # Scrolling loads every slice, once and in order.
    _scroll_to_the_end(page)
    assert cards.count() == SCENES
    positions = cards.evaluate_all("cards => cards.map(c => Number(c.dataset.position))")
    assert positions == list(range(SCENES))

    # A card loaded late is edited in place, with an @-suggestion.
    late = Scene.objects.get(episode=episode, position=110)
    card = page.locator(f"#scene-{late.pk}")
    card.scroll_into_view_if_needed()
    card.locator("a:has-text('Edit')").first.click()
    prompt = page.locator(f"#scene-{late.pk}.editing textarea[name=prompt]")
    prompt.click()
    prompt.press("End")
    prompt.type(" With @kee")
    option = page.locator(f"#scene-{late.pk} .mention-box [data-handle='keeper']")
    option.wait_for()
    prompt.press("Enter")
    assert prompt.input_value().endswith("With @keeper ")
    page.locator(f"#scene-{late.pk} button:has-text('Save scene')").click()
    page.wait_for_selector(f"#scene-{late.pk}:not(.editing) a.chip.mention")
    late.refresh_from_db()
    assert late.prompt.endswith("With @keeper")

    # A card of a later slice dragged above the slice boundary before it.
    order = _order(episode)
    moving, target = order[61], order[59]
    _centre(page, page.locator(f"#scene-{order[60]}"))
    drag(page, page.locator(f"#scene-{moving} .drag-handle"), page.locator(f"#scene-{target}"))
    page.wait_for_selector(f'#scene-{moving}[data-position="59"]')
    assert page.locator(f"#scene-{moving} .scene-number").inner_text() == "60"
    assert page.locator(f"#scene-{target} .scene-number").inner_text() == "61"
    assert _order(episode) == [*order[:59], moving, *order[59:61], *order[62:]]
    # The cards before it stayed; those from its new place on came again, each once.
    positions = cards.evaluate_all("cards => cards.map(c => Number(c.dataset.position))")
    assert positions == list(range(59 + SLICE))

    # The new order after a reload, on the slice that holds the card.
    page.goto(f"{base}{episode.get_absolute_url()}?at={moving}#scene-{moving}")
    numbers = page.locator("#scene-list .scene-card .scene-number")
    assert page.locator(f'#scene-{moving}[data-position="59"]').count() == 1
    assert numbers.first.inner_text() == "41"
    page.locator("[data-earlier] a").click()
    page.wait_for_selector('.scene-card[data-position="20"]')
    assert cards.first.get_attribute("data-position") == "20"
