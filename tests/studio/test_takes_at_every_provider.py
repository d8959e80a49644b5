"""One character, one scene, made at every provider the demo serves.

A real worker on a real Redis and each provider's emulator over real HTTP, as `make run`
has them (jobs.emulators.catalog). Where the provider keeps characters (Kling's elements,
OpenAI, the relay) the character is registered there once and the take names it by the
provider's id; elsewhere it travels with the take as reference pictures. Either way the
take is made, stored, priced, and says what it sent.
"""

from __future__ import annotations

import itertools

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters.services import asset_add
from jobs.emulators.base import serve
from jobs.emulators.catalog import EMULATORS
from jobs.models import ProviderAccount, Registration
from jobs.providers import ADAPTERS
from jobs.providers.base import GenerationRequest, Reference
from jobs.services import account_save
from studio.generation import take_create
from studio.models import Role
from tests.factories import MembershipFactory, SceneFactory
from tests.jobs.factories import build_studio
from tests.samples import image_bytes
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# The providers that make videos (a speech provider, ElevenLabs, dubs lines instead).
ROWS = {row.kind: row for row in EMULATORS if ADAPTERS[row.kind].capabilities.output == "video"}


def _scene_shape(kind: str, model: str) -> tuple[int, str]:
    """The first length (5 s or more first) and size the provider makes for the scene: with a
    reference picture where the character travels as one (Veo's reference mode, for one,
    makes 8 s 16:9 only)."""
    adapter = ADAPTERS[kind]
    caps = adapter.capabilities_for(model)
    lengths = sorted(caps.durations, key=lambda s: (s < 5, s))
    provider = adapter(base_url="https://provider.invalid", api_key="k", model=model)
    for seconds, size in itertools.product(lengths, caps.sizes):
        request = GenerationRequest(
            prompt="A shape check.",
            seconds=seconds,
            size=size,
            references=()
            if caps.native_characters
            else (Reference(kind="image", data=image_bytes(), content_type="image/png"),),
        )
        if not provider.validate(request):
            return seconds, size
    raise AssertionError(f"{kind} makes no video of any shape it declares")


@pytest.fixture
def studio_at(live_server, settings, fast_engine, celery_worker, openai_emulator, client):
    """A studio whose character Mina has a clip and two pictures, and a way to add one
    account at a provider's emulator."""
    settings.PUBLIC_BASE_URL = live_server.url
    built = build_studio(openai_url=openai_emulator.api_url)
    for index, color in enumerate(((200, 60, 60), (190, 70, 70)), start=1):
        asset_add(
            character=built["mina"],
            upload=SimpleUploadedFile(
                f"mina-{index}.png", image_bytes(size=(512, 512), color=color), "image/png"
            ),
        )
    client.force_login(MembershipFactory(workspace=built["workspace"], role=Role.EDITOR).user)
    running = []

    def at(kind: str) -> ProviderAccount:
        if kind == "openai":  # build_studio's own account, at the openai_emulator fixture
            return built["accounts"]["openai"]
        row = ROWS[kind]
        emulator = serve(row.emulator_class()(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
        running.append(emulator)
        return account_save(
            account=ProviderAccount(
                workspace=built["workspace"],
                name=row.account,
                kind=kind,
                base_url=emulator.api_url,
                model=row.model,
            ),
            # The emulators take any key (Kling's, a bare access key, signs its own tokens).
            api_key="test-key-1234",
        )

    yield {**built, "at": at, "client": client}
    for emulator in running:
        emulator.stop()


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_a_scene_with_a_character_is_made_at_every_provider(kind, studio_at, wait_for_job):
    account = studio_at["at"](kind)
    seconds, size = _scene_shape(kind, ROWS[kind].model)
    scene = SceneFactory(
        episode=studio_at["episode"],
        prompt="@mina looks out to sea.",
        duration=seconds,
        size=size,
    )

    take = take_create(scene=scene, account=account)
    job = wait_for_job(take.job, timeout=60)

    assert job.state == "succeeded", job.error_message
    assert job.video.size > 0
    assert job.cost_actual is not None
    assert job.cost_actual > 0
    sent = job.sent
    assert "{{character:" not in sent.prompt
    assert "@mina" not in sent.prompt
    registered = Registration.objects.filter(
        provider_account=account, subject=f"character:{studio_at['mina'].pk}"
    )
    if account.capabilities.native_characters:
        registration = registered.get()
        assert registration.status == "active"
        assert registration.external_id
        assert not job.routing["degraded"]
        assert registration.external_id in " ".join([sent.prompt, *sent.inputs])
        # The next take reuses what the provider keeps: one registration, named by its id.
        again = take_create(scene=scene, account=account)
        assert wait_for_job(again.job, timeout=60).state == "succeeded"
        assert registered.count() == 1
        assert registration.external_id in " ".join([again.job.sent.prompt, *again.job.sent.inputs])
    else:
        assert not registered.exists()
        assert any("image" in line for line in sent.inputs), sent.inputs
        # The take says the character travelled as references, and how.
        assert job.routing["degraded"]
        assert "Mina travels as" in job.routing["degraded_note"]

    page = (
        studio_at["client"]
        .get(reverse("scene_detail", args=[studio_at["workspace"].slug, scene.pk]))
        .content.decode()
    )
    assert f"Prompt as sent to {account.get_kind_display()}" in page
    if not account.capabilities.native_characters:
        assert "characters as references" in page


def test_a_clip_longer_than_kling_takes_is_cut_and_kling_fetches_the_cut(studio_at, wait_for_job):
    from tests.factories import CharacterFactory
    from tests.samples import clip_bytes

    kling = studio_at["at"]("kling")
    pip = CharacterFactory(workspace=studio_at["workspace"], handle="pip", name="Pip")
    asset_add(
        character=pip,
        upload=SimpleUploadedFile(
            "pip.mp4", clip_bytes(seconds=10.0, size=(1920, 1080)), "video/mp4"
        ),
    )
    scene = SceneFactory(
        episode=studio_at["episode"], prompt="@pip rows ashore.", duration=5, size="1280x720"
    )

    take = take_create(scene=scene, account=kling)
    job = wait_for_job(take.job, timeout=60)

    # Kling takes a 3-8 s clip by its address: the 10 s clip went as an 8 s cut of it.
    assert job.state == "succeeded", job.error_message
    registration = Registration.objects.get(provider_account=kling, subject=f"character:{pip.pk}")
    assert registration.status == "active"
    assert registration.source == pip.assets.get().file.name
