"""Rough edges in a real browser: on a 390 px phone the pages fit the screen and the top
navigation folds into a "Menu" whose links work; on a desktop the links sit in the bar;
a provider's radio sits beside its name, disabled or not; and the reference picker shows
a file that is not a picture as a tile, not a broken image.

Chromium (Debian's, driven by Playwright; tests/e2e/conftest.py) against a live server.
"""

from __future__ import annotations

import pytest

from studio.models import Membership, Role, Scene, Workspace
from tests.e2e.browser import log_in
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    UserFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import image_bytes

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
# How far the page can be scrolled sideways, in CSS pixels (0: it fits the screen).
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def studio() -> dict:
    """Otto owns “Gull Point Films and Friends Ltd” (a long name, as names are), with a
    character, a provider account, a series, an episode and a scene: every page has
    something to lay out."""
    workspace = Workspace.objects.create(name="Gull Point Films and Friends Ltd", slug="gull")
    otto = UserFactory(username="otto.the.long.named.owner")
    Membership.objects.create(workspace=workspace, user=otto, role=Role.OWNER)
    CharacterFactory(workspace=workspace, name="Mina Okafor", handle="mina")
    ProviderAccountFactory(workspace=workspace, name="Seedance (emulator)", kind="seedance")
    series = SeriesFactory(workspace=workspace, title="The Lighthouse")
    episode = EpisodeFactory(series=series, number=1, title="The New Keeper")
    SceneFactory(episode=episode, title="Arrival")
    return {"workspace": workspace, "user": otto, "series": series}


def test_on_a_phone_the_pages_fit_and_the_menu_opens_onto_working_links(
    page, live_server, studio, screenshot
):
    page.set_viewport_size(PHONE)
    log_in(page, live_server.url, studio["user"].username)
    slug = studio["workspace"].slug
    pages = {
        "dashboard": f"/w/{slug}/",
        "characters": f"/w/{slug}/characters/",
        "series": f"/w/{slug}/series/",
        "a series": studio["series"].get_absolute_url(),
        "providers": f"/w/{slug}/providers/",
        "provider accounts": f"/w/{slug}/settings/providers/",
    }
    for name, path in pages.items():
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate(OVERFLOW) == 0, f"the {name} page scrolls sideways at 390 px"
        # The links wait behind the menu, which fits in the bar.
        bar = page.locator(".topbar")
        assert bar.get_by_role("link", name="Characters", exact=True).is_hidden()
        assert page.locator(".navmenu > summary").is_visible()
    screenshot("rough-edges-390-series")

    page.goto(f"{live_server.url}/w/{slug}/")
    page.click(".navmenu > summary")
    menu = page.locator(".navmenu")
    for link in ("Dashboard", "Characters", "Series", "Costs", "Members", "Providers"):
        assert menu.get_by_role("link", name=link, exact=True).is_visible()
    assert menu.get_by_role("button", name="Log out").is_visible()
    assert page.evaluate(OVERFLOW) == 0
    screenshot("rough-edges-390-menu-open")

    menu.get_by_role("link", name="Characters", exact=True).click()
    page.wait_for_url(f"**/w/{slug}/characters/")
    assert page.get_by_role("heading", name="Characters", exact=True).is_visible()
    assert page.get_by_text("Mina Okafor").is_visible()


def test_on_a_desktop_the_links_sit_in_the_bar_without_a_menu(
    page, live_server, studio, screenshot
):
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, studio["user"].username)
    page.goto(f"{live_server.url}/w/{studio['workspace'].slug}/")

    assert page.locator(".navmenu > summary").is_hidden()
    bar = page.locator(".topbar")
    for link in ("Dashboard", "Characters", "Series", "Costs", "Providers"):
        assert bar.get_by_role("link", name=link, exact=True).is_visible()
    assert bar.get_by_role("button", name="Log out").is_visible()
    # One row: the links and the account sit level with the brand.
    brand = page.locator(".brand").bounding_box()
    log_out = bar.get_by_role("button", name="Log out").bounding_box()
    assert abs(brand["y"] + brand["height"] / 2 - (log_out["y"] + log_out["height"] / 2)) < 8
    screenshot("rough-edges-1440-dashboard")
    assert page.evaluate(OVERFLOW) == 0

    bar.get_by_role("link", name="Series", exact=True).click()
    page.wait_for_url("**/series/")
    assert page.get_by_text("The Lighthouse").is_visible()


