"""Fixtures of the engine's tests: the text-to-speech emulator on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.elevenlabs import ElevenLabsEmulator
from tests.support.engine import EMULATOR_LATENCY


@pytest.fixture
def elevenlabs_emulator() -> Iterator[RunningEmulator]:
    running = serve(ElevenLabsEmulator(latency_seconds=EMULATOR_LATENCY))
    yield running
    running.stop()
