"""Which addresses a feed and its photos may be fetched from: public ones only, checked for the address actually
connected (after every redirect, and whatever DNS answers), unless FEED_ALLOWED_NETWORKS names a network
deliberately (a shop's own LAN, or 127.0.0.1 for a feed served on the same machine)."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Sequence
from typing import Any

import httpcore

from indexing.errors import DownloadError, FeedError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# In this order: an address of several kinds (169.254.0.1 is private too) is called by the most telling one.
KINDS = {"loopback": "a loopback address", "link_local": "a link-local address", "multicast": "a multicast address",
         "unspecified": "an unspecified address", "private": "a private address", "reserved": "a reserved address"}
METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))


def allowed_networks(env: os._Environ[str] | dict[str, str] = os.environ) -> tuple[Network, ...]:
    """FEED_ALLOWED_NETWORKS: comma-separated addresses or networks (127.0.0.1, 10.0.0.0/8) a feed may use."""
    networks = []
    for part in env.get("FEED_ALLOWED_NETWORKS", "").replace(" ", "").split(","):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise FeedError(f"FEED_ALLOWED_NETWORKS: {part!r} is not an address or a network") from None
    return tuple(networks)


def refusal(address: str, allowed: Sequence[Network] = ()) -> str | None:
    """Why a feed may not be fetched from this address (None: it may): loopback, private, link-local, or any other
    address that is not on the public internet, unless one of the allowed networks holds it."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    ip = mapped or ip
    if any(ip in network for network in allowed):
        return None
    if ip in METADATA:
        return "a cloud metadata address"
    for kind, phrase in KINDS.items():
        if getattr(ip, f"is_{kind}"):
            return phrase
    return None if ip.is_global else "not a public address"


class PublicOnly(httpcore.NetworkBackend):
    """httpcore's connections, made only to the addresses refusal() lets through: each address DNS gives is
    checked before connecting, and the peer once connected (so a name that changes its answer cannot slip by)."""

    def __init__(self, allowed: Sequence[Network]):
        self.inner = httpcore.SyncBackend()
        self.allowed = tuple(allowed)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        refused, failure = [], None
        for *_, sockaddr in answers:
            address = str(sockaddr[0])
            why = refusal(address, self.allowed)
            if why:
                refused.append(f"{address} is {why}")
                continue
            try:
                stream = self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # the next address may answer
                failure = exc
                continue
            peer = str(stream.get_extra_info("socket").getpeername()[0])
            why = refusal(peer, self.allowed)
            if why:
                stream.close()
                refused.append(f"{peer} is {why}")
                continue
            return stream
        if failure is not None:
            raise failure
        raise DownloadError(f"{host}: refused, {'; '.join(dict.fromkeys(refused))} (set FEED_ALLOWED_NETWORKS "
                            "to fetch from it deliberately)")

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None
                            ) -> httpcore.NetworkStream:
        return self.inner.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)
