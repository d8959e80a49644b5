"""Emulators on free loopback ports, a small HTTP client, and local servers to talk back to them.

Everything goes through real HTTP over loopback, like a provider adapter would.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.render import render_video
from jobs.emulators.seedance import SeedanceEmulator
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY

TOKEN = "sk-test"


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def encode_multipart(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """multipart/form-data from text fields and (filename, content type, data) files."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, content_type, data) in files.items():
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def call(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    fields: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[str, str, bytes]] | None = None,
    token: str | None = TOKEN,
    timeout: float = 10.0,
) -> Reply:
    headers: dict[str, str] = {}
    data: bytes | None = None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    elif fields is not None or files is not None:
        data, headers["Content-Type"] = encode_multipart(fields or {}, files or {})
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, error.read())


class Api:
    """Calls under an emulator's base URL (`/v1`), plus its control endpoints."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self.emulator = emulator
        self.base = emulator.api_url

    def get(self, path: str, **kwargs: Any) -> Reply:
        return call("GET", self.base + path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return call("POST", self.base + path, json_body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return call("DELETE", self.base + path, **kwargs)

    def control(self, name: str, body: Any = None) -> Any:
        method = "GET" if body is None else "POST"
        reply = call(method, f"{self.emulator.url}/_emulator/{name}", json_body=body, token=None)
        assert reply.status == 200, reply.body
        return reply.json()

    def wait(
        self, path: str, *, until: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll `path` until `until(resource)`; the resource is returned."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self.get(path)
            assert reply.status == 200, reply.body
            resource = reply.json()
            if until(resource):
                return resource
            assert time.monotonic() < deadline, f"gave up waiting: {resource}"
            time.sleep(0.05)


@pytest.fixture
def openai_api(openai_emulator: RunningEmulator) -> Api:
    return Api(openai_emulator)


@pytest.fixture
def relay_api(relay_emulator: RunningEmulator) -> Api:
    return Api(relay_emulator)


@pytest.fixture
def seedance_emulator() -> Iterator[RunningEmulator]:
    running = serve(SeedanceEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()


@pytest.fixture
def seedance_api(seedance_emulator: RunningEmulator) -> Api:
    return Api(seedance_emulator)


@pytest.fixture(scope="session")
def clip() -> Callable[[float], bytes]:
    """A small real MP4 of the given length (cached): for character uploads."""
    cache: dict[float, bytes] = {}

    def make(seconds: float) -> bytes:
        if seconds not in cache:
            cache[seconds] = render_video(
                prompt="reference clip", seconds=seconds, width=160, height=120, fps=6
            ).video
        return cache[seconds]

    return make


# --- Local servers the emulators talk to ------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    """A loopback HTTP server: serves `files` on GET, records POSTs and answers `post_status`."""

    server: ThreadingHTTPServer
    files: dict[str, bytes] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    post_statuses: list[int] = field(default_factory=list)  # consumed in order, then 204

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"only {len(self.received)} of {count} arrived"
            time.sleep(0.02)
        return list(self.received)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    state: dict[str, LocalServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            data = state["server"].files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            server = state["server"]
            server.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status = server.post_statuses.pop(0) if server.post_statuses else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state["server"] = LocalServer(server=httpd)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state["server"]
    httpd.shutdown()
    httpd.server_close()
    thread.join()
