"""`dns+http://NAME:PORT` entries: every address is a replica, found again every few seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import pytest
from pydantic import ValidationError

from gateway.replicas.client import InferenceClient
from gateway.replicas.discovery import replica_url
from gateway.settings import GatewaySettings, parse_entries
from tests.fake_inference_server import FakeInferenceServer
from tests.support import eventually

ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


class ScriptedResolver:
    """A DNS stand-in whose answer the test changes, like pods joining and leaving a headless Service."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.failing = False
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if self.failing:
            raise OSError("Temporary failure in name resolution")
        return list(self.addresses)


@pytest.fixture
def same_port_replicas() -> Iterator[list[FakeInferenceServer]]:
    """Real replicas on three loopback addresses sharing one port, as pods behind one Service name."""
    with ExitStack() as stack:
        first = stack.enter_context(FakeInferenceServer(host=ADDRESSES[0]))
        port = int(first.url.rsplit(":", 1)[1])
        others = [stack.enter_context(FakeInferenceServer(host=host, port=port)) for host in ADDRESSES[1:]]
        yield [first, *others]


def discovery_settings(url: str) -> GatewaySettings:
    return GatewaySettings(
        inference_url=url,
        inference_probe_interval_s=0.1,
        inference_resolve_interval_s=0.1,
        inference_backoff_s=0.01,
        inference_backoff_max_s=0.02,
    )


@pytest.fixture
async def discovered(
    same_port_replicas: list[FakeInferenceServer],
) -> AsyncIterator[tuple[InferenceClient, ScriptedResolver]]:
    port = same_port_replicas[0].url.rsplit(":", 1)[1]
    resolver = ScriptedResolver(ADDRESSES[0])
    client = InferenceClient(discovery_settings(f"dns+http://inference.internal:{port}"), resolver=resolver)
    await client.start()
    yield client, resolver
    await client.aclose()


async def test_every_address_of_the_name_is_a_replica_and_new_ones_get_traffic_without_restart(
    same_port_replicas: list[FakeInferenceServer], discovered: tuple[InferenceClient, ScriptedResolver]
) -> None:
    client, resolver = discovered
    assert client.pool.urls == [same_port_replicas[0].url]
    assert resolver.lookups[0][0] == "inference.internal"
    resolver.addresses = list(ADDRESSES)
    await eventually(lambda: len(ready_urls(client)) == 3)
    for server in same_port_replicas:
        server.delay_s = 0.5
    await asyncio.gather(*(client.caption(b"x", "image/jpeg", "r") for _ in range(3)))
    assert [server.captions_served for server in same_port_replicas] == [1, 1, 1]


async def test_a_vanished_address_is_dropped_once_its_request_is_done(
    same_port_replicas: list[FakeInferenceServer], discovered: tuple[InferenceClient, ScriptedResolver]
) -> None:
    client, resolver = discovered
    leaving = same_port_replicas[0]
    leaving.delay_s = 4.0  # still answering after several resolve rounds, even on a slow machine
    task = asyncio.create_task(client.caption(b"x", "image/jpeg", "r"))
    await eventually(lambda: leaving.in_flight == 1)
    resolver.addresses = [ADDRESSES[1]]
    await eventually(lambda: same_port_replicas[1].url in client.pool.urls)
    assert leaving.url in client.pool.urls  # still answering: kept until idle, but chosen no more
    await client.caption(b"x", "image/jpeg", "r")
    assert same_port_replicas[1].captions_served == 1
    await task
    assert client.pool.urls == [same_port_replicas[1].url]


async def test_an_address_back_in_dns_before_it_left_stays_a_replica(
    same_port_replicas: list[FakeInferenceServer], discovered: tuple[InferenceClient, ScriptedResolver]
) -> None:
    client, resolver = discovered
    flapping = same_port_replicas[0]
    flapping.delay_s = 4.0  # still answering after several resolve rounds, even on a slow machine
    task = asyncio.create_task(client.caption(b"x", "image/jpeg", "r"))
    await eventually(lambda: flapping.in_flight == 1)
    resolver.addresses = [ADDRESSES[1]]
    await eventually(lambda: "Leaving" in client.pool.readiness().replicas[0].detail)
    resolver.addresses = [ADDRESSES[0], ADDRESSES[1]]
    await eventually(lambda: "Leaving" not in client.pool.readiness().replicas[0].detail)
    await task
    assert client.pool.urls == [flapping.url, same_port_replicas[1].url]


async def test_a_failed_lookup_keeps_the_replicas_already_known(
    discovered: tuple[InferenceClient, ScriptedResolver],
) -> None:
    client, resolver = discovered
    resolver.failing = True
    lookups = len(resolver.lookups)
    await eventually(lambda: len(resolver.lookups) > lookups + 2)
    assert len(client.pool.urls) == 1
    assert (await client.readiness()).ready


async def test_localhost_is_resolved_by_the_system_resolver() -> None:
    with FakeInferenceServer() as server:
        port = server.url.rsplit(":", 1)[1]
        client = InferenceClient(discovery_settings(f"dns+http://localhost:{port}"))
        await client.start()
        try:
            assert server.url in client.pool.urls  # http://127.0.0.1:PORT (and [::1] where localhost has it)
            for _ in range(3):
                assert (await client.caption(b"x", "image/jpeg", "r")).caption
        finally:
            await client.aclose()
    assert server.captions_served == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("dns+http://inference", "needs a port"),
        ("ftp://inference:3000", "does not start with one of"),
        (" , ", "at least one URL"),
        ("http://", "names no host"),
    ],
)
def test_bad_inference_entries_are_refused_at_start(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(inference_url=value)


def test_entries_and_replica_urls() -> None:
    plain, named = parse_entries(["http://a:3000", "dns+https://inference:8443"])
    assert (plain.discover, plain.url, plain.port) == (False, "http://a:3000", 3000)
    assert (named.discover, named.host, named.scheme) == (True, "inference", "https")
    assert replica_url(named, "10.0.0.7") == "https://10.0.0.7:8443"
    assert replica_url(named, "fd00::7") == "https://[fd00::7]:8443"


def ready_urls(client: InferenceClient) -> list[str]:
    return [view.url for view in client.pool.readiness().replicas if view.state.value == "ready"]
