"""A running emulator's control endpoints (/_emulator/...): what it received, its state,
and the faults or settings a test gives it."""

from __future__ import annotations

import httpx

from jobs.emulators.base import RunningEmulator


def emulator_log(emulator: RunningEmulator, op: str | None = None) -> list[dict]:
    """The calls the emulator received, oldest first; only those of `op` when given."""
    entries = httpx.get(f"{emulator.url}/_emulator/log").json()["entries"]
    return [entry for entry in entries if op is None or entry.get("op") == op]


def emulator_state(emulator: RunningEmulator) -> dict:
    """What the emulator holds now: its videos, characters, counters, webhook deliveries."""
    return httpx.get(f"{emulator.url}/_emulator/state").json()


def emulator_control(emulator: RunningEmulator, what: str, body: dict) -> None:
    """Post `body` to a control endpoint (config, faults, reset) and check it was taken."""
    response = httpx.post(f"{emulator.url}/_emulator/{what}", json=body)
    assert response.status_code == 200, response.text
