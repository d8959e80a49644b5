"""The Runway emulator on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.runway import RunwayEmulator
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY


@pytest.fixture
def runway_emulator() -> Iterator[RunningEmulator]:
    running = serve(RunwayEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()
