"""A real HTTP server on loopback for import tests: each path answers as a test tells it to."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Answer = Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        answer = self.server.routes.get(self.path)
        if answer is None:
            self.send_error(404, "Not Found")
            return
        # The client hangs up mid-answer once it has refused the file, as it should.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            answer(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, family: socket.AddressFamily) -> None:
        self.address_family = family
        super().__init__((host, 0), _Handler)
        self.routes: dict[str, Answer] = {}
        self.requests: list[tuple[str, str]] = []
        self.released = threading.Event()


class WebServer:
    """What a test sees of the server: its URLs, its routes and the requests it received."""

    def __init__(self, server: _Server, host: str) -> None:
        self._server = server
        self.host = host
        self.port = server.server_address[1]

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if isinstance(self._server.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def route(self, path: str, answer: Answer) -> str:
        self._server.routes[path] = answer
        return self.url(path)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(path, Host header) of every request received, in order."""
        return list(self._server.requests)

    @property
    def released(self) -> threading.Event:
        """Set when the test ends, so stalled answers stop waiting."""
        return self._server.released


@contextmanager
def serving(host: str = "127.0.0.1", *, tls_folder: Path | None = None) -> Iterator[WebServer]:
    """Serve on `host`, over TLS with a self-signed certificate when given a folder for it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = _Server(host, family)
    if tls_folder is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*_self_signed(host, tls_folder))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield WebServer(server, host)
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _self_signed(host: str, folder: Path) -> tuple[Path, Path]:
    """A certificate for `host` that no certificate authority vouches for."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# --- Answers -------------------------------------------------------------------------------


def file(body: bytes, content_type: str = "image/png", *, length: int | None = None) -> Answer:
    """200 with `body`; Content-Length is the real one unless `length` claims another."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def endless(content_type: str = "image/png", chunk: bytes = b"\x00" * 4096) -> Answer:
    """200 without Content-Length, then bytes until the client hangs up (or the test ends)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Connection", "close")
        handler.end_headers()
        while not handler.server.released.is_set():
            handler.wfile.write(chunk)
            handler.wfile.flush()

    return answer


def stall(*, after_headers: bool) -> Answer:
    """Say nothing (or only the headers), until the test ends."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if after_headers:
            handler.send_response(200)
            handler.send_header("Content-Type", "image/png")
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            handler.wfile.flush()
        handler.server.released.wait(30)

    return answer


def trickle(every: float = 0.2, *, then_stall_after: float | None = None) -> Answer:
    """200 with a large Content-Length, then one byte every `every` seconds.

    With `then_stall_after`, it goes silent after that many seconds (until the test ends).
    """

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        started = time.monotonic()
        while not handler.server.released.is_set():
            if then_stall_after is not None and time.monotonic() - started > then_stall_after:
                handler.server.released.wait(30)
                return
            handler.wfile.write(b"\x89")
            handler.wfile.flush()
            time.sleep(every)

    return answer


def redirect(location: str, status: int = 302) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def status(code: int) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_error(code)

    return answer
