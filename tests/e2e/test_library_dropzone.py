"""In a real browser: choose and drop several references, remove one, and create the character.

Chromium (Debian's, driven by Playwright; tests/e2e/conftest.py) runs static/js/library.js
against a live server.
"""

from __future__ import annotations

import base64

import pytest

from characters.models import Character
from studio.models import Membership, Role
from tests.e2e.browser import log_in
from tests.factories import UserFactory
from tests.samples import image_bytes

pytestmark = pytest.mark.django_db(transaction=True)

RED = image_bytes("PNG", size=(64, 48), color=(200, 40, 40))
BLUE = image_bytes("PNG", size=(64, 48), color=(20, 40, 220))
GREEN = image_bytes("PNG", size=(48, 64), color=(20, 160, 60))


def log_in_as_an_editor(page, live_server, workspace) -> None:
    user = UserFactory(username="ana")
    Membership.objects.create(workspace=workspace, user=user, role=Role.EDITOR)
    log_in(page, live_server.url, "ana")


def drop(page, name: str, content: bytes) -> None:
    """Drop a file on the drop zone the way a browser does: a drop event carrying it."""
    page.evaluate(
        """([name, encoded]) => {
            const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            const zone = document.querySelector(".dropzone");
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true }));
            }
        }""",
        [name, base64.b64encode(content).decode()],
    )


def listed(page) -> list[str]:
    return page.locator(".dropzone-file .dropzone-name").all_inner_texts()


def png(name: str, content: bytes) -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": content}


def test_a_user_adds_references_by_picking_and_dropping_and_removes_one(
    page, live_server, workspace
):
    log_in_as_an_editor(page, live_server, workspace)
    page.goto(f"{live_server.url}/w/{workspace.slug}/characters/new/")

    page.set_input_files("#id_references", [png("front.png", RED)])
    page.set_input_files("#id_references", [png("side.png", BLUE)])  # adds, not replaces
    drop(page, "dropped.png", GREEN)

    assert listed(page) == ["front.png", "side.png", "dropped.png"]
    assert page.locator(".dropzone-file img[src^='blob:']").count() == 3
    assert f"{len(RED)} bytes" in page.locator(".dropzone-file").first.inner_text()
    page.click("button[aria-label='Remove side.png']")
    assert listed(page) == ["front.png", "dropped.png"]
    assert page.evaluate("document.querySelector('#id_references').files.length") == 2

    page.fill("#id_name", "Mina")
    page.fill("#id_handle", "mina")
    page.click("button:has-text('Save character')")
    page.wait_for_selector("text=Mina joined the library as @mina.")

    character = Character.objects.get(workspace=workspace, handle="mina")
    assets = {asset.original_name: asset for asset in character.assets.all()}
    assert set(assets) == {"front.png", "dropped.png"}
    assert (assets["dropped.png"].width, assets["dropped.png"].height) == (48, 64)


def test_it_leaves_out_files_beyond_the_most_one_request_may_carry(
    page, live_server, workspace, settings
):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    log_in_as_an_editor(page, live_server, workspace)
    page.goto(f"{live_server.url}/w/{workspace.slug}/characters/new/")

    page.set_input_files(
        "#id_references", [png("a.png", RED), png("b.png", BLUE), png("c.png", GREEN)]
    )

    assert listed(page) == ["a.png", "b.png"]
    assert page.inner_text(".dropzone-note") == "At most 2 files at once: 1 left out."