def test_the_reference_picker_shows_a_tile_for_a_file_that_is_not_a_picture(
    page, live_server, studio
):
    page.set_viewport_size(PHONE)
    log_in(page, live_server.url, studio["user"].username)
    page.goto(f"{live_server.url}/w/{studio['workspace'].slug}/characters/new/")

    page.set_input_files(
        "#id_references",
        [
            {"name": "front.png", "mimeType": "image/png", "buffer": image_bytes("PNG")},
            {"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 notes"},
            # Says it is a picture, but is not one: the browser cannot draw it.
            {"name": "side.png", "mimeType": "image/png", "buffer": b"not a picture at all"},
        ],
    )

    files = page.locator(".dropzone-file")
    assert files.count() == 3
    assert files.nth(0).locator("img.dropzone-preview").count() == 1
    page.wait_for_function("document.querySelectorAll('.dropzone-file .file-tile').length === 2")
    pdf, broken = files.nth(1), files.nth(2)
    assert pdf.locator("img").count() == 0
    assert pdf.locator(".file-tile").inner_text().strip().endswith("PDF")
    assert pdf.locator(".dropzone-name").inner_text() == "notes.pdf"
    assert broken.locator("img").count() == 0
    assert broken.locator(".file-tile").inner_text().strip().endswith("PNG")
    # The first picture loaded and was drawn.
    assert (
        page.evaluate("document.querySelector('.dropzone-file img.dropzone-preview').naturalWidth")
        > 0
    )
    assert page.evaluate(OVERFLOW) == 0


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_each_providers_radio_sits_on_the_line_of_its_name_disabled_or_not(
    page, live_server, studio, viewport, screenshot
):
    """OpenAI makes the scene; the Sora relay cannot make an 8 s video: its radio is
    disabled, still beside its name, with the reason after it."""
    workspace = studio["workspace"]
    ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    relay = ProviderAccountFactory(
        workspace=workspace, name="Sora relay at the harbour", kind="sora_relay", model=""
    )
    scene = Scene.objects.get(title="Arrival")
    page.set_viewport_size(viewport)
    log_in(page, live_server.url, studio["user"].username)
    page.goto(f"{live_server.url}{scene.get_absolute_url()}")

    assert_radios_beside_their_names(page.locator(".generate .provider-option"))
    disabled = page.locator(f"input[type=radio][value='{relay.pk}']")
    assert disabled.is_disabled()
    assert "asks for 8" in page.locator(f"#why-not-{relay.pk}").inner_text()
    assert page.evaluate(OVERFLOW) == 0
    screenshot(f"rough-edges-{viewport['width']}-provider-options")

    # Generating every scene: the relay's plan is disabled, its reason listed under it.
    page.goto(f"{live_server.url}/w/{workspace.slug}/episodes/{scene.episode_id}/generate/")
    assert_radios_beside_their_names(page.locator(".plans .provider-option"))
    assert page.locator(f"input[type=radio][value='{relay.pk}']").is_disabled()
    assert page.evaluate(OVERFLOW) == 0


def assert_radios_beside_their_names(options) -> None:
    """Each option's radio is left of its name (its first <strong>) and level with it."""
    assert options.count() >= 2
    for index in range(options.count()):
        option = options.nth(index)
        radio = option.locator("input[type=radio]").bounding_box()
        name = option.locator("strong").first.bounding_box()
        middle = radio["y"] + radio["height"] / 2
        assert name["y"] - 4 <= middle <= name["y"] + name["height"] + 4
        assert radio["x"] + radio["width"] <= name["x"]
