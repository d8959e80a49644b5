"""One contract, every adapter: each runs the same checks against its own emulator over HTTP."""

from __future__ import annotations

import base64
import dataclasses
import io
import time
from dataclasses import dataclass
from decimal import Decimal

import av
import httpx
import pytest
from PIL import Image

from jobs.models import Job, Registration
from jobs.providers.base import (
    CharacterSource,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderJob,
    Reference,
    RegisteredCharacter,
)
from jobs.providers.fal import FalProvider
from jobs.providers.google import GeminiOmniProvider, VeoProvider
from jobs.providers.kling import KlingProvider
from jobs.providers.openai import OpenAIProvider
from jobs.providers.runway import RunwayProvider
from jobs.providers.seedance import SeedanceProvider
from jobs.providers.sora_relay import SoraRelayProvider

# The Seedance emulator's fixture lives with the emulator tests; the contract needs it too.
from tests.jobs.emulators.conftest import seedance_emulator  # noqa: F401 - used by name
from tests.jobs.emulators.fixtures_fal import fal_emulator  # noqa: F401 - used by name
from tests.jobs.emulators.fixtures_google import gemini_emulator, veo_emulator  # noqa: F401 - used by name
from tests.jobs.emulators.fixtures_kling import kling_callbacks, kling_emulator  # noqa: F401 - used by name
from tests.jobs.emulators.fixtures_runway import runway_emulator  # noqa: F401 - used by name
from tests.samples import clip_bytes, image_bytes
from tests.support.emulators import emulator_control, emulator_state


@dataclass
class Case:
    adapter: type[Provider]
    emulator_fixture: str
    seconds: int
    size: str
    missing_id: str  # a well-formed id the emulator has never issued
    reports_progress: bool = True  # Ark says only queued / running / done


VEO_MISSING = (
    "projects/castboard-emulator/locations/us-central1/publishers/google/models/"
    "veo-3.1-generate-001/operations/00000000-0000-4000-8000-000000000000"
)
FAL_MISSING = "00000000-0000-4000-8000-000000000000"
CASES = {
    "openai": Case(OpenAIProvider, "openai_emulator", 4, "1280x720", "video_does_not_exist"),
    "sora_relay": Case(SoraRelayProvider, "relay_emulator", 10, "720x1280", "task_missing"),
    "seedance": Case(
        SeedanceProvider, "seedance_emulator", 4, "1280x720", "cgt-missing", reports_progress=False
    ),
    # Veo and Omni Flash report no percentage; Veo's reference mode makes 8 s, 16:9 only.
    "veo": Case(VeoProvider, "veo_emulator", 8, "1280x720", VEO_MISSING, reports_progress=False),
    "gemini": Case(
        GeminiOmniProvider, "gemini_emulator", 4, "1280x720", "v1_missing", reports_progress=False
    ),
    # fal's default hosted model (Seedance 2.0 reference-to-video); every row: test_fal_* below.
    "fal": Case(FalProvider, "fal_emulator", 5, "1280x720", FAL_MISSING, reports_progress=False),
    # Kling reports no percentage; its task ids are 18-digit numbers.
    "kling": Case(
        KlingProvider, "kling_emulator", 5, "1280x720", "100000000000000000", reports_progress=False
    ),
    # Runway's default model (seedance2); its task ids are UUIDs.
    "runway": Case(
        RunwayProvider, "runway_emulator", 5, "1280x720", "00000000-0000-4000-8000-000000000000"
    ),
}


@pytest.fixture(params=list(CASES))
def contract(request):
    case = CASES[request.param]
    emulator = request.getfixturevalue(case.emulator_fixture)
    adapter = case.adapter(base_url=emulator.api_url, api_key="sk-contract", timeout=5)
    yield case, adapter, emulator
    adapter.close()


def _wait(adapter: Provider, job: ProviderJob, timeout: float = 15) -> ProviderJob:
    deadline = time.monotonic() + timeout
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(max(0.05, min(job.poll_after or 0.1, 0.2)))
        job = adapter.fetch(job.provider_job_id)
    return job


def _request(case: Case, prompt: str = "A lighthouse at dusk.", **fields) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, seconds=case.seconds, size=case.size, **fields)


def _sent_prompt(sent: dict) -> str:
    """The prompt in a recorded payload: a field of its own, or Ark's one text item."""
    if "prompt" in sent:
        return sent["prompt"]
    if "instances" in sent:  # Vertex AI (Veo): the first instance's prompt
        return sent["instances"][0]["prompt"]
    if "input" in sent:  # the Interactions API (Gemini): the text block
        return next(block["text"] for block in sent["input"] if block["type"] == "text")
    if "promptText" in sent:  # Runway
        return sent["promptText"]
    return next(item["text"] for item in sent["content"] if item["type"] == "text")


def test_a_video_is_made_and_streams_as_a_playable_mp4(contract):
    case, adapter, _ = contract
    job, sent = adapter.submit(_request(case))
    assert _sent_prompt(sent) == "A lighthouse at dusk."
    # The provider's id fits where the engine keeps it (PostgreSQL enforces the length).
    assert len(job.provider_job_id) <= Job._meta.get_field("provider_job_id").max_length
    done = _wait(adapter, job)
    assert done.status == "succeeded"
    data = b"".join(adapter.stream_result(done, "video"))
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_progress_rises_while_it_runs(contract):
    case, adapter, emulator = contract
    emulator_control(emulator, "config", {"latency_seconds": 1.5, "progress_steps": 5})
    job, _ = adapter.submit(_request(case))
    seen = set()
    while job.status not in ("succeeded", "failed"):
        # Where the provider gives no percentage, its status is what moves.
        seen.add(job.progress if case.reports_progress else job.status)
        time.sleep(0.1)
        job = adapter.fetch(job.provider_job_id)
    assert len(seen) >= 2
    assert job.status == "succeeded"
    assert job.progress == 100


