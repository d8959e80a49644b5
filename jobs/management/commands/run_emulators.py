"""Run the provider emulators in the foreground (for `make run`'s supervisor and demos)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.catalog import EMULATORS
from jobs.emulators.state import EmulatorConfig


def _port_overrides(values: list[str]) -> dict[str, int]:
    known = {row.kind for row in EMULATORS}
    ports = {}
    for value in values:
        kind, _, port = value.partition("=")
        if kind not in known or not port.isdigit():
            raise CommandError(
                f"--port takes KIND=PORT with KIND one of {', '.join(sorted(known))}; "
                f"not {value!r}."
            )
        ports[kind] = int(port)
    return ports


def _drift_settings(axes: str, rate: str) -> dict[str, Any]:
    """--drift and --drift-rate as emulator settings (checked as /_emulator/config checks them)."""
    settings: dict[str, Any] = {}
    if axes.strip():
        settings["drift_axes"] = axes
    if rate.strip():
        try:
            settings["drift_rate"] = float(rate)
        except ValueError as exc:
            raise CommandError(f"--drift-rate takes a number from 0 to 1, not {rate!r}.") from exc
    try:
        EmulatorConfig().merged(settings)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    return settings


class Command(BaseCommand):
    help = "Serve every provider emulator (jobs.emulators.catalog) on 127.0.0.1 until interrupted."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--port",
            action="append",
            default=[],
            metavar="KIND=PORT",
            help="Serve one emulator on another port, e.g. --port seedance=9103 (repeatable).",
        )
        parser.add_argument(
            "--only", default="", help="Comma-separated kinds to serve (default: all)."
        )
        parser.add_argument(
            "--latency",
            type=float,
            default=6.0,
            help="Seconds from create to completion (a reset keeps this value).",
        )
        parser.add_argument(
            "--drift",
            default=os.environ.get("EMULATOR_DRIFT", ""),
            metavar="AXES",
            help="Comma-separated drift axes (face, clothing, style): takes drift from their "
            "characters' pictures on these; every take, or a share with --drift-rate "
            "(default: $EMULATOR_DRIFT). A [[emulate:drift=...]] marker in a prompt wins.",
        )
        parser.add_argument(
            "--drift-rate",
            default=os.environ.get("EMULATOR_DRIFT_RATE", ""),
            metavar="SHARE",
            help="The share of takes (0-1, picked by job id) that drift, on the --drift axes "
            "or else all of them (default: $EMULATOR_DRIFT_RATE).",
        )

    def handle(
        self,
        *args: Any,
        port: list[str],
        only: str,
        latency: float,
        drift: str,
        drift_rate: str,
        **options,
    ):
        ports = _port_overrides(port)
        settings = {"latency_seconds": latency, **_drift_settings(drift, drift_rate)}
        wanted = {kind.strip() for kind in only.split(",") if kind.strip()}
        done = threading.Event()
        # Both signals end the run the same way: the supervisor sends TERM, a person Ctrl-C.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: done.set())

        running: list[RunningEmulator] = []
        try:
            for row in EMULATORS:
                if wanted and row.kind not in wanted:
                    continue
                app = row.emulator_class()(**settings)
                emulator = serve(app, port=ports.get(row.kind, row.port))
                running.append(emulator)
                self.stdout.write(f"{app.name} emulator: {emulator.api_url}")
            self.stdout.flush()
            done.wait()
        finally:
            for emulator in running:
                emulator.stop()
        self.stdout.write("Emulators stopped.")
