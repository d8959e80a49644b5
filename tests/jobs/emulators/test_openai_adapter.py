"""What the OpenAI adapter sends where the Videos API gives a choice of shapes."""

from __future__ import annotations

import pytest

from jobs.providers.base import GenerationRequest, ProviderError, Reference
from jobs.providers.openai import OpenAIProvider
from tests.jobs.test_contract import _wait
from tests.samples import image_bytes
from tests.support.emulators import emulator_log


def test_an_image_reference_with_only_an_address_goes_as_input_reference_image_url(
    openai_emulator, local_server
):
    local_server.files["/frame.png"] = image_bytes(size=(1280, 720))
    url = f"{local_server.url}/frame.png"
    picture = Reference(kind="image", url=url, content_type="image/png")
    with OpenAIProvider(base_url=openai_emulator.api_url, api_key="k") as adapter:
        job, sent = adapter.submit(
            GenerationRequest(prompt="Sunset.", seconds=4, size="1280x720", references=(picture,))
        )
        assert sent["input_reference"] == {"image_url": url}
        assert _wait(adapter, job).status == "succeeded"
    assert [entry["status"] for entry in emulator_log(openai_emulator, "create")] == [200]


def test_an_image_reference_with_neither_file_nor_address_is_refused_before_sending(
    openai_emulator,
):
    empty = Reference(kind="image", content_type="image/png")
    request = GenerationRequest(prompt="Sunset.", seconds=4, size="1280x720", references=(empty,))
    with (
        OpenAIProvider(base_url=openai_emulator.api_url, api_key="k") as adapter,
        pytest.raises(ProviderError, match="neither a file nor an address"),
    ):
        adapter.submit(request)
    assert emulator_log(openai_emulator, "create") == []