def test_moderation_is_reported_as_such(contract):
    case, adapter, _ = contract
    job, _ = adapter.submit(_request(case, prompt="Storm [[emulate:moderation]]"))
    done = _wait(adapter, job)
    assert done.status == "failed"
    assert done.error_message


def test_a_rate_limit_carries_the_providers_wait(contract):
    case, adapter, emulator = contract
    emulator_control(
        emulator, "faults", {"faults": [{"op": "create", "kind": "429", "retry_after": 3}]}
    )
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(case))
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limit", 3.0)
    assert caught.value.maybe_accepted is False


def test_an_outage_is_unavailable_and_the_create_was_not_accepted(contract):
    case, adapter, emulator = contract
    emulator_control(emulator, "config", {"outage": True})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(case))
    assert caught.value.kind == "unavailable"
    assert caught.value.maybe_accepted is False


def test_a_dropped_create_is_flagged_as_maybe_accepted(contract):
    case, adapter, emulator = contract
    emulator_control(
        emulator,
        "faults",
        {"faults": [{"op": "create", "kind": "timeout", "timeout_seconds": 0.5}]},
    )
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(case))
    assert caught.value.maybe_accepted is True


def test_a_wrong_key_is_an_auth_error(contract):
    case, adapter, emulator = contract
    emulator_control(emulator, "config", {"accepted_api_keys": ["sk-the-right-one"]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(case))
    assert caught.value.kind == "auth"


def test_an_unknown_job_is_not_found(contract):
    case, adapter, _ = contract
    with pytest.raises(ProviderError) as caught:
        adapter.fetch(case.missing_id)
    assert caught.value.kind == "not_found"


def test_recent_jobs_are_listed_for_reconciliation(contract):
    case, adapter, _ = contract
    if not adapter.capabilities.can_list_jobs:
        assert adapter.list_recent(since=0) == []
        return
    started = int(time.time()) - 5
    job, _ = adapter.submit(_request(case))
    listed = adapter.list_recent(since=started)
    assert job.provider_job_id in {j.provider_job_id for j in listed}
    assert all((j.created_at or 0) >= started for j in listed)
    assert adapter.list_recent(since=int(time.time()) + 3600) == []


def test_reconciliation_recognises_the_create_it_sent_in_the_list(contract):
    """After a timed-out create, the pipeline looks for it in the provider's list by what it
    recorded before sending (prompt, seconds, size): each adapter must recognise it there."""
    case, adapter, _ = contract
    if not adapter.capabilities.can_list_jobs:
        pytest.skip("nothing to reconcile against")
    job, _ = adapter.submit(_request(case, prompt="A heron, reconciled."))
    listed = {j.provider_job_id: j for j in adapter.list_recent(since=int(time.time()) - 60)}
    sent = {"prompt": "A heron, reconciled.", "seconds": case.seconds, "size": case.size}
    assert adapter.is_sent_job(listed[job.provider_job_id], sent)
    other = {**sent, "prompt": "A crane.", "seconds": case.seconds + 1}
    assert not adapter.is_sent_job(listed[job.provider_job_id], other)


def test_a_character_without_native_support_travels_as_a_reference(contract):
    case, adapter, _ = contract
    if adapter.capabilities.native_characters:
        pytest.skip("this provider keeps characters of its own (the next test)")
    with pytest.raises(ProviderError) as caught:
        adapter.register_character(CharacterSource(name="Mina", clip=clip_bytes(seconds=3.0)))
    assert caught.value.kind == "invalid"
    mina = RegisteredCharacter(external_id=adapter.reference_label("image", 1), name="Mina")
    prompt = adapter.render_mentions("{{character:1}} waves.", {"character:1": mina})
    picture = Reference(kind="image", data=image_bytes(size=(640, 360)), content_type="image/png")
    request = _request(case, prompt=prompt, references=(picture,))
    assert adapter.validate(request) == []
    job, sent = adapter.submit(request)
    assert _wait(adapter, job).status == "succeeded"
    assert _sent_prompt(sent).startswith("Mina (")
    assert mina.external_id in _sent_prompt(sent)


def test_a_registered_character_is_mentioned_in_the_providers_syntax(contract):
    case, adapter, _ = contract
    if not adapter.capabilities.native_characters:
        pytest.skip("this provider has no saved characters (the previous test)")
    if adapter.capabilities.character_from_job:
        job, _ = adapter.submit(_request(case))
        source = CharacterSource(
            name="Mina", from_provider_job_id=_wait(adapter, job).provider_job_id
        )
    else:
        source = CharacterSource(name="Mina", clip=clip_bytes(seconds=3.0))
        if adapter.capabilities.character_images:  # made from pictures (Kling's elements)
            views = tuple(
                Reference(kind="image", data=image_bytes(size=(400, 400), color=c))
                for c in ((200, 40, 40), (190, 50, 50))
            )
            source = CharacterSource(name="Mina", images=views)
    mina = adapter.register_character(source)
    assert mina.external_id
    assert len(mina.external_id) <= Registration._meta.get_field("external_id").max_length
    prompt = adapter.render_mentions("{{character:1}} waves.", {"character:1": mina})
    job, sent = adapter.submit(_request(case, prompt=prompt, character_ids=(mina.external_id,)))
    assert _wait(adapter, job).status == "succeeded"
    assert mina.external_id in str(sent) or mina.name in sent["prompt"]


# --- Adapter-specific parts of the contract -----------------------------------


def test_openai_sends_an_input_reference_the_size_of_the_video(openai_emulator):
    with OpenAIProvider(base_url=openai_emulator.api_url, api_key="k", model="sora-2") as adapter:
        good = Reference(kind="image", data=image_bytes(size=(1280, 720)), content_type="image/png")
        job, sent = adapter.submit(
            GenerationRequest(prompt="Sunset.", seconds=4, size="1280x720", references=(good,))
        )
        assert sent["input_reference"].startswith("<image/png")
        assert _wait(adapter, job).status == "succeeded"
        wrong = Reference(kind="image", data=image_bytes(size=(640, 640)), content_type="image/png")
        with pytest.raises(ProviderError) as caught:
            adapter.submit(
                GenerationRequest(prompt="Sunset.", seconds=4, size="1280x720", references=(wrong,))
            )
        assert caught.value.kind == "invalid"


def test_openai_serves_thumbnails_and_spritesheets_and_lists(openai_emulator):
    with OpenAIProvider(base_url=openai_emulator.api_url, api_key="k") as adapter:
        job, _ = adapter.submit(GenerationRequest(prompt="Gulls.", seconds=4, size="1280x720"))
        done = _wait(adapter, job)
        for variant in ("thumbnail", "spritesheet"):
            image = Image.open(io.BytesIO(b"".join(adapter.stream_result(done, variant))))
            assert image.format == "WEBP"
        listed = adapter.list_recent(since=int(time.time()) - 60)
        assert done.provider_job_id in {j.provider_job_id for j in listed}
        # The Videos API deletes only finished videos; it cannot stop one, so nothing is sent.
        assert adapter.capabilities.can_cancel is False
        assert adapter.cancel(job.provider_job_id) is False


def test_the_relay_cannot_remix():
    adapter = SoraRelayProvider(base_url="http://127.0.0.1:9/v1", api_key="k")
    with adapter, pytest.raises(ProviderError, match="cannot remix"):
        adapter.submit(GenerationRequest(prompt="x", seconds=10, size="720x1280", kind="remix"))


@pytest.mark.django_db
def test_a_relay_character_whose_registration_timed_out_is_found_not_recreated(relay_emulator):
    from jobs.pipeline import _register
    from jobs.requests import CastMember
    from tests.jobs.factories import JobFactory, ProviderAccountFactory

    account = ProviderAccountFactory(kind="sora_relay", base_url=relay_emulator.api_url, model="")
    job = JobFactory(provider_account=account)
    with SoraRelayProvider(base_url=relay_emulator.api_url, api_key="k", timeout=3) as adapter:
        task, _ = adapter.submit(GenerationRequest(prompt="Pip.", seconds=10, size="720x1280"))
        task = _wait(adapter, task)
        emulator_control(
            relay_emulator,
            "faults",
            {"faults": [{"op": "character", "kind": "timeout", "timeout_seconds": 6}]},
        )
        pip = CastMember(
            subject="character:7", name="Pip", from_provider_job_id=task.provider_job_id
        )
        registration = _register(job, adapter, pip, None)
    characters = httpx.get(
        f"{relay_emulator.api_url}/sora/characters", headers={"Authorization": "Bearer k"}
    ).json()["characters"]
    assert [c["character_id"] for c in characters] == [registration.external_id]
    state = emulator_state(relay_emulator)
    assert state["counters"]["faults_served"] == 1  # the registration really timed out


# --- Seedance: references, tokens, moderation, cancel, expiring links ---------------


@pytest.fixture
def seedance(request):
    """(adapter, emulator) for the Seedance-only parts of the contract."""
    emulator = request.getfixturevalue("seedance_emulator")
    with SeedanceProvider(base_url=emulator.api_url, api_key="k", timeout=5) as adapter:
        yield adapter, emulator


def _seedance_request(prompt: str = "Harbour at dawn.", **fields) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, seconds=4, size="1280x720", **fields)


