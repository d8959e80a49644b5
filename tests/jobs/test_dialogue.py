"""A video's dialogue goes in the prompt of a provider that speaks as it films (Kling, Veo,
Gemini: Capabilities.audio), each speaker named the provider's way; a silent provider gets
the prompt without it (the studio dubs those lines with speech jobs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs import engine
from jobs.dialogue import prompt_template
from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.google import GeminiEmulator
from jobs.models import Job, ProviderAccount
from jobs.services import account_save
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import image_bytes
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY

MINA = engine.CastMember(subject="character:1", name="Mina", handle="mina")
LINES = (
    engine.Line(subject="character:1", text="We sail at dawn.", start=1.5),
    engine.Line(subject="", text='The "Gull" is late.'),
)


def _scene(*, cast=(MINA,), dialogue=LINES) -> engine.JobRequest:
    return engine.JobRequest(
        kind=engine.GENERATE,
        prompt="{{character:1}} looks out to sea." if cast else "The sea at dusk.",
        seconds=4,
        size="1280x720",
        cast=cast,
        dialogue=dialogue,
    )


def test_a_speaking_provider_gets_one_line_per_spoken_line_after_the_prompt():
    assert prompt_template(_scene(), speaks=True) == (
        "{{character:1}} looks out to sea.\n\n"
        "Dialogue:\n"
        '{{character:1}} says: "We sail at dawn." (at 1.5 s)\n'
        "A voice off screen says: \"The 'Gull' is late.\""
    )


def test_a_silent_provider_or_a_scene_without_lines_gets_the_prompt_alone():
    assert prompt_template(_scene(), speaks=False) == "{{character:1}} looks out to sea."
    assert prompt_template(_scene(dialogue=()), speaks=True) == "{{character:1}} looks out to sea."


@pytest.mark.django_db
def test_the_prompt_to_send_shows_the_dialogue_only_where_it_will_go(workspace):
    gemini = ProviderAccountFactory(workspace=workspace, kind="gemini", model="")
    openai = ProviderAccountFactory(workspace=workspace, kind="openai")
    request = engine.FittedRequest(_scene()).to_dict()

    spoken = Job(workspace=workspace, provider_account=gemini, request=request)
    silent = Job(workspace=workspace, provider_account=openai, request=request)

    assert spoken.prompt_to_send.endswith(
        '@mina says: "We sail at dawn." (at 1.5 s)\n'
        "A voice off screen says: \"The 'Gull' is late.\""
    )
    assert silent.prompt_to_send == "@mina looks out to sea."


@pytest.fixture
def gemini_emulator() -> Iterator[RunningEmulator]:
    running = serve(GeminiEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_dialogue_reaches_a_speaking_providers_prompt_in_its_own_names(
    studio, gemini_emulator, wait_for_job
):
    account = account_save(
        account=ProviderAccount(
            workspace=studio["workspace"],
            name="Gemini",
            kind="gemini",
            base_url=gemini_emulator.api_url,
        ),
        api_key="AIza-test-1234",
    )
    picture = default_storage.save("cast/mina.png", ContentFile(image_bytes(size=(64, 64))))
    mina = engine.CastMember(
        subject="character:1",
        name="Mina",
        handle="mina",
        images=(engine.Asset(file=picture, kind=engine.IMAGE, content_type="image/png"),),
    )
    quote = engine.quote(_scene(cast=(mina,)), account)
    job = wait_for_job(engine.start(quote, policy="manual", reason="By hand."))

    assert job.state == "succeeded", job.error_message
    scene, dialogue = job.sent.prompt.split("\n\nDialogue:\n")
    mina_there = scene.removesuffix(" looks out to sea.")
    assert mina_there.startswith("Mina (")  # as Gemini names her picture's block
    assert dialogue.splitlines() == [
        f'{mina_there} says: "We sail at dawn." (at 1.5 s)',
        "A voice off screen says: \"The 'Gull' is late.\"",
    ]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_silent_provider_gets_the_scene_without_its_dialogue(studio, wait_for_job):
    quote = engine.quote(_scene(cast=(), dialogue=LINES[1:]), studio["accounts"]["openai"])

    job = wait_for_job(engine.start(quote, policy="manual", reason="By hand."))

    assert job.state == "succeeded", job.error_message
    assert job.sent_payload["prompt"] == "The sea at dusk."
    assert job.prompt_to_send == "The sea at dusk."
