"""Fetches a reference file from a web address: public hosts only, capped in size and time.

The server does the fetching, so the address is someone else's choice and must never
make Castboard reach inside its own network (cloud metadata, databases, admin ports).
Every hop resolves the host here, refuses unless every address it resolves to is
public, then connects to that checked address itself (the URL's host travels only as
the Host header and TLS server name), so a second DNS answer cannot swap it for a
private one. Redirects are followed here too, each hop checked the same way.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile

from characters.reference_checks import format_bytes
from jobs.netguard import (  # noqa: F401 - is_public_address is part of this module's API
    IPNetwork,
    address_allowed,
    is_local_name,
    is_public_address,
    parse_networks,
)

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PRIVATE = "That address is on a private network; Castboard only fetches public addresses."
REDIRECTED_TO_PRIVATE = (
    "That address redirects to a private network; Castboard only fetches public addresses."
)
USER_AGENT = "Castboard reference import"

_CHUNK = 64 * 1024
_SHOWN_URL_LENGTH = 80


class FetchRefused(Exception):
    """An address or download we will not use, with a message for the person who gave it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Expired(Exception):
    """The fetch ran out of time."""


# --- Which addresses may be fetched ---------------------------------------------------------


def allowed_networks() -> tuple[IPNetwork, ...]:
    """The private networks the settings open to imports (none unless a test asks)."""
    return parse_networks(
        settings.REFERENCE_IMPORT_ALLOWED_NETWORKS, setting="REFERENCE_IMPORT_ALLOWED_NETWORKS"
    )


# --- One address to fetch -----------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: str  # normalised, with the host name: what redirects are resolved against
    scheme: str
    host: str  # an IDNA-encoded name or an IP address, without brackets
    port: int
    path: str  # path and query, percent-encoded

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.scheme == "https" else 80
        return host if self.port == default_port else f"{host}:{self.port}"

    def url_at(self, address: str) -> str:
        """This URL with its host replaced by an address already checked."""
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def shown(self) -> str:
        if len(self.url) <= _SHOWN_URL_LENGTH:
            return self.url
        return self.url[: _SHOWN_URL_LENGTH - 1] + "…"

    @property
    def file_name(self) -> str:
        name = PurePosixPath(unquote(urlsplit(self.url).path)).name.strip()
        return name[:120] or self.host


def _target(url: str) -> _Target:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        raise FetchRefused(f"“{url}” is not a web address.") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchRefused("Give an address that starts with https:// or http://.")
    if not parsed.host:
        raise FetchRefused(f"“{url}” is not a web address.")
    if parsed.userinfo:
        raise FetchRefused("Leave the user name and password out of the address.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return _Target(
        url=str(parsed.copy_with(fragment=None)),
        scheme=parsed.scheme,
        host=parsed.raw_host.decode("ascii").lower(),
        port=port,
        path=parsed.raw_path.decode("ascii"),
    )


# --- Time ----------------------------------------------------------------------------------


class Deadline:
    """The fetch's whole time budget.

    Each network wait is given only the time left, and when the budget runs out the
    connection in use is shut down, so a server that trickles bytes or stalls halfway
    cannot keep the request (and the person waiting on it) any longer.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends_at = time.monotonic() + seconds
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()

    def left(self) -> float:
        """Seconds left; raises _Expired when there are none."""
        left = self._ends_at - time.monotonic()
        if self.expired or left <= 0:
            raise _Expired
        return left

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: remember each new connection's socket, to shut at the end."""
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        with self._lock:
            self._socket = sock
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._socket
        if sock is not None:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # shutdown (not close) wakes a read blocked in another thread. A socket already
    # closed has nothing waiting on it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# --- Fetching ------------------------------------------------------------------------------


def reference_fetch(url: str) -> TemporaryUploadedFile:
    """Download the file at `url` into an uploaded file named after the URL's path.

    Only the transport is checked here (address, redirects, size, time); what the file
    is gets decided by its content, as for uploads (characters.reference_checks). Raises
    FetchRefused with a plain reason. The caller closes the returned file.
    """
    allowed = allowed_networks()
    seconds = settings.REFERENCE_IMPORT_TIMEOUT_SECONDS
    target = _target(url)
    with Deadline(seconds) as deadline:
        try:
            for hop in range(MAX_REDIRECTS + 1):
                addresses = _resolve(target, allowed, deadline, redirected=hop > 0)
                with _response(target, addresses, deadline) as response:
                    if response.status_code in REDIRECT_STATUSES:
                        target = _redirect(target, response)
                        continue
                    return _download(target, response, deadline)
        except (_Expired, httpx.TimeoutException):
            raise FetchRefused(f"{target.host} did not answer within {seconds:g} s.") from None
        except httpx.HTTPError:
            if deadline.expired:  # the shut connection surfaced as a broken read
                raise FetchRefused(f"{target.host} did not answer within {seconds:g} s.") from None
            raise FetchRefused(
                f"The download from {target.host} broke off; try again later."
            ) from None
    raise FetchRefused(f"{url} redirects more than {MAX_REDIRECTS} times.")


