"""The Google emulators (Veo on Vertex AI, Gemini Omni Flash) on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.google import GeminiEmulator, VertexVeoEmulator
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY


@pytest.fixture
def veo_emulator() -> Iterator[RunningEmulator]:
    running = serve(VertexVeoEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()


@pytest.fixture
def gemini_emulator() -> Iterator[RunningEmulator]:
    running = serve(GeminiEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()
