"""Takes at a provider that keeps no characters (Seedance): what the take page says was sent,
and what "make a character from this take" does there.

A real worker on a real Redis and the Seedance emulator over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse

from characters.models import Character, ReferenceAsset
from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.seedance import SeedanceEmulator
from jobs.models import JobKind, ProviderAccount
from jobs.services import account_save
from studio.generation import take_create
from studio.models import Role
from tests.factories import MembershipFactory, SceneFactory
from tests.jobs.factories import build_studio
from tests.support.emulators import emulator_control, emulator_log
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def seedance_emulator() -> Iterator[RunningEmulator]:
    running = serve(SeedanceEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()


@pytest.fixture
def ark(live_server, settings, fast_engine, celery_worker, seedance_emulator, openai_emulator):
    """A studio with a Seedance account (and an OpenAI one), a worker, an editor's client."""
    settings.PUBLIC_BASE_URL = live_server.url
    built = build_studio(openai_url=openai_emulator.api_url)
    account = account_save(
        account=ProviderAccount(
            workspace=built["workspace"],
            name="Seedance",
            kind="seedance",
            base_url=seedance_emulator.api_url,
        ),
        api_key="ark-test-1234",
    )
    return {**built, "seedance": account}


@pytest.fixture
def editor_client(client, ark):
    client.force_login(MembershipFactory(workspace=ark["workspace"], role=Role.EDITOR).user)
    return client


def _take_page(client, ark, take) -> str:
    url = reverse("scene_detail", args=[ark["workspace"].slug, take.scene_id])
    page = client.get(url).content.decode()
    start = page.index(f'id="take-{take.pk}"')
    return page[start : page.index("</details>", page.index("sent-request", start))]


def test_the_take_page_shows_the_prompt_seedance_was_really_sent(ark, editor_client, wait_for_job):
    scene = SceneFactory(
        episode=ark["episode"], prompt="@mina looks out to sea.", duration=5, size="1280x720"
    )
    take = take_create(scene=scene, account=ark["seedance"])
    job = wait_for_job(take.job)
    assert job.state == "succeeded", job.error_message

    card = _take_page(editor_client, ark, take)

    assert "Prompt as sent to ByteDance Seedance 2.0" in card
    # Seedance read the character by its reference, not our placeholder.
    assert "Mina (video 1) looks out to sea." in card
    assert "{{character:" not in card
    assert "video 1 (reference_video): http" in card  # the clip it was sent, by its name
    assert "resolution: 720p" in card


def test_a_take_not_sent_yet_shows_the_prompt_it_will_send_with_handles(ark, editor_client):
    scene = SceneFactory(episode=ark["episode"], prompt="@mina waits.", duration=5)
    take = take_create(scene=scene, account=ark["seedance"])
    take.job.refresh_from_db()
    take.job.sent_payload = None  # as it is until the create goes out

    assert take.job.sent is None
    assert take.job.prompt.startswith("@mina waits.")


def test_a_character_from_a_seedance_take_keeps_the_span_as_clip_and_stills(
    ark, editor_client, wait_for_job
):
    scene = SceneFactory(episode=ark["episode"], prompt="A keeper on the stairs.", duration=5)
    take = take_create(scene=scene, account=ark["seedance"])
    assert wait_for_job(take.job).state == "succeeded"

    response = editor_client.post(
        reverse("take_character", args=[ark["workspace"].slug, take.pk]),
        {"start": "0.5", "end": "3.0", "name": "The keeper", "handle": "keeper"},
        follow=True,
    )

    assert response.status_code == 200
    keeper = Character.objects.get(workspace=ark["workspace"], handle="keeper")
    kinds = sorted(keeper.assets.values_list("kind", flat=True))
    assert kinds == [ReferenceAsset.Kind.CLIP, *[ReferenceAsset.Kind.IMAGE] * 3]
    # Seedance keeps no characters: nothing is registered there, so nothing can fail.
    assert not take.job.workspace.jobs.filter(kind=JobKind.REGISTER_CHARACTER).exists()
    said = " ".join(str(m) for m in response.context["messages"])
    assert "a new 2.5 s clip and 3 stills from take" in said
    assert "At Seedance it travels with each take as 3 reference images and a clip" in said
    assert "At OpenAI it is registered from its clip the first time a take there needs it" in said
    assert "learning it now" not in said

    # The next scene at Seedance sends the stills and the clip as the character's references.
    later = take_create(
        scene=SceneFactory(episode=ark["episode"], prompt="@keeper climbs.", duration=5),
        account=ark["seedance"],
    )
    job = wait_for_job(later.job)
    assert job.state == "succeeded", job.error_message
    roles = [item.get("role") for item in job.sent_payload["content"] if item["type"] != "text"]
    assert roles.count("reference_image") == 3
    assert roles.count("reference_video") == 1


def test_cancelling_a_queued_take_stops_it_at_seedance_and_charges_nothing(
    ark, editor_client, wait_for_job, seedance_emulator
):
    emulator_control(seedance_emulator, "config", {"latency_seconds": 30})
    scene = SceneFactory(episode=ark["episode"], prompt="A quiet harbour.", duration=5)
    take = take_create(scene=scene, account=ark["seedance"])
    job = wait_for_job(take.job, states=("queued",))
    url = reverse("take_cancel", args=[ark["workspace"].slug, take.pk])
    page = editor_client.post(url, follow=True).content.decode()
    assert f"Take {take.pk} was cancelled; nothing more is charged for it." in page
    job.refresh_from_db()
    assert (job.state, job.error_message) == ("cancelled", "Cancelled before it finished.")
    assert emulator_log(seedance_emulator, "delete")
    assert job.ledger_entries.get(kind="charge").amount == 0