def test_seedance_sends_references_inline_or_by_address_and_records_them_small(seedance):
    adapter, _ = seedance
    picture = image_bytes(size=(640, 360))
    clip = clip_bytes(seconds=3.0)
    references = (
        Reference(kind="image", data=picture, content_type="image/png"),
        Reference(kind="video", data=clip, content_type="video/mp4"),
    )
    job, sent = adapter.submit(
        _seedance_request("Mina (image 1) meets Pip (video 1).", references=references)
    )
    assert sent["model"] == "dreamina-seedance-2-0-260128"
    assert (sent["resolution"], sent["ratio"], sent["duration"]) == ("720p", "16:9", 4)
    assert sent["watermark"] is False
    assert sent["content"] == [
        {"type": "text", "text": "Mina (image 1) meets Pip (video 1)."},
        {
            "type": "image_url",
            "image_url": {"url": f"<image/png, {len(picture)} bytes>"},
            "role": "reference_image",
        },
        {
            "type": "video_url",
            "video_url": {"url": f"<video/mp4, {len(clip)} bytes>"},
            "role": "reference_video",
        },
    ]
    assert _wait(adapter, job).status == "succeeded"

    inline = base64.b64encode(picture).decode()
    addressed = Reference(kind="image", url=f"data:image/png;base64,{inline}", data=b"unused")
    _, sent = adapter.submit(_seedance_request(references=(addressed,)))
    assert sent["content"][1]["image_url"] == {"url": f"<image/png, {len(picture)} bytes>"}


def test_seedance_reports_the_tokens_it_billed_as_usage(seedance):
    adapter, _ = seedance
    done = _wait(adapter, adapter.submit(_seedance_request())[0])
    tokens = 1280 * 720 * 24 * 4 // 1024
    assert done.usage == Decimal(tokens)
    assert adapter.usage_estimate(seconds=4, size="1280x720") == Decimal(tokens)
    assert adapter.usage_estimate(seconds=5, size="1920x1080") == Decimal(243_000)
    caps = adapter.capabilities
    assert caps.pricing_unit == "token"
    assert (caps.price * 243_000).quantize(Decimal("0.01")) == Decimal("0.93")
    assert adapter.fetch(adapter.submit(_seedance_request())[0].provider_job_id).usage is None


