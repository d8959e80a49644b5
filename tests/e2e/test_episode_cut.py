"""In a real browser: an episode whose two takes were made at the OpenAI emulator (silent, so
Mina's line is spoken at the ElevenLabs emulator) is assembled with one click; the page shows
its progress, then the player; the video plays as long as its takes and cards, shows Mina's
subtitle as a cue, and a scene's button seeks to its chapter."""

from __future__ import annotations

import pytest

from studio import generation, services
from studio.dialogue import scene_dialogue_set
from studio.models import Cut, Membership, Role
from tests.e2e.browser import log_in, policy_violations, watch_policy
from tests.factories import UserFactory
from tests.jobs.factories import studio_scene
from tests.support.cuts import elevenlabs_account, give_voice

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

CARD = 2.0  # seconds of the title card and of the end card
FRAME = 1 / 24


@pytest.fixture
def speech(studio):
    with elevenlabs_account(studio["workspace"]) as account:
        yield account


def _selected_take(scene, account, wait_for_job):
    take = generation.take_create(scene=scene, account=account)
    job = wait_for_job(take.job, timeout=60)
    assert job.state == "succeeded", job.error_message
    return services.take_select(take=take)


def test_an_editor_assembles_an_episode_with_one_click_and_plays_it(
    studio, speech, settings, live_server, page, screenshot, wait_for_job
):
    settings.JOBS_SUCCEEDED_TASKS = ("studio.tasks.cut_speech_finished",)
    workspace, episode, openai = (
        studio["workspace"],
        studio["episode"],
        studio["accounts"]["openai"],
    )
    user = UserFactory(username="ana")
    Membership.objects.create(workspace=workspace, user=user, role=Role.EDITOR)
    give_voice(studio["mina"], speech)
    dawn = studio_scene(studio, "@mina on the quay at dawn.", title="Dawn")
    sea = studio_scene(studio, "The lamp turns over a grey sea.", title="The sea")
    scene_dialogue_set(scene=dawn, text="[0.5] @mina: We launch at dawn.")
    scene_dialogue_set(scene=sea, text="[0.5] : The sea keeps its counsel.")
    takes = [_selected_take(scene, openai, wait_for_job) for scene in (dawn, sea)]
    lengths = [take.job.result["duration"] for take in takes]

    watch_policy(page)
    log_in(page, live_server.url, "ana")
    page.goto(live_server.url + episode.get_absolute_url())
    page.click("#cut-panel a:has-text('Assemble the episode')")
    assert "We launch at dawn." in page.inner_text("#lines-to-dub")
    assert "The sea keeps its counsel." in page.inner_text("#lines-without-voice")
    screenshot("cut-preflight")
    page.click("#assemble button.primary")

    # The cut's page: its progress until the worker is done, then the player.
    page.wait_for_selector("#cut-progress progress")
    screenshot("cut-in-progress")
    page.wait_for_selector("#cut-video", timeout=120_000)
    page.wait_for_function(
        "() => document.getElementById('cut-video').readyState >= 1", timeout=20_000
    )
    duration = page.evaluate("document.getElementById('cut-video').duration")
    assert duration == pytest.approx(CARD + sum(lengths) + CARD, abs=2 * FRAME)

    # The subtitles are shown (the default track), and Mina's line is a cue while it is said.
    assert page.evaluate("document.getElementById('cut-video').textTracks[0].mode") == "showing"
    page.evaluate("document.getElementById('cut-video').muted = true")
    page.click("button.chapter-seek:has-text('1. Dawn')")
    cue = page.wait_for_function(
        """() => {
          const cues = document.getElementById('cut-video').textTracks[0].activeCues;
          return cues && cues.length ? cues[0].getCueAsHTML().textContent : null;
        }""",
        timeout=20_000,
    ).json_value()
    assert cue == "We launch at dawn."
    screenshot("cut-playing")

    # A scene's button seeks the player to the scene's chapter and marks it.
    page.click("button.chapter-seek:has-text('2. The sea')")
    page.wait_for_function(
        "(start) => document.getElementById('cut-video').currentTime >= start - 0.05",
        arg=CARD + lengths[0],
    )
    assert page.get_attribute("[data-chapter]:nth-child(2)", "aria-current") == "true"

    cut = Cut.objects.get(episode=episode)
    assert cut.state == Cut.State.DONE
    assert "Mina" in page.inner_text("#speech-charges")
    assert policy_violations(page) == []

    # The episode page says which cut is current.
    page.goto(live_server.url + episode.get_absolute_url())
    panel = " ".join(page.inner_text("#cut-panel").split())
    assert f"Cut 1 · Done · {cut.duration:.1f} s" in panel
    screenshot("episode-cut-panel")
