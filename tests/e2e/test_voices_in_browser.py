"""A character's voice and a scene's dialogue in a real browser (htmx under the page's
Content-Security-Policy): the account's voices load by themselves, one is picked and saved;
the dialogue typed in a storyboard card shows on the card with the speaker's name."""

from __future__ import annotations

import pytest

from characters.models import CharacterVersion
from jobs.models import ProviderAccount
from jobs.services import account_save
from studio.models import Membership, Role
from tests.e2e.browser import log_in
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def editor_page(page, live_server):
    workspace = WorkspaceFactory()
    user = UserFactory()
    Membership.objects.create(workspace=workspace, user=user, role=Role.EDITOR)
    log_in(page, live_server.url, user.username)
    return page, workspace


def test_picking_a_voice_from_the_list_htmx_loads(
    editor_page, live_server, elevenlabs_emulator, screenshot
):
    page, workspace = editor_page
    mina = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    CharacterVersion.objects.create(character=mina, number=1, change="Created.")
    account_save(
        account=ProviderAccount(
            workspace=workspace,
            name="ElevenLabs",
            kind="elevenlabs",
            base_url=elevenlabs_emulator.api_url,
        ),
        api_key="xi-test-1234",
    )
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}{mina.get_absolute_url()}")
    page.select_option("#voice-id", label="Adam (premade)")  # waits for the list to load
    page.get_by_role("button", name="Save voice").click()
    page.wait_for_selector("text=Mina speaks in Adam at ElevenLabs.")
    assert page.locator("#version-1 .voice").inner_text() == "Voice: Adam at ElevenLabs"
    screenshot("character-voice")
    assert errors == []


def test_dialogue_typed_in_a_card_shows_on_the_card(editor_page, live_server, screenshot):
    page, workspace = editor_page
    CharacterFactory(workspace=workspace, handle="mina", name="Mina Okafor")
    episode = EpisodeFactory(series=SeriesFactory(workspace=workspace))
    scene = SceneFactory(episode=episode, prompt="Gulls over the pier.", duration=8)
    page.goto(f"{live_server.url}{episode.get_absolute_url()}")
    page.locator(f"#scene-{scene.pk} .scene-actions").get_by_text("Edit").click()
    dialogue = page.locator(f"#scene-{scene.pk} textarea[name=dialogue]")
    dialogue.fill("[1.5] @mina: We launch at dawn.\n[20] @minna: Late.")
    page.locator(f"#scene-{scene.pk}").get_by_role("button", name="Save scene").click()
    page.wait_for_selector("text=Line 2: 20 s is past the scene's end (8 s).")
    assert "@minna" in dialogue.input_value()
    dialogue.fill("[1.5] @mina: We launch at dawn.")
    page.locator(f"#scene-{scene.pk}").get_by_role("button", name="Save scene").click()
    card = page.locator(f"#scene-{scene.pk} ol.dialogue")
    card.wait_for()
    assert " ".join(card.inner_text().split()) == "1.5 s Mina Okafor We launch at dawn."
    screenshot("storyboard-dialogue")
