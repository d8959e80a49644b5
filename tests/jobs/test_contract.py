"""One contract, every adapter: each runs the same checks against its own emulator over HTTP."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

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
)
from jobs.providers.openai import OpenAIProvider
from jobs.providers.sora_relay import SoraRelayProvider
from tests.samples import clip_bytes


@dataclass
class Case:
    adapter: type[Provider]
    emulator_fixture: str
    seconds: int
    size: str


CASES = {
    "openai": Case(OpenAIProvider, "openai_emulator", 4, "1280x720"),
    "sora_relay": Case(SoraRelayProvider, "relay_emulator", 10, "720x1280"),
}


@pytest.fixture(params=list(CASES))
def contract(request):
    case = CASES[request.param]
    emulator = request.getfixturevalue(case.emulator_fixture)
    adapter = case.adapter(base_url=emulator.api_url, api_key="sk-contract", timeout=5)
    yield case, adapter, emulator
    adapter.close()


def _control(emulator, what: str, body: dict) -> None:
    assert httpx.post(f"{emulator.url}/_emulator/{what}", json=body).status_code == 200


def _wait(adapter: Provider, job: ProviderJob, timeout: float = 15) -> ProviderJob:
    deadline = time.monotonic() + timeout
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(max(0.05, min(job.poll_after or 0.1, 0.2)))
        job = adapter.fetch(job.provider_job_id)
    return job


def _request(case: Case, prompt: str = "A lighthouse at dusk.", **fields) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, seconds=case.seconds, size=case.size, **fields)


def test_a_video_is_made_and_streams_as_a_playable_mp4(contract):
    case, adapter, _ = contract
    job, sent = adapter.submit(_request(case))
    assert sent["prompt"] == "A lighthouse at dusk."
    done = _wait(adapter, job)
    assert done.status == "succeeded"
    data = b"".join(adapter.stream_result(done, "video"))
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_progress_rises_while_it_runs(contract):
    case, adapter, emulator = contract
    _control(emulator, "config", {"latency_seconds": 1.5, "progress_steps": 5})
    job, _ = adapter.submit(_request(case))
    seen = set()
    while job.status not in ("succeeded", "failed"):
        seen.add(job.progress)
        time.sleep(0.1)
        job = adapter.fetch(job.provider_job_id)
    assert len(seen) >= 2


def test_moderation_is_reported_as_such(contract):
    case, adapter, _ = contract
    job, _ = adapter.submit(_request(case, prompt="Storm [[emulate:moderation]]"))
    done = _wait(adapter, job)
    assert done.status == "failed"
    assert done.error_message


def test_a_rate_limit_carries_the_providers_wait(contract):
    case, adapter, emulator = contract
    _control(emulator, "faults", {"faults": [{"op": "create", "kind": "429", "retry_after": 3}]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(case))
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limit", 3.0)
    assert caught.value.maybe_accepted is False


def test_an_outage_is_unavailable_and_the_create_was_not_accepted(contract):
    case, adapter, emulator = contract
    _control(emulator, "config", {"outage": True})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(case))
    assert caught.value.kind == "unavailable"
    assert caught.value.maybe_accepted is False


def test_a_dropped_create_is_flagged_as_maybe_accepted(contract):
    case, adapter, emulator = contract
    _control(
        emulator,
        "faults",
        {"faults": [{"op": "create", "kind": "timeout", "timeout_seconds": 0.5}]},
    )
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(case))
    assert caught.value.maybe_accepted is True


def test_a_wrong_key_is_an_auth_error(contract):
    case, adapter, emulator = contract
    _control(emulator, "config", {"accepted_api_keys": ["sk-the-right-one"]})
    with pytest.raises(ProviderError) as caught:
        adapter.submit(_request(case))
    assert caught.value.kind == "auth"


def test_an_unknown_job_is_not_found(contract):
    _, adapter, _ = contract
    with pytest.raises(ProviderError) as caught:
        adapter.fetch("video_does_not_exist" if adapter.kind == "openai" else "task_missing")
    assert caught.value.kind == "not_found"


def test_a_registered_character_is_mentioned_in_the_providers_syntax(contract):
    case, adapter, _ = contract
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


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, format="PNG")
    return out.getvalue()


def test_openai_sends_an_input_reference_the_size_of_the_video(openai_emulator):
    with OpenAIProvider(base_url=openai_emulator.api_url, api_key="k", model="sora-2") as adapter:
        good = Reference(kind="image", data=_png((1280, 720)), content_type="image/png")
        job, sent = adapter.submit(
            GenerationRequest(prompt="Sunset.", seconds=4, size="1280x720", references=(good,))
        )
        assert sent["input_reference"].startswith("<image/png")
        assert _wait(adapter, job).status == "succeeded"
        wrong = Reference(kind="image", data=_png((640, 640)), content_type="image/png")
        with pytest.raises(ProviderError) as caught:
            adapter.submit(
                GenerationRequest(prompt="Sunset.", seconds=4, size="1280x720", references=(wrong,))
            )
        assert caught.value.kind == "invalid"


def test_openai_serves_thumbnails_and_spritesheets_and_lists_and_deletes(openai_emulator):
    with OpenAIProvider(base_url=openai_emulator.api_url, api_key="k") as adapter:
        job, _ = adapter.submit(GenerationRequest(prompt="Gulls.", seconds=4, size="1280x720"))
        done = _wait(adapter, job)
        for variant in ("thumbnail", "spritesheet"):
            image = Image.open(io.BytesIO(b"".join(adapter.stream_result(done, variant))))
            assert image.format == "WEBP"
        listed = adapter.list_recent(since=int(time.time()) - 60)
        assert done.provider_job_id in {j.provider_job_id for j in listed}
        assert adapter.cancel(done.provider_job_id) is True
        assert adapter.cancel(done.provider_job_id) is False


def test_the_relay_cannot_remix():
    adapter = SoraRelayProvider(base_url="http://127.0.0.1:9/v1", api_key="k")
    with adapter, pytest.raises(ProviderError, match="cannot remix"):
        adapter.submit(GenerationRequest(prompt="x", seconds=10, size="720x1280", kind="remix"))


@pytest.mark.django_db
def test_a_relay_character_whose_registration_timed_out_is_found_not_recreated(relay_emulator):
    from jobs.pipeline import _register
    from tests.jobs.factories import JobFactory, ProviderAccountFactory

    account = ProviderAccountFactory(kind="sora_relay", base_url=relay_emulator.api_url, model="")
    job = JobFactory(provider_account=account)
    with SoraRelayProvider(base_url=relay_emulator.api_url, api_key="k", timeout=3) as adapter:
        task, _ = adapter.submit(GenerationRequest(prompt="Pip.", seconds=10, size="720x1280"))
        task = _wait(adapter, task)
        _control(
            relay_emulator,
            "faults",
            {"faults": [{"op": "character", "kind": "timeout", "timeout_seconds": 6}]},
        )
        registration = _register(
            job,
            adapter,
            {"subject": "character:7", "name": "Pip", "from_provider_job_id": task.provider_job_id},
        )
    characters = httpx.get(
        f"{relay_emulator.api_url}/sora/characters", headers={"Authorization": "Bearer k"}
    ).json()["characters"]
    assert [c["character_id"] for c in characters] == [registration.external_id]
    state = httpx.get(f"{relay_emulator.url}/_emulator/state").json()
    assert state["counters"]["faults_served"] == 1  # the registration really timed out
