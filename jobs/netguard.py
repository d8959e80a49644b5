"""Which network addresses the server may reach on someone else's say-so.

Castboard fetches URLs that users (a reference import), workspace owners (a provider
account's base URL) or providers (a result's download link) choose. None of them may
make the server reach inside its own network: cloud metadata (169.254.169.254),
databases and brokers on private addresses, admin ports on loopback. Each use checks
the addresses a host resolves to and refuses unless every one of them is public, or
inside networks an operator opened explicitly (for tests and self-hosted gateways).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import threading
from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 prefixes whose last 32 bits are an IPv4 address that a NAT64 gateway reaches.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class AddressRefused(Exception):
    """A host we will not connect to, with a message for the person who chose it."""

    def __init__(self, message: str, *, host: str = "", address: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.address = address


def is_public_address(address: IPAddress) -> bool:
    """Whether an address is on the public internet.

    Private, loopback, link-local (169.254.169.254 included), multicast, reserved,
    unspecified and shared (100.64.0.0/10) addresses are not. IPv6 forms that carry an
    IPv4 address (mapped, compatible, 6to4, NAT64) are judged by that address as well.
    """
    if (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global  # for IPv4 this is also what excludes 100.64.0.0/10
    ):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in network for network in _NAT64):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return True


def address_allowed(address: IPAddress, allowed: tuple[IPNetwork, ...] = ()) -> bool:
    """Public, or inside one of the `allowed` networks an operator opened."""
    return is_public_address(address) or any(address in network for network in allowed)


def parse_networks(values: Iterable[str], *, setting: str) -> tuple[IPNetwork, ...]:
    """CIDRs from a setting, e.g. ["127.0.0.1/32"]; a value that is not one stops us by name."""
    return _parse(tuple(values), setting)


@functools.cache
def _parse(values: tuple[str, ...], setting: str) -> tuple[IPNetwork, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value))
        except ValueError:
            raise ImproperlyConfigured(
                f"{setting} must list networks such as 127.0.0.1/32, got {value!r}"
            ) from None
    return tuple(networks)


def is_local_name(host: str) -> bool:
    """`localhost` and its subdomains are always this machine (RFC 6761), whatever DNS says."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def literal_address(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal (brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve_allowed(
    host: str, port: int, *, allowed: tuple[IPNetwork, ...], refusal: str
) -> list[str]:
    """Every address `host` resolves to, or AddressRefused unless all are allowed.

    The refusal's message is `refusal` with {host}, {address} and {where} (the host, with
    the address it resolved to when that differs) filled in.

    All of them, not just the first: a name that also resolves to a private address
    could be steered there by whoever controls its DNS.
    """

    def refused(address: str) -> AddressRefused:
        bare = host.strip("[]")
        where = bare if bare in (address, "localhost") else f"{bare} ({address})"
        return AddressRefused(
            refusal.format(host=host, address=address, where=where), host=host, address=address
        )

    if is_local_name(host):
        raise refused("localhost")
    literal = literal_address(host)
    if literal is not None:
        if not address_allowed(literal, allowed):
            raise refused(str(literal))
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise socket.gaierror(f"No server answers to the name {host}.") from error
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if not address_allowed(ipaddress.ip_address(address), allowed):
            raise refused(address)
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_url_host(
    host: str, port: int, *, allowed: tuple[IPNetwork, ...], refusal: str, wait: float = 3.0
) -> None:
    """Refuse a URL's host now (when it is saved) if it is or resolves to a refused address.

    A name that does not resolve within `wait` seconds passes: it cannot be judged yet,
    and every connection is checked again when it is made.
    """
    if is_local_name(host) or literal_address(host) is not None:
        resolve_allowed(host, port, allowed=allowed, refusal=refusal)
        return
    outcome: dict[str, BaseException] = {}

    def look_up() -> None:
        try:
            resolve_allowed(host, port, allowed=allowed, refusal=refusal)
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=look_up, name="castboard-url-check", daemon=True)
    worker.start()
    worker.join(wait)
    error = outcome.get("error")
    if isinstance(error, AddressRefused):
        raise error
