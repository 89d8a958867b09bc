"""Source address allow-list for the CleverTap-facing endpoints, proxy-aware.

``X-Forwarded-For`` is a list that every proxy appends the address it received from to; anyone
can forge the left part of it. So it is believed only as far as trusted proxies vouch for it:
walk from the connection's peer leftwards through the header while the address at hand is a
trusted proxy, and stop at the first one that is not: that is the client. A peer that is not a
trusted proxy is the client, whatever its header says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> IPNetwork:
    """A CIDR (``10.0.0.0/8``) or a single address; host bits must be zero."""
    return ipaddress.ip_network(text.strip(), strict=True)


def parse_address(text: str) -> IPAddress | None:
    """An address as found in a peer name or ``X-Forwarded-For``; None when it is not one.

    IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``, seen on dual-stack sockets) become IPv4 so
    that IPv4 allow-list entries match them.
    """
    value = text.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:443"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: Sequence[str],
                   trusted_proxies: Sequence[IPNetwork]) -> IPAddress | None:
    """The client's address, or None when it cannot be told (then refuse the request).

    ``forwarded_for`` holds the ``X-Forwarded-For`` header values in the order received.
    """
    current = parse_address(peer) if peer else None
    if current is None:
        return None
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    while hops and _within(current, trusted_proxies):
        current = parse_address(hops.pop())
        if current is None:  # a trusted proxy passed on garbage: nothing to trust left of it
            return None
    return current


@dataclass(frozen=True)
class SourcePolicy:
    """Which client addresses may use the CleverTap-facing endpoints."""

    allowed: tuple[IPNetwork, ...] = ()
    trusted_proxies: tuple[IPNetwork, ...] = ()

    @property
    def restricts(self) -> bool:
        return bool(self.allowed)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> IPAddress | None:
        return client_address(peer, forwarded_for, self.trusted_proxies)

    def admits(self, client: IPAddress | None) -> bool:
        """True when no allow-list is set, or ``client`` is inside it."""
        if not self.allowed:
            return True
        return client is not None and _within(client, self.allowed)