def _resolve(
    target: _Target, allowed: tuple[IPNetwork, ...], deadline: Deadline, *, redirected: bool
) -> list[str]:
    """The host's addresses, refused unless every one of them may be fetched."""
    refusal = REDIRECTED_TO_PRIVATE if redirected else PRIVATE
    if is_local_name(target.host):
        raise FetchRefused(refusal)
    addresses: list[str] = []
    for info in _lookup(target.host, target.port, deadline):
        address = str(info[4][0])
        if not address_allowed(ipaddress.ip_address(address), allowed):
            raise FetchRefused(refusal)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchRefused(f"No server answers to the name {target.host}.")
    return addresses


def _lookup(host: str, port: int, deadline: Deadline) -> list[tuple]:
    """getaddrinfo, given no longer than the time left (it cannot be interrupted)."""
    found: dict[str, Any] = {}

    def look_up() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            found["error"] = error

    worker = threading.Thread(target=look_up, name="castboard-import-dns", daemon=True)
    worker.start()
    worker.join(deadline.left())
    if worker.is_alive():
        raise _Expired
    if "error" in found:
        raise FetchRefused(f"No server answers to the name {host}.")
    return found["infos"]


@contextlib.contextmanager
def _response(
    target: _Target, addresses: list[str], deadline: Deadline
) -> Iterator[httpx.Response]:
    """The response of the first checked address that accepts a connection.

    A fresh client per hop: a pooled connection must never carry a request for one
    host over a connection (and certificate) made for another.
    """
    failure: httpx.ConnectError | None = None
    for address in addresses:
        client = httpx.Client(verify=_tls(), trust_env=False, follow_redirects=False)
        request = client.build_request(
            "GET",
            target.url_at(address),
            headers={
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Accept": "image/*, video/*;q=0.9, */*;q=0.1",
                "Accept-Encoding": "identity",
            },
            timeout=httpx.Timeout(deadline.left()),
            extensions={"sni_hostname": target.host, "trace": deadline.trace},
        )
        try:
            response = client.send(request, stream=True)
        except httpx.ConnectError as error:
            client.close()
            failure = error
            continue
        except BaseException:
            client.close()
            raise
        try:
            yield response
        finally:
            response.close()
            client.close()
        return
    if deadline.expired:
        raise _Expired
    if failure is not None and _caused_by(failure, ssl.SSLError):
        raise FetchRefused(f"{target.host} did not prove who it is (its certificate is not valid).")
    raise FetchRefused(f"Could not connect to {target.host}.")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One certificate store for every import (loading it costs more than a request)."""
    return httpx.create_ssl_context(trust_env=False)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _redirect(target: _Target, response: httpx.Response) -> _Target:
    location = response.headers.get("Location", "").strip()
    if not location:
        raise FetchRefused(f"{target.host} redirected without saying where to.")
    return _target(urljoin(target.url, location))


def _cap_for(content_type: str) -> int:
    # The declared type only picks which cap to stream against; reference_checks applies the
    # exact one for what the content turns out to be.
    if content_type.startswith("image/"):
        return settings.REFERENCE_IMAGE_MAX_BYTES
    if content_type.startswith("video/"):
        return settings.REFERENCE_CLIP_MAX_BYTES
    return max(settings.REFERENCE_IMAGE_MAX_BYTES, settings.REFERENCE_CLIP_MAX_BYTES)


def _download(
    target: _Target, response: httpx.Response, deadline: Deadline
) -> TemporaryUploadedFile:
    if response.status_code != 200:
        raise FetchRefused(
            f"{target.host} answered {response.status_code} {response.reason_phrase} "
            f"for {target.shown}."
        )
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchRefused(
            f"{target.host} sent the file compressed ({encoding}) although asked not to."
        )
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    cap = _cap_for(content_type)
    too_large = f"The file at {target.shown} is larger than {format_bytes(cap)}."
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > cap:
        raise FetchRefused(too_large)
    # On disk, like a large upload: a clip may be up to REFERENCE_CLIP_MAX_BYTES.
    upload = TemporaryUploadedFile(
        target.file_name, content_type or "application/octet-stream", 0, None
    )
    try:
        size = 0
        for chunk in response.iter_raw(_CHUNK):
            size += len(chunk)
            if size > cap:
                raise FetchRefused(too_large)
            deadline.left()
            upload.write(chunk)
        if deadline.expired:  # a connection shut at the deadline can end like a whole body
            raise _Expired
    except BaseException:
        upload.close()
        raise
    upload.size = size
    upload.seek(0)
    return upload