def test_seedance_moderation_is_terminal_both_at_create_and_after(seedance):
    adapter, _ = seedance
    failed = _wait(adapter, adapter.submit(_seedance_request("x [[emulate:moderation]]"))[0])
    assert failed.status == "failed"
    assert "moderation" in failed.error_code  # what the pipeline looks for
    assert "OutputVideoSensitiveContentDetected" in failed.error_code
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_seedance_request("x [[emulate:refuse]]"))
    assert (caught.value.kind, caught.value.code) == (
        "moderation",
        "InputTextSensitiveContentDetected",
    )
    plain = _wait(adapter, adapter.submit(_seedance_request("x [[emulate:fail]]"))[0])
    assert (plain.status, plain.error_code) == ("failed", "InternalServiceError")


def test_seedance_quota_and_refusals_are_classified(seedance):
    adapter, emulator = seedance
    emulator_control(emulator, "faults", {"faults": [{"op": "create", "kind": "quota"}]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_seedance_request())
    assert caught.value.kind == "quota"
    with pytest.raises(ProviderError) as caught:
        SeedanceProvider(base_url=emulator.api_url, api_key="k", model="nope").submit(
            _seedance_request()
        )
    assert caught.value.kind == "not_found"


def test_seedance_cancels_queued_tasks_but_not_running_ones(seedance):
    adapter, emulator = seedance
    queued, _ = adapter.submit(_seedance_request("Later [[emulate:latency=600]]"))
    assert adapter.cancel(queued.provider_job_id) is True
    assert adapter.fetch(queued.provider_job_id).status == "cancelled"
    assert adapter.cancel(queued.provider_job_id) is False

    running, _ = adapter.submit(_seedance_request("Long [[emulate:latency=600]]"))
    emulator_control(emulator, "clock", {"advance_seconds": 100})  # out of the queue, into the work
    assert adapter.fetch(running.provider_job_id).status == "running"
    assert adapter.cancel(running.provider_job_id) is False

    done = _wait(adapter, adapter.submit(_seedance_request())[0])
    assert adapter.cancel(done.provider_job_id) is True  # a finished task's record goes
    assert adapter.cancel(done.provider_job_id) is False


def test_seedance_streams_from_the_link_and_an_expired_link_is_gone(seedance):
    adapter, emulator = seedance
    done = _wait(adapter, adapter.submit(_seedance_request())[0])
    # The download step may hold only the id: the adapter looks the link up itself.
    bare = ProviderJob(provider_job_id=done.provider_job_id, status="succeeded")
    assert b"".join(adapter.stream_result(bare)) == b"".join(adapter.stream_result(done))
    with pytest.raises(ProviderError) as caught:
        b"".join(adapter.stream_result(done, "thumbnail"))
    assert caught.value.kind == "not_found"
    emulator_control(emulator, "clock", {"advance_seconds": 24 * 3600 + 1})
    with pytest.raises(ProviderError) as caught:
        b"".join(adapter.stream_result(done))
    assert caught.value.kind == "not_found"
    assert "expired" in caught.value.message


def test_seedance_validates_what_it_cannot_make(seedance):
    adapter, _ = seedance
    clip = Reference(kind="video", url="https://example.test/clip.mp4")
    assert adapter.validate(_seedance_request(references=(clip,) * 3)) == []
    problems = adapter.validate(
        GenerationRequest(prompt="x", seconds=16, size="640x480", references=(clip,) * 4)
    )
    assert len(problems) == 3
    assert any("3 reference clip(s)" in problem for problem in problems)
    assert adapter.validate(_seedance_request(kind="remix")) == ["Seedance cannot remix a video."]
    with pytest.raises(ProviderError, match="cannot extend"):
        adapter.submit(_seedance_request(kind="extend"))
    with pytest.raises(ProviderError, match="no saved characters"):
        adapter.register_character(CharacterSource(name="Mina"))
    assert adapter.reference_label("video", 2) == "video 2"
    mina = RegisteredCharacter(external_id="image 2", name="Mina")
    assert (
        adapter.render_mentions("{{character:1}} and {{character:9}}", {"character:1": mina})
        == "Mina (image 2) and {{character:9}}"
    )


# --- Google: Veo on Vertex AI, Gemini Omni Flash --------------------------------------------


def _picture(color=(30, 90, 200), role: str = "") -> Reference:
    data = image_bytes(size=(320, 180), color=color)
    return Reference(kind="image", data=data, content_type="image/png", role=role)


@pytest.fixture
def veo(request):
    """(adapter, emulator) for the Veo-only parts of the contract."""
    emulator = request.getfixturevalue("veo_emulator")
    with VeoProvider(base_url=emulator.api_url, api_key="k", timeout=5) as adapter:
        yield adapter, emulator


@pytest.fixture
def gemini(request):
    emulator = request.getfixturevalue("gemini_emulator")
    with GeminiOmniProvider(base_url=emulator.api_url, api_key="k", timeout=5) as adapter:
        yield adapter, emulator


def _veo_request(prompt: str = "Harbour at dawn.", **fields) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, **{"seconds": 8, "size": "1280x720", **fields})


