"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that keeps what it is sent."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    """One request as it arrived: its headers (names in lower case) and its body's bytes."""

    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers each POST with the next of `statuses` (the last one repeats), with `reply` as
    its body, after `delay` seconds; `headers` go on every answer (a Location for a
    redirect)."""

    def __init__(
        self,
        statuses: tuple[int, ...] = (200,),
        reply: bytes = b"ok",
        headers=None,
        delay: float = 0.0,
    ) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.reply = reply
        self.answer_headers = dict(headers or {})
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    count = len(receiver.received)
                    status = receiver.statuses[min(count, len(receiver.statuses)) - 1]
                time.sleep(receiver.delay)
                self.send_response(status)
                for name, value in receiver.answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                self.wfile.write(receiver.reply)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/castboard"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, once they have all arrived."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} requests came"
            time.sleep(0.05)
        return self.received[:count]


@contextlib.contextmanager
def receiving(**options) -> Iterator[Receiver]:
    """A running Receiver(**options), stopped afterwards (tests make theirs fixtures)."""
    running = Receiver(**options).start()
    try:
        yield running
    finally:
        running.stop()
