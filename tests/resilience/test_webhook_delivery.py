"""Webhooks from a real gateway process: a receiver that is down gets every event once it is back, across a SIGKILL."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.fake_inference_server import FakeInferenceServer
from tests.processes import gateway_process, wait_for_images
from tests.support import eventually_blocking, make_image_bytes
from tests.unit.test_webhook_signing import SECRET
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow
IMAGES = 6


def test_a_receiver_down_through_a_gateway_sigkill_gets_every_event_once_back(tmp_path: Path) -> None:
    receiver = WebhookReceiver()  # not listening yet: every attempt is refused
    with FakeInferenceServer(delay_s=0.05) as inference:
        gateway = gateway_process(
            tmp_path, inference.url, GATEWAY_WEBHOOK_URLS=receiver.url, GATEWAY_WEBHOOK_SECRET=SECRET,
            GATEWAY_WEBHOOK_BACKOFF_S="0.2", GATEWAY_WEBHOOK_BACKOFF_MAX_S="1", GATEWAY_WEBHOOK_POLL_INTERVAL_S="0.2",
        )  # fmt: skip
        gateway.start()
        try:
            ids = []
            for number in range(IMAGES):
                data = make_image_bytes((80 + number, 60), color=(number * 30, 90, 140))
                response = httpx.post(f"{gateway.url}/api/images", files={"image": (f"{number}.jpg", data)})
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
            wait_for_images(gateway, ids, ("completed",))
            failures = _metric(gateway.url, "gateway_webhook_failures_total")
            assert failures > 0, "the receiver was down: attempts must have failed"
            gateway.kill()
            with receiver:
                gateway.start()
                eventually_blocking(lambda: len(set(receiver.event_ids())) >= 2 * IMAGES, 60, "every delivery")
        finally:
            gateway.stop()
            receiver.stop()

    kinds: dict[str, set[str]] = defaultdict(set)
    for item in receiver.received:
        payload = Webhook(SECRET).verify(item.body, item.headers)
        assert payload["event_id"] == int(item.headers["webhook-id"])
        kinds[payload["data"]["id"]].add(payload["type"])
    assert kinds == {image_id: {"image.accepted", "image.completed"} for image_id in ids}


def _metric(base_url: str, name: str) -> float:
    for line in httpx.get(f"{base_url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
