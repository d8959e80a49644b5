"""The HTTP client every provider call goes through: it connects to public addresses only.

A provider account's base URL is typed by a workspace owner (anyone can create a
workspace and own it), and result links (`video_url`) are chosen by the provider. Both
are someone else's say-so, so neither may make a worker reach inside our own network,
where it would also carry the account's API key. Every new connection resolves its host
here, refuses unless every address is public or inside PROVIDER_ALLOWED_NETWORKS (an
operator's self-hosted gateway, the emulators of `make run`), and connects to the
address it checked; TLS still verifies the host name. Pooled connections stay on the
address they were checked at, so a later DNS answer cannot move them.
"""

from __future__ import annotations

import socket
import ssl
import typing
from functools import cache

import httpcore
import httpx
from django.conf import settings

from jobs import netguard

PRIVATE = (
    "{where} is on a private network; Castboard only sends provider requests, and "
    "the account's key, to public addresses. An operator can allow a self-hosted gateway's "
    "network with PROVIDER_ALLOWED_NETWORKS."
)


def allowed_networks() -> tuple[netguard.IPNetwork, ...]:
    return netguard.parse_networks(
        settings.PROVIDER_ALLOWED_NETWORKS, setting="PROVIDER_ALLOWED_NETWORKS"
    )


def base_url_problem(url: str) -> str | None:
    """Why a provider account may not use this base URL, or None (checked when it is saved)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "Give the provider's address, e.g. https://api.example.com/v1."
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "Give an address that starts with https:// (or http://)."
    if parsed.userinfo:
        return "Leave the user name and password out of the address; the API key goes below."
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        netguard.check_url_host(parsed.host, port, allowed=allowed_networks(), refusal=PRIVATE)
    except netguard.AddressRefused as refused:
        return refused.message
    return None


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's own socket backend, but every TCP connect goes to a checked address."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = netguard.resolve_allowed(
                host, port, allowed=allowed_networks(), refusal=PRIVATE
            )
        except socket.gaierror as error:
            raise httpcore.ConnectError(str(error)) from error
        failure: Exception = httpcore.ConnectError(f"No address to connect to for {host}.")
        for address in addresses:
            try:
                return super().connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure


@cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle takes ~30 ms."""
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a connection pool whose sockets go through _GuardedBackend."""

    def __init__(self) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        self._pool.close()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(),
        )


def guarded_client(timeout: float) -> httpx.Client:
    """A client for provider calls: public addresses only, no redirects, no proxy from the
    environment (a proxy would be the one address checked), `timeout` per network wait."""
    return httpx.Client(
        transport=GuardedTransport(),
        timeout=httpx.Timeout(timeout, connect=5.0),
        follow_redirects=False,
        trust_env=False,
    )