def test_veo_takes_three_asset_images_and_refuses_a_fourth(veo):
    adapter, _ = veo
    three = tuple(_picture((40 * n, 60, 90)) for n in range(1, 4))
    request = _veo_request("Mina (image 1), Pip (image 2) and Rae (image 3).", references=three)
    assert adapter.validate(request) == []
    job, sent = adapter.submit(request)
    references = sent["instances"][0]["referenceImages"]
    assert [r["referenceType"] for r in references] == ["asset"] * 3
    assert references[0]["image"]["bytesBase64Encoded"].startswith("<image/png, ")
    assert _wait(adapter, job).status == "succeeded"

    four = (*three, _picture())
    problems = adapter.validate(_veo_request(references=four))
    assert problems == ["Veo takes at most 3 reference image(s) per video; this request has 4."]
    with pytest.raises(ProviderError) as caught:  # Vertex refuses it too, in its own words
        adapter.submit(_veo_request(references=four))
    assert (caught.value.kind, caught.value.code) == ("invalid", "INVALID_ARGUMENT")
    assert "Too many reference images" in caught.value.message


@pytest.mark.parametrize(("seconds", "size"), [(6, "1280x720"), (8, "720x1280")])
def test_veo_reference_mode_is_8_seconds_16_9_only(veo, seconds, size):
    adapter, _ = veo
    request = _veo_request(seconds=seconds, size=size, references=(_picture(),))
    (problem,) = adapter.validate(request)
    assert "only when it is given reference images" in problem
    assert adapter.validate(dataclasses.replace(request, references=())) == []
    with pytest.raises(ProviderError) as caught:
        adapter.submit(request)
    assert caught.value.kind == "invalid"


def test_veo_moderation_is_rai_filtering_and_a_refused_prompt(veo):
    adapter, _ = veo
    filtered = _wait(adapter, adapter.submit(_veo_request("x [[emulate:moderation]]"))[0])
    assert filtered.status == "failed"
    assert filtered.error_code == "moderation:rai_media_filtered"
    assert "usage guidelines" in filtered.error_message
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_veo_request("x [[emulate:refuse]]"))
    assert caught.value.kind == "moderation"
    failed = _wait(adapter, adapter.submit(_veo_request("x [[emulate:fail]]"))[0])
    assert (failed.status, failed.error_code) == ("failed", "INTERNAL")


def test_veo_extends_its_own_video_by_seven_seconds(veo):
    adapter, _ = veo
    assert adapter.capabilities.extend_seconds == (7,)
    first = _wait(adapter, adapter.submit(_veo_request(seconds=4))[0])
    extension = _veo_request(
        "The boat sails on.", kind="extend", seconds=7, source_provider_job_id=first.provider_job_id
    )
    assert adapter.validate(extension) == []
    assert adapter.validate(dataclasses.replace(extension, seconds=8))
    job, sent = adapter.submit(extension)
    assert sent["instances"][0]["video"]["bytesBase64Encoded"].startswith("<video/mp4, ")
    assert sent["parameters"]["durationSeconds"] == 7
    done = _wait(adapter, job)
    data = b"".join(adapter.stream_result(ProviderJob(done.provider_job_id, "succeeded")))
    with av.open(io.BytesIO(data)) as container:
        assert container.duration / av.time_base == pytest.approx(11, abs=0.3)  # 4 s + 7 s


def test_veo_takes_first_and_last_frames_and_prices_by_model(veo):
    adapter, emulator = veo
    frames = (_picture(role="first_frame"), _picture((200, 30, 30), role="last_frame"))
    job, sent = adapter.submit(_veo_request(seconds=6, references=frames))
    instance = sent["instances"][0]
    assert set(instance) == {"prompt", "image", "lastFrame"}
    assert _wait(adapter, job).status == "succeeded"
    problems = adapter.validate(_veo_request(references=frames[1:]))
    assert problems == ["Veo needs a first frame to go with a last frame."]
    assert adapter.estimate(seconds=8) == Decimal("3.20")
    fast = VeoProvider(base_url=emulator.api_url, api_key="k", model="veo-3.1-fast-generate-001")
    with fast:
        assert fast.estimate(seconds=8) == Decimal("1.20")
        assert _wait(fast, fast.submit(_veo_request())[0]).status == "succeeded"
    caps = adapter.capabilities
    assert (caps.can_list_jobs, caps.can_cancel, caps.webhooks) == (False, False, False)


