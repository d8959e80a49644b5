"""The fal.ai queue emulator on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.fal import FalEmulator
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY


@pytest.fixture
def fal_emulator() -> Iterator[RunningEmulator]:
    running = serve(FalEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()
