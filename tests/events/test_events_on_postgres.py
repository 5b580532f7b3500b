"""Events on PostgreSQL: a stream on gateway A shows what gateway B did, woken by NOTIFY."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.events.sse import SseRead, read_sse, upload
from tests.fake_inference_server import FakeInferenceServer
from tests.processes import ServiceProcess, gateway_process, wait_for_images
from tests.repository_backends import postgres_schema_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


def test_a_client_on_gateway_a_sees_an_image_that_gateway_b_finished(tmp_path: Path, database_url: str) -> None:
    # A only serves the stream; its poll and heartbeat are 60 s, so only NOTIFY can wake it in time.
    quiet = {"DATABASE_URL": database_url, "GATEWAY_EVENTS_POLL_INTERVAL_S": "60", "GATEWAY_EVENTS_HEARTBEAT_S": "60"}
    with FakeInferenceServer(delay_s=0.2) as fake_server:
        gateway_a = gateway_process(tmp_path / "a", fake_server.url, GATEWAY_WORKERS="0", **quiet)
        gateway_b = gateway_process(tmp_path / "b", fake_server.url, DATABASE_URL=database_url)
        gateways: list[ServiceProcess] = [gateway_a, gateway_b]
        try:
            for gateway in gateways:
                gateway.start()
            live = SseRead()
            reader = threading.Thread(
                target=read_sse,
                args=(f"{gateway_a.url}/api/events", lambda read: len(read.messages) >= 2),
                kwargs={"into": live, "timeout_s": 90},
            )
            reader.start()
            assert live.connected.wait(30)  # headers sent: the stream's starting point is taken
            image_id = upload(gateway_b)
            wait_for_images(gateway_b, [image_id], ("completed",))
            reader.join(30)
            assert not reader.is_alive(), f"gateway A's stream did not wake: {live}"
            assert [message["event"] for message in live.messages] == ["image.accepted", "image.completed"]
            assert {data["id"] for data in live.data()} == {image_id}
            assert live.data()[1]["caption"]
        finally:
            for gateway in gateways:
                gateway.stop()