def test_google_tells_a_spent_quota_from_a_rate_limit_and_reads_oauth_tokens(veo):
    adapter, emulator = veo
    emulator_control(emulator, "faults", {"faults": [{"op": "create", "kind": "quota"}]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_veo_request())
    assert (caught.value.kind, caught.value.code) == ("quota", "RESOURCE_EXHAUSTED")
    emulator_control(emulator, "config", {"accepted_api_keys": ["ya29.token"]})
    with VeoProvider(base_url=emulator.api_url, api_key="ya29.token", timeout=5) as oauth:
        assert _wait(oauth, oauth.submit(_veo_request())[0]).status == "succeeded"
    stale = VeoProvider(base_url=emulator.api_url, api_key="ya29.stale", timeout=5)
    with stale, pytest.raises(ProviderError) as caught:
        stale.submit(_veo_request())
    assert (caught.value.kind, caught.value.code) == ("auth", "UNAUTHENTICATED")


def test_gemini_names_its_blocks_and_asks_for_a_video_by_link(gemini):
    adapter, _ = gemini
    mina = RegisteredCharacter(external_id=adapter.reference_label("image", 1), name="Mina")
    prompt = adapter.render_mentions("{{character:1}} waves.", {"character:1": mina})
    assert prompt == "Mina (image_1) waves."
    clip = Reference(kind="video", data=clip_bytes(seconds=2.0), content_type="video/mp4")
    request = GenerationRequest(
        prompt=prompt, seconds=5, size="720x1280", references=(_picture(), clip)
    )
    assert adapter.validate(request) == []
    job, sent = adapter.submit(request)
    assert [(b["type"], b.get("name")) for b in sent["input"]] == [
        ("text", None),
        ("image", "image_1"),
        ("video", "video_1"),
    ]
    assert sent["response_format"] == {
        "type": "video",
        "aspect_ratio": "9:16",
        "resolution": "720p",
        "duration": "5s",
        "delivery": "uri",
    }
    assert sent["background"] is True
    assert "webhook_config" not in sent
    done = _wait(adapter, job)
    assert "/files/" in done.video_url
    data = b"".join(adapter.stream_result(ProviderJob(done.provider_job_id, "succeeded")))
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[0].codec_context.height == 1280


def test_gemini_refuses_a_sixth_image_and_lengths_it_cannot_make(gemini):
    adapter, _ = gemini
    six = tuple(_picture() for _ in range(6))
    request = GenerationRequest(prompt="x", seconds=4, size="1280x720", references=six)
    assert adapter.validate(request) == [
        "Gemini takes at most 5 reference image(s) per video; this request has 6."
    ]
    with pytest.raises(ProviderError) as caught:
        adapter.submit(request)
    assert caught.value.kind == "invalid"
    assert adapter.validate(dataclasses.replace(request, references=(), seconds=12))
    assert adapter.validate(dataclasses.replace(request, references=(), kind="extend"))


def test_gemini_cancels_a_running_interaction_and_its_link_expires(gemini):
    adapter, emulator = gemini
    running, _ = adapter.submit(_request(CASES["gemini"], "Long [[emulate:latency=600]]"))
    assert adapter.cancel(running.provider_job_id) is True
    assert adapter.fetch(running.provider_job_id).status == "cancelled"
    assert adapter.cancel(running.provider_job_id) is False
    moderated = _wait(
        adapter, adapter.submit(_request(CASES["gemini"], "[[emulate:moderation]]"))[0]
    )
    assert "moderation" in moderated.error_code
    done = _wait(adapter, adapter.submit(_request(CASES["gemini"]))[0])
    emulator_control(emulator, "clock", {"advance_seconds": 48 * 3600 + 1})
    with pytest.raises(ProviderError) as caught:
        b"".join(adapter.stream_result(done))
    assert caught.value.kind == "not_found"
    assert "expired" in caught.value.message


def test_gemini_webhooks_are_verified_and_a_generated_video_reads_as_completed(gemini):
    from jobs.emulators.webhooks import sign
    from jobs.providers.base import WebhookRejected

    adapter, _ = gemini
    secret = "whsec_" + base64.b64encode(b"gemini-secret").decode()
    body = b'{"id":"evt_1","type":"video.generated","data":{"id":"v1_abc"}}'
    stamp = int(time.time())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, message_id="evt_1", timestamp=stamp, body=body),
    }
    notice = adapter.verify_webhook(headers=headers, body=body, secret=secret)
    assert (notice.event_type, notice.provider_job_id) == ("interaction.completed", "v1_abc")
    failed = body.replace(b"video.generated", b"interaction.failed")
    headers["webhook-signature"] = sign(secret, message_id="evt_1", timestamp=stamp, body=failed)
    assert adapter.verify_webhook(headers=headers, body=failed, secret=secret).event_type == (
        "interaction.failed"  # a nudge: the poll reads why
    )
    with pytest.raises(WebhookRejected):
        adapter.verify_webhook(headers=headers, body=body, secret=secret)


# --- fal.ai ---


def _fal_picture(color=(30, 90, 200)) -> Reference:
    return Reference(
        kind="image", data=image_bytes(size=(320, 180), color=color), content_type="image/png"
    )


def _fal_rows():
    from jobs.providers.fal import catalog

    return sorted(catalog().models.values(), key=lambda row: row.id)


@pytest.mark.parametrize("row", _fal_rows(), ids=lambda row: row.id)
def test_fal_makes_a_video_with_every_hosted_model_in_its_own_words(request, row):
    emulator = request.getfixturevalue("fal_emulator")
    size, seconds = next(iter(row.sizes)), row.durations[0]
    pictures = tuple(
        _fal_picture((60 * n, 80, 120)) for n in range(1, max(1, row.min_references) + 1)
    )
    references = pictures if row.max_references else ()
    prompt = "Mina (image 1) walks." if references else "A quiet street."
    wanted = GenerationRequest(prompt=prompt, seconds=seconds, size=size, references=references)
    with FalProvider(base_url=emulator.api_url, api_key="k", model=row.id, timeout=5) as adapter:
        assert adapter.capabilities.durations == row.durations
        assert adapter.capabilities.sizes == tuple(row.sizes)
        assert adapter.capabilities.price == row.price
        assert adapter.validate(wanted) == []
        job, sent = adapter.submit(wanted)
        assert sent[row.fields["prompt"]] == prompt
        assert sent[row.fields["duration"]] == row.duration_format.format(seconds=seconds)
        for concept in ("aspect_ratio", "resolution"):
            if concept in row.fields:
                assert sent[row.fields[concept]] == row.sizes[size][concept]
        if references:
            assert sent[row.fields["images"]][0].startswith("<image/png, ")
        done = _wait(adapter, job)
        assert done.status == "succeeded", done
        data = b"".join(adapter.stream_result(ProviderJob(done.provider_job_id, "succeeded")))
    width, height = (int(side) for side in size.split("x"))
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)


