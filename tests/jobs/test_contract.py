"""One contract, every adapter: each runs the same checks against its own emulator over HTTP."""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from decimal import Decimal

import av
import httpx
import pytest
from PIL import Image

from jobs.providers.base import (
    CharacterSource,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderJob,
    Reference,
    RegisteredCharacter,
)
from jobs.providers.openai import OpenAIProvider
from jobs.providers.seedance import SeedanceProvider
from jobs.providers.sora_relay import SoraRelayProvider

# The Seedance emulator's fixture lives with the emulator tests; the contract needs it too.
from tests.jobs.emulators.conftest import seedance_emulator  # noqa: F401 - used by name
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


CASES = {
    "openai": Case(OpenAIProvider, "openai_emulator", 4, "1280x720", "video_does_not_exist"),
    "sora_relay": Case(SoraRelayProvider, "relay_emulator", 10, "720x1280", "task_missing"),
    "seedance": Case(
        SeedanceProvider, "seedance_emulator", 4, "1280x720", "cgt-missing", reports_progress=False
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
    return next(item["text"] for item in sent["content"] if item["type"] == "text")


def test_a_video_is_made_and_streams_as_a_playable_mp4(contract):
    case, adapter, _ = contract
    job, sent = adapter.submit(_request(case))
    assert _sent_prompt(sent) == "A lighthouse at dusk."
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
    mina = adapter.register_character(source)
    assert mina.external_id
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
