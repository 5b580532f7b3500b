"""Entries of ``GATEWAY_INFERENCE_URL`` and DNS resolution of ``dns+http://NAME:PORT`` entries."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from gateway.settings import InferenceEntry

Resolver = Callable[[str, int], Awaitable[list[str]]]


def replica_url(entry: InferenceEntry, address: str) -> str:
    """The base URL of the replica at ``address`` found through ``entry``."""
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"{entry.scheme}://{host}:{entry.port}"


async def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a Kubernetes headless Service lists each ready pod)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})