def test_fal_takes_a_new_hosted_model_from_a_row_of_data(tmp_path):
    from jobs.emulators.base import serve
    from jobs.emulators.fal import FalEmulator
    from jobs.providers.fal import MODELS_FILE

    models = tmp_path / "models.toml"
    models.write_text(
        MODELS_FILE.read_text()
        + """
[[models]]
id = "acme/vid-9/turbo"
label = "Acme Vid 9 Turbo"
durations = [3, 6]
duration_format = "{seconds}sec"
mention_syntax = "image n"
max_references = 2
price = { unit = "request", amount = "0.50", source = "a test row" }
[models.fields]
prompt = "text"
duration = "length"
aspect_ratio = "ratio"
images = "refs"
[models.sizes]
"640x360" = { aspect_ratio = "wide" }
"""
    )
    running = serve(FalEmulator(models_file=models, latency_seconds=0.3, fps=6))
    adapter = FalProvider(
        base_url=running.api_url, api_key="k", model="acme/vid-9/turbo", catalog_file=models
    )
    with running, adapter:
        caps = adapter.capabilities
        assert (caps.durations, caps.sizes, caps.max_references) == ((3, 6), ("640x360",), 2)
        assert adapter.estimate(seconds=6) == Decimal("0.50")  # priced per request
        request = GenerationRequest(
            prompt="Pip (image 1).", seconds=6, size="640x360", references=(_fal_picture(),)
        )
        job, sent = adapter.submit(request)
        assert set(sent) == {"text", "length", "ratio", "refs"}
        assert (sent["length"], sent["ratio"]) == ("6sec", "wide")
        assert _wait(adapter, job).status == "succeeded"
        # Status and result live under owner/app, not the endpoint's sub-path.
        log = httpx.get(f"{running.url}/_emulator/log").json()["entries"]
        paths = [entry["path"] for entry in log]
        assert f"/acme/vid-9/requests/{job.provider_job_id}/status" in paths


def test_fal_refuses_a_model_it_has_no_row_for():
    assert FalProvider.capabilities_for("nobody/nothing").max_references == 0
    dearest = max(row.price for row in _fal_rows())
    assert FalProvider.capabilities_for("nobody/nothing").price == dearest
    with FalProvider(base_url="http://127.0.0.1:9", api_key="k", model="nobody/nothing") as adapter:
        request = GenerationRequest(prompt="x", seconds=5, size="1280x720")
        (problem,) = adapter.validate(request)
        assert "no hosted model 'nobody/nothing'" in problem
        with pytest.raises(ProviderError) as caught:
            adapter.submit(request)
        assert (caught.value.kind, caught.value.code) == ("invalid", "unknown_model")


@pytest.fixture
def fal(request):
    emulator = request.getfixturevalue("fal_emulator")
    with FalProvider(base_url=emulator.api_url, api_key="k", timeout=5) as adapter:
        yield adapter, emulator


def _fal_request(prompt: str = "Harbour at dawn.", **fields) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, **{"seconds": 5, "size": "1280x720", **fields})


def test_fal_moderation_and_failures_come_from_the_result(fal):
    adapter, _ = fal
    flagged = _wait(adapter, adapter.submit(_fal_request("x [[emulate:moderation]]"))[0])
    assert (flagged.status, flagged.error_code) == ("failed", "moderation:content_policy_violation")
    assert "flagged by a content checker" in flagged.error_message
    failed = _wait(adapter, adapter.submit(_fal_request("x [[emulate:fail]]"))[0])
    assert (failed.status, failed.error_code) == ("failed", "internal_server_error")


def test_fal_validation_errors_are_the_models_own(request):
    emulator = request.getfixturevalue("fal_emulator")
    elements = "fal-ai/kling-video/v1.6/standard/elements"
    with FalProvider(base_url=emulator.api_url, api_key="k", model=elements) as adapter:
        bare = _fal_request()
        assert adapter.validate(bare) == [
            "Kling 1.6 Elements (fal) needs at least 1 reference image(s); this request has 0."
        ]
        with pytest.raises(ProviderError) as caught:  # fal refuses it too, FastAPI-style
            adapter.submit(bare)
        assert (caught.value.kind, caught.value.status_code) == ("invalid", 422)
        assert "input_image_urls: Field required" in caught.value.message
        five = _fal_request(references=tuple(_fal_picture() for _ in range(5)))
        assert adapter.validate(five) == [
            "fal takes at most 4 reference image(s) per video; this request has 5."
        ]
        with pytest.raises(ProviderError, match="at most 4 items"):
            adapter.submit(five)


def test_fal_cancels_only_queued_requests(fal):
    adapter, emulator = fal
    queued, _ = adapter.submit(_fal_request("Later [[emulate:latency=600]]"))
    assert adapter.cancel(queued.provider_job_id) is True
    assert adapter.fetch(queued.provider_job_id).status == "cancelled"
    assert adapter.cancel(queued.provider_job_id) is False  # ALREADY_COMPLETED
    running, _ = adapter.submit(_fal_request("Long [[emulate:latency=600]]"))
    emulator_control(emulator, "clock", {"advance_seconds": 100})
    assert adapter.fetch(running.provider_job_id).status == "running"
    assert adapter.cancel(running.provider_job_id) is False  # the model runs on
    assert adapter.fetch(running.provider_job_id).status == "running"


