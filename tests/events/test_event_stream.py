"""``GET /api/events`` from real gateway processes: resume across a restart, filters, heartbeats."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.events.sse import SseRead, read_sse, upload
from tests.fake_inference_server import FakeInferenceServer
from tests.processes import ServiceProcess, gateway_process, wait_for_images

QUICK = {"GATEWAY_EVENTS_HEARTBEAT_S": "0.3", "GATEWAY_EVENTS_POLL_INTERVAL_S": "0.2"}


@pytest.fixture
def fake_server() -> Iterator[FakeInferenceServer]:
    with FakeInferenceServer() as server:
        yield server


@pytest.fixture
def gateways() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for gateway in started:
        gateway.stop()


def started(gateways: list[ServiceProcess], gateway: ServiceProcess) -> ServiceProcess:
    gateways.append(gateway)
    gateway.start()
    return gateway


def test_last_event_id_resumes_across_a_gateway_restart_with_nothing_missed(
    tmp_path: Path, fake_server: FakeInferenceServer, gateways: list[ServiceProcess]
) -> None:
    first = started(gateways, gateway_process(tmp_path, fake_server.url, **QUICK))
    before = upload(first)
    wait_for_images(first, [before], ("completed",))
    seen = read_sse(f"{first.url}/api/events?after=0", until=lambda read: len(read.messages) >= 2)
    assert [message["event"] for message in seen.messages] == ["image.accepted", "image.completed"]
    assert seen.data()[1]["caption"]
    first.stop()

    second = started(gateways, gateway_process(tmp_path, fake_server.url, **QUICK))  # same database
    after = upload(second)
    wait_for_images(second, [after], ("completed",))
    resumed = read_sse(
        f"{second.url}/api/events",
        headers={"Last-Event-ID": seen.messages[0]["id"]},
        until=lambda read: len(read.messages) >= 3,
    )
    assert [(data["id"], message["event"]) for data, message in zip(resumed.data(), resumed.messages, strict=True)] == [
        (before, "image.completed"),
        (after, "image.accepted"),
        (after, "image.completed"),
    ]
    ids = [int(message["id"]) for message in seen.messages[:1] + resumed.messages]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_stream_starts_with_the_next_event_follows_one_image_and_sends_heartbeats(
    tmp_path: Path, fake_server: FakeInferenceServer, gateways: list[ServiceProcess]
) -> None:
    gateway = started(gateways, gateway_process(tmp_path, fake_server.url, **QUICK))
    old = upload(gateway)
    wait_for_images(gateway, [old], ("completed",))
    live = SseRead()
    reader = threading.Thread(
        target=read_sse, args=(f"{gateway.url}/api/events", lambda read: len(read.messages) >= 2), kwargs={"into": live}
    )
    reader.start()
    assert live.connected.wait(30)
    new = upload(gateway, color=(10, 200, 10))
    reader.join(60)
    assert [data["id"] for data in live.data()] == [new, new]
    assert [data["status"] for data in live.data()] == ["pending", "completed"]

    # After the image's two events the stream is quiet: it ends only once two heartbeats came.
    one = read_sse(f"{gateway.url}/api/events?after=0&image={old}", until=lambda read: len(read.comments) >= 2)
    assert one.comments == ["heartbeat", "heartbeat"]
    assert [message["event"] for message in one.messages] == ["image.accepted", "image.completed"]
    assert {data["id"] for data in one.data()} == {old}

    assert httpx.delete(f"{gateway.url}/api/images/{old}", timeout=10).status_code == 204
    deleted = read_sse(f"{gateway.url}/api/events?after=0&image={old}", until=lambda read: len(read.messages) >= 3)
    assert deleted.messages[2]["event"] == "image.deleted"
    assert httpx.get(f"{gateway.url}/api/events", headers={"Last-Event-ID": "x"}, timeout=10).status_code == 400
