"""Run the provider emulators in the foreground (for `make run`'s supervisor and demos)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.openai import OpenAIVideosEmulator
from jobs.emulators.seedance import SeedanceEmulator
from jobs.emulators.sora_relay import SoraRelayEmulator


class Command(BaseCommand):
    help = (
        "Serve the OpenAI Videos, Sora relay and Seedance emulators on 127.0.0.1 until interrupted."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--openai-port", type=int, default=8101)
        parser.add_argument("--relay-port", type=int, default=8102)
        parser.add_argument("--seedance-port", type=int, default=8103)
        parser.add_argument(
            "--latency",
            type=float,
            default=6.0,
            help="Seconds from create to completion (a reset keeps this value).",
        )

    def handle(
        self,
        *args: Any,
        openai_port: int,
        relay_port: int,
        seedance_port: int,
        latency: float,
        **options,
    ):
        done = threading.Event()
        # Both signals end the run the same way: the supervisor sends TERM, a person Ctrl-C.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: done.set())

        running: list[RunningEmulator] = []
        try:
            for app, port in (
                (OpenAIVideosEmulator(latency_seconds=latency), openai_port),
                (SoraRelayEmulator(latency_seconds=latency), relay_port),
                (SeedanceEmulator(latency_seconds=latency), seedance_port),
            ):
                emulator = serve(app, port=port)
                running.append(emulator)
                self.stdout.write(f"{app.name} emulator: {emulator.api_url}")
            self.stdout.flush()
            done.wait()
        finally:
            for emulator in running:
                emulator.stop()
        self.stdout.write("Emulators stopped.")