def test_fal_links_expire_and_a_spent_balance_is_quota(fal):
    adapter, emulator = fal
    done = _wait(adapter, adapter.submit(_fal_request())[0])
    assert "/files/" in done.video_url
    emulator_control(emulator, "clock", {"advance_seconds": 7 * 24 * 3600 + 1})
    with pytest.raises(ProviderError) as caught:
        b"".join(adapter.stream_result(done))
    assert caught.value.kind == "not_found"
    assert "expired" in caught.value.message
    emulator_control(emulator, "faults", {"faults": [{"op": "create", "kind": "quota"}]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_fal_request())
    assert caught.value.kind == "quota"
    assert "Exhausted balance" in caught.value.message


# --- Kling ---


@pytest.fixture
def kling(request):
    """(adapter, emulator) for the Kling-only parts of the contract: a real key pair."""
    emulator = request.getfixturevalue("kling_emulator")
    emulator_control(emulator, "config", {"accepted_api_keys": ["ak-contract:sk-contract"]})
    with KlingProvider(
        base_url=emulator.api_url, api_key="ak-contract:sk-contract", timeout=5
    ) as adapter:
        yield adapter, emulator


def _kling_pictures(color) -> tuple[Reference, ...]:
    return tuple(
        Reference(
            kind="image", data=image_bytes(size=(400, 400), color=shade), content_type="image/png"
        )
        for shade in (color, tuple(max(0, c - 20) for c in color))
    )


def test_kling_signs_each_request_with_a_jwt_of_its_key_pair(kling):
    import hashlib
    import hmac
    import json

    adapter, emulator = kling
    scheme, token = adapter._headers()["Authorization"].split()
    head, claims, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert scheme == "Bearer"
    assert decoded["iss"] == "ak-contract"
    assert decoded["exp"] - decoded["nbf"] == 1805  # now + 1800, now - 5
    expected = hmac.new(b"sk-contract", f"{head}.{claims}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature
    assert _wait(adapter, adapter.submit(_request(CASES["kling"]))[0]).status == "succeeded"
    wrong = KlingProvider(base_url=emulator.api_url, api_key="ak-contract:sk-wrong", timeout=5)
    with wrong, pytest.raises(ProviderError) as caught:
        wrong.submit(_request(CASES["kling"]))
    assert (caught.value.kind, caught.value.code) == ("auth", "1002")


def test_kling_registers_an_element_once_and_names_it_by_its_place(kling):
    adapter, emulator = kling
    mina = adapter.register_character(
        CharacterSource(name="Mina", description="A pilot", images=_kling_pictures((200, 40, 40)))
    )
    pip = adapter.register_character(
        CharacterSource(name="Pip", images=_kling_pictures((40, 40, 200)))
    )
    mentions = {"character:1": mina, "character:2": pip}
    prompt = adapter.render_mentions("{{character:1}} waves at {{character:2}}.", mentions)
    assert prompt == "<<<element_1>>> waves at <<<element_2>>>."
    ids = (mina.external_id, pip.external_id)
    for _ in range(2):  # two takes, one registration each
        job, sent = adapter.submit(_request(CASES["kling"], prompt=prompt, character_ids=ids))
        assert sent["element_list"] == [{"element_id": int(i)} for i in ids]
        assert _wait(adapter, job).status == "succeeded"
    assert emulator_state(emulator)["elements"] == 2
    assert adapter.find_character(name="Mina", since=int(time.time()) - 60) == mina
    assert adapter.find_character(name="Mina", since=int(time.time()) + 60) is None
    with pytest.raises(ProviderError) as caught:  # one picture and no clip address
        adapter.register_character(
            CharacterSource(name="Rae", images=_kling_pictures((9, 9, 9))[:1])
        )
    assert caught.value.kind == "invalid"
    flagged = CharacterSource(
        name="Rae", description="[[emulate:moderation]]", images=_kling_pictures((9, 9, 9))
    )
    with pytest.raises(ProviderError) as caught:
        adapter.register_character(flagged)
    assert caught.value.kind == "moderation"


def test_kling_callbacks_arrive_unsigned_and_are_read_as_a_nudge(kling, request):
    from jobs.providers.base import WebhookRejected

    adapter, _ = kling
    callbacks = request.getfixturevalue("kling_callbacks")
    request = dataclasses.replace(
        _request(CASES["kling"]), callback_url=callbacks.url + "/hooks/the-token"
    )
    job, sent = adapter.submit(request)
    assert sent["callback_url"] == request.callback_url
    ((path, headers, body),) = callbacks.wait_for(1)
    assert path == "/hooks/the-token"
    notice = adapter.verify_webhook(headers=headers, body=body, secret="")
    assert notice.provider_job_id == job.provider_job_id
    assert notice.event_type == "kling.task.updated"  # not ".completed": the engine re-reads
    assert notice.event_id.startswith(f"{job.provider_job_id}:succeed:")
    for bad in (b"not json", b"[]", b'{"task_id": "1", "task_status": "done"}'):
        with pytest.raises(WebhookRejected):
            adapter.verify_webhook(headers={}, body=bad, secret="")


def test_kling_refuses_an_over_long_prompt_before_sending_it(kling):
    adapter, emulator = kling
    request = _request(CASES["kling"], prompt="x" * 2501)
    assert adapter.validate(request) == [
        "Kling reads prompts of at most 2,500 characters; this one has 2,501."
    ]
    with pytest.raises(ProviderError) as caught:
        adapter.submit(request)
    assert caught.value.kind == "invalid"
    assert emulator_state(emulator)["counters"]["creates"] == 0


def test_kling_moderation_quota_and_expired_links_in_its_own_words(kling):
    adapter, emulator = kling
    flagged = _wait(
        adapter, adapter.submit(_request(CASES["kling"], "x [[emulate:moderation]]"))[0]
    )
    assert (flagged.status, flagged.error_code) == ("failed", "moderation:risk_control")
    emulator_control(emulator, "faults", {"faults": [{"op": "create", "kind": "quota"}]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(CASES["kling"]))
    assert (caught.value.kind, caught.value.code) == ("quota", "1102")
    done = _wait(adapter, adapter.submit(_request(CASES["kling"]))[0])
    emulator_control(emulator, "clock", {"advance_seconds": 30 * 24 * 3600 + 1})
    with pytest.raises(ProviderError) as caught:
        b"".join(adapter.stream_result(done))
    assert caught.value.kind == "not_found"
    assert "expired" in caught.value.message
    assert adapter.cancel(done.provider_job_id) is False  # Kling cannot stop a task
