"""The provider guide users read (docs/providers.md) says what the adapters declare."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from jobs.providers import ADAPTERS

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in GUIDE.read_text().splitlines():
        match = re.match(r"\| `([a-z_]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def _lengths(durations: tuple[int, ...]) -> str:
    steps = {b - a for a, b in itertools.pairwise(durations)}
    if len(durations) > 3 and steps == {1}:
        return f"{durations[0]} to {durations[-1]}"
    return ", ".join(str(d) for d in durations)


def test_the_guide_has_a_row_for_every_provider_kind():
    assert set(_rows()) == set(ADAPTERS)


_PRICED = {
    "second": "per second",
    "request": "per video",
    "token": "per token",
    "credit": "per credit",
}
VIDEO_KINDS = sorted(k for k, a in ADAPTERS.items() if a.capabilities.output == "video")
SPEECH_KINDS = sorted(k for k, a in ADAPTERS.items() if a.capabilities.output == "speech")


@pytest.mark.parametrize("kind", VIDEO_KINDS)
def test_each_row_states_the_lengths_sizes_and_limits_the_adapter_declares(kind):
    lengths, sizes, characters, references, priced = _rows()[kind]
    caps = ADAPTERS[kind].capabilities

    assert lengths == _lengths(caps.durations)
    assert sizes == ", ".join(caps.sizes)
    assert f"up to {caps.max_characters} a video" in characters
    assert ("saved at the provider" in characters) is caps.native_characters
    if caps.max_references:
        assert references.startswith(f"{caps.max_references} image")
    if caps.max_reference_clips:
        clips = "clip" if caps.max_reference_clips == 1 else "clips"
        assert f"{caps.max_reference_clips} {clips}" in references
    assert priced == _PRICED[caps.pricing_unit]


@pytest.mark.parametrize("kind", SPEECH_KINDS)
def test_a_speech_providers_row_says_it_makes_speech_in_voices(kind):
    lengths, sizes, characters, references, priced = _rows()[kind]
    caps = ADAPTERS[kind].capabilities

    assert lengths.startswith("speech, not video")
    assert (sizes, references) == ("—", "none")
    assert characters.startswith("voices, not characters")
    assert ("made from a short sample" in characters) is caps.voice_samples
    assert priced == _PRICED[caps.pricing_unit]


def test_the_readme_sends_users_to_the_guide_in_the_repository():
    readme = (GUIDE.parents[1] / "README.md").read_text()
    assert "shared/PROVIDERS.md" not in readme
    assert "docs/providers.md" in readme
