"""The Kling emulator on a free loopback port, and a receiver for its callbacks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.kling import KlingEmulator
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY


@pytest.fixture
def kling_emulator() -> Iterator[RunningEmulator]:
    running = serve(KlingEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()


@dataclass
class Callbacks:
    """What a loopback receiver was POSTed, for Kling's callback_url."""

    url: str
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def wait_for(
        self, count: int, timeout: float = 10.0
    ) -> list[tuple[str, dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"only {len(self.received)} of {count} arrived"
            time.sleep(0.02)
        return list(self.received)


@pytest.fixture
def kling_callbacks() -> Iterator[Callbacks]:
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield Callbacks(url=f"http://127.0.0.1:{server.server_address[1]}", received=received)
    server.shutdown()
    server.server_close()
    thread.join()
