"""The replica pool with real HTTP replicas: spreading, ejection, trial, failover, readiness, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import pytest
from prometheus_client import generate_latest

from gateway.errors import InferenceModelMissingError, InferenceUnavailableError
from gateway.metrics import GatewayMetrics
from gateway.replicas.client import InferenceClient
from gateway.replicas.pool import CaptionTokensUnservableError, Strategy
from gateway.settings import GatewaySettings
from tests.fake_inference_server import FakeInferenceServer
from tests.support import eventually


@pytest.fixture
def servers() -> Iterator[list[FakeInferenceServer]]:
    """Three real HTTP replicas on loopback, stopped after the test."""
    with ExitStack() as stack:
        yield [stack.enter_context(FakeInferenceServer()) for _ in range(3)]


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Any]]:
    async with AsyncExitStack() as stack:

        async def factory(
            replicas: list[FakeInferenceServer],
            *,
            metrics: GatewayMetrics | None = None,
            strategy: Strategy = Strategy.LEAST_IN_FLIGHT,
            **overrides: Any,
        ) -> InferenceClient:
            values: dict[str, Any] = {
                "inference_url": ",".join(server.url for server in replicas),
                "inference_attempts": 2,
                "inference_backoff_s": 0.01,
                "inference_backoff_max_s": 0.02,
                "inference_probe_interval_s": 0.1,
                "inference_eject_s": 30.0,
            }
            values.update(overrides)
            client = InferenceClient(GatewaySettings(**values), metrics=metrics, strategy=strategy)
            stack.push_async_callback(client.aclose)
            await client.start()
            return client

        yield factory


async def caption(client: InferenceClient) -> str:
    return (await client.caption(b"jpeg", "image/jpeg", "req")).caption


def states(client: InferenceClient) -> dict[str, str]:
    return {replica.url: replica.state.value for replica in client.pool.readiness().replicas}


async def test_concurrent_captions_spread_one_per_replica_by_fewest_in_flight(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    for server in servers:
        server.delay_s = 0.5
    client = await make_client(servers)
    await asyncio.gather(*(caption(client) for _ in range(6)))
    assert [server.captions_served for server in servers] == [2, 2, 2]


async def test_ties_between_idle_replicas_are_broken_at_random(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    client = await make_client(servers)
    for _ in range(30):  # one at a time: every choice is a three-way tie
        await caption(client)
    assert all(server.captions_served > 0 for server in servers), [s.captions_served for s in servers]


async def test_round_robin_takes_turns_whatever_is_in_flight(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    client = await make_client(servers, strategy=Strategy.ROUND_ROBIN)
    for _ in range(9):
        await caption(client)
    assert [server.captions_served for server in servers] == [3, 3, 3]


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (502, None), (503, "30"), (429, "30")])
async def test_a_failing_replica_is_ejected_and_the_caption_served_by_another_at_once(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any], status: int, retry_after: str | None
) -> None:
    broken, *healthy = servers
    broken.caption_status, broken.retry_after = status, retry_after
    client = await make_client(servers, inference_backoff_s=5.0, inference_backoff_max_s=5.0)
    for server in healthy:
        server.delay_s = 0.1  # slow enough that the three captions overlap
    started = time.monotonic()
    captions = await asyncio.gather(*(caption(client) for _ in range(3)))  # one each: the broken one is tried
    assert all(text.startswith("a served caption") for text in captions)
    for _ in range(6):
        await caption(client)
    assert time.monotonic() - started < 4.0  # no back-off sleep: the other replicas answered at once
    assert sum(server.captions_served for server in healthy) == 9
    assert len(broken.request_ids) == 1  # ejected after its failure: no more captions sent there
    assert states(client)[broken.url] == "ejected"
    assert "answered" in client.pool.readiness().replicas[0].detail


async def test_an_unreachable_replica_is_ejected_and_others_keep_serving(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    client = await make_client(servers, inference_probe_interval_s=60)  # still believed ready when it dies
    servers[0].__exit__()  # the port now refuses connections
    servers[1].delay_s = servers[2].delay_s = 0.5
    await asyncio.gather(*(caption(client) for _ in range(3)))  # one each: the dead one must be tried
    assert servers[1].captions_served + servers[2].captions_served == 3
    assert states(client)[servers[0].url] == "ejected"
    assert "could not be reached" in client.pool.readiness().replicas[0].detail


async def test_after_its_back_off_an_ejected_replica_gets_one_trial_request_then_traffic_again(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    flaky, steady, _ = servers
    servers[2].up = False  # not ready: only two replicas take part
    flaky.caption_status = 500
    client = await make_client(servers, inference_eject_s=0.5)
    while flaky.request_ids == []:  # sooner or later the flaky one is chosen and fails
        await caption(client)
    assert states(client)[flaky.url] == "ejected"
    flaky.caption_status, flaky.delay_s, steady.delay_s = None, 1.0, 0.2
    await eventually(lambda: states(client)[flaky.url] == "ready", timeout_s=5)
    assert "On trial" in client.pool.readiness().replicas[0].detail
    served_before = flaky.captions_served
    await asyncio.gather(*(caption(client) for _ in range(4)))
    assert flaky.captions_served == served_before + 1  # half-open: a single trial while the others wait
    assert "On trial" not in client.pool.readiness().replicas[0].detail
    flaky.delay_s = steady.delay_s = 0.3
    await asyncio.gather(*(caption(client) for _ in range(4)))
    assert flaky.captions_served == served_before + 3  # trusted again: its share of the load


async def test_when_every_replica_is_down_the_caption_is_unavailable_after_the_attempts(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    for server in servers:
        server.up = False
    client = await make_client(servers, inference_attempts=3)
    with pytest.raises(InferenceUnavailableError, match="gave up after 3 attempts"):
        await caption(client)
    assert sum(len(server.request_ids) for server in servers) == 3  # one try per attempt, as with one URL
    readiness = await client.readiness()
    assert not readiness.ready
    assert readiness.detail == "None of the 3 inference replicas is ready."
    servers[1].up = True  # back (a restart): ready again before its 30 s ejection ends
    readiness = await client.readiness()
    assert readiness.ready
    assert states(client)[servers[1].url] == "ready"
    assert (await caption(client)).startswith("a served caption")


async def test_a_model_that_failed_to_load_everywhere_fails_fast_without_timed_retries(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    for server in servers:
        server.load_failed = True
    client = await make_client(servers, inference_attempts=4, inference_backoff_s=5.0)
    started = time.monotonic()
    with pytest.raises(InferenceUnavailableError, match="failed to load") as raised:
        await caption(client)
    assert time.monotonic() - started < 2.0
    assert "gave up" not in raised.value.detail
    assert isinstance(raised.value, InferenceModelMissingError)
    assert all(server.request_ids == [] for server in servers)
    servers[0].load_failed = False
    await eventually(lambda: client.pool.readiness().ready, timeout_s=5)
    assert (await caption(client)).startswith("a served caption")


async def test_readiness_lists_every_replica_with_state_in_flight_and_detail(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    servers[1].up = False
    servers[2].delay_s = 4.0  # still in flight after any number of probe rounds on a slow machine
    client = await make_client(servers[1:])
    task = asyncio.create_task(caption(client))
    await eventually(lambda: servers[2].in_flight == 1, timeout_s=5)
    readiness = await client.readiness()
    assert readiness.ready
    assert readiness.detail == "1 of 2 inference replicas are ready."
    assert [(r.url, r.state.value, r.in_flight) for r in readiness.replicas] == [
        (servers[1].url, "unknown", 0),
        (servers[2].url, "ready", 1),
    ]
    assert readiness.replicas[0].detail == "The fake model is down."
    await task


async def test_metrics_count_requests_failures_in_flight_and_ejections_per_replica(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    metrics = GatewayMetrics()
    broken, healthy, _ = servers
    servers[2].up = False
    broken.caption_status = 500
    client = await make_client(servers[:2], metrics=metrics)
    while not broken.request_ids:
        await caption(client)
    text = generate_latest(metrics.registry).decode()
    assert f'gateway_inference_replica_failures_total{{replica="{broken.url}"}} 1.0' in text
    assert f'gateway_inference_replica_ejections_total{{replica="{broken.url}"}} 1.0' in text
    assert f'gateway_inference_replica_requests_total{{replica="{broken.url}"}} 1.0' in text
    served = healthy.captions_served
    assert f'gateway_inference_replica_requests_total{{replica="{healthy.url}"}} {served}.0' in text
    assert f'gateway_inference_replica_in_flight{{replica="{healthy.url}"}} 0.0' in text


async def test_every_replica_has_its_series_at_zero_before_its_first_request(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    metrics = GatewayMetrics()
    await make_client(servers, metrics=metrics)
    text = generate_latest(metrics.registry).decode()
    for server in servers:
        for family in ("requests_total", "failures_total", "ejections_total", "in_flight"):
            assert f'gateway_inference_replica_{family}{{replica="{server.url}"}} 0.0' in text


async def test_start_refuses_a_max_new_tokens_setting_that_a_replica_cannot_serve(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    servers[1].max_new_tokens_limit = 30
    with pytest.raises(CaptionTokensUnservableError) as raised:
        await make_client(servers, caption_max_new_tokens=100)
    message = str(raised.value)
    assert message.endswith(".")
    assert ". " not in message, message  # one sentence
    assert f"GATEWAY_CAPTION_MAX_NEW_TOKENS=100 is more than the inference replica at {servers[1].url}" in message
    assert "at most 30 new tokens" in message
    await make_client(servers, caption_max_new_tokens=30)  # within every limit: starts


async def test_a_replica_that_comes_up_later_with_too_small_a_model_gets_no_captions(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    late = servers[1]
    late.up = False
    client = await make_client(servers[:2], caption_max_new_tokens=100)
    late.up, late.max_new_tokens_limit = True, 30
    await eventually(lambda: "Not used" in client.pool.readiness().replicas[1].detail, timeout_s=5)
    assert states(client)[late.url] == "unknown"
    for _ in range(6):
        await caption(client)
    assert late.request_ids == []
    assert servers[0].captions_served == 6


async def test_with_one_replica_an_ejected_replica_is_still_tried_and_a_success_ends_its_ejection(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    only = servers[0]
    only.caption_status = 500
    client = await make_client([only], inference_attempts=1)
    with pytest.raises(InferenceUnavailableError, match="answered 500"):
        await caption(client)
    assert states(client)[only.url] == "ejected"
    only.caption_status = None
    assert (await caption(client)).startswith("a served caption")  # no ready replica: today's behaviour, try it
    assert states(client)[only.url] == "ready"


def queue_full(server: FakeInferenceServer) -> InferenceUnavailableError:
    return InferenceUnavailableError(f"The inference service at {server.url} answered 503: its queue is full")


async def test_a_success_of_a_request_sent_before_an_ejection_neither_ends_it_nor_skips_the_trial(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    overloaded, other, _ = servers
    client = await make_client(servers[:2], inference_eject_s=0.3)
    pool, only_overloaded = client.pool, {other.url}  # a round that tried the other one: the pool must pick ours
    earlier = pool.acquire(only_overloaded)  # a slow request, queued there before the replica fails
    failing = pool.acquire(only_overloaded)
    assert earlier is not None and failing is not None and earlier.url == failing.url == overloaded.url
    pool.release(failing, queue_full(overloaded))
    assert states(client)[overloaded.url] == "ejected"
    pool.release(earlier, None)  # the slow one succeeds after the ejection
    assert states(client)[overloaded.url] == "ejected"  # its back-off still runs
    assert "Ejected for 0.3 s" in client.pool.readiness().replicas[0].detail
    assert pool.acquire(only_overloaded) is None
    await eventually(lambda: states(client)[overloaded.url] == "ready", timeout_s=5)
    assert "On trial" in client.pool.readiness().replicas[0].detail
    trial = pool.acquire(only_overloaded)
    assert trial is not None and trial.url == overloaded.url
    assert pool.acquire(only_overloaded) is None  # half-open: one trial request at a time
    pool.release(trial, queue_full(overloaded))
    assert "Ejected for 0.6 s" in client.pool.readiness().replicas[0].detail  # the streak went on: doubled


async def test_a_failure_of_a_request_sent_before_an_ejection_does_not_eject_it_again(
    servers: list[FakeInferenceServer], make_client: Callable[..., Any]
) -> None:
    overloaded, other, _ = servers
    client = await make_client(servers[:2], inference_eject_s=0.3)
    pool, only_overloaded = client.pool, {other.url}
    earlier, failing = pool.acquire(only_overloaded), pool.acquire(only_overloaded)
    assert earlier is not None and failing is not None
    pool.release(failing, queue_full(overloaded))
    await eventually(lambda: states(client)[overloaded.url] == "ready", timeout_s=5)
    pool.release(earlier, queue_full(overloaded))  # the slow one fails after the back-off
    assert states(client)[overloaded.url] == "ready"  # still on trial, not ejected again for longer
    assert "On trial" in client.pool.readiness().replicas[0].detail
    trial = pool.acquire(only_overloaded)
    assert trial is not None and trial.url == overloaded.url
    pool.release(trial, None)
    assert "On trial" not in client.pool.readiness().replicas[0].detail
