"""Entries of ``GATEWAY_INFERENCE_URL`` and DNS resolution of ``dns+http://NAME:PORT`` entries."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

DNS_PREFIX = "dns+"

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class InferenceEntry:
    """One comma-separated entry: a base URL, or a name whose every address is a replica."""

    raw: str
    scheme: str
    host: str
    port: int
    discover: bool

    @property
    def url(self) -> str:
        return self.raw


def parse_entries(urls: list[str]) -> list[InferenceEntry]:
    """Parse entries; a ``dns+`` entry must name its port (there is no sensible default)."""
    entries: list[InferenceEntry] = []
    for raw in urls:
        discover = raw.startswith(DNS_PREFIX)
        parts = urlsplit(raw.removeprefix(DNS_PREFIX))
        if not parts.hostname:
            raise ValueError(f"The inference entry {raw!r} names no host.")
        if discover and parts.port is None:
            raise ValueError(f"The inference entry {raw!r} needs a port, as in dns+http://inference:3000.")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        entries.append(InferenceEntry(raw, parts.scheme, parts.hostname, port, discover))
    return entries


def replica_url(entry: InferenceEntry, address: str) -> str:
    """The base URL of the replica at ``address`` found through ``entry``."""
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"{entry.scheme}://{host}:{entry.port}"


async def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a Kubernetes headless Service lists each ready pod)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})
