"""A real gateway process: killed with SIGKILL mid-batch, restarted; inference outage and recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_inference_server import FakeInferenceServer
from tests.processes import ServiceProcess, gateway_process, image_details, wait_for_images
from tests.support import make_image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture
def fake_server() -> Iterator[FakeInferenceServer]:
    with FakeInferenceServer(delay_s=0.25) as server:
        yield server


def upload_all(gateway: ServiceProcess, count: int) -> list[str]:
    ids = []
    for number in range(count):
        data = make_image_bytes((900 + number, 700), color=(number * 9 % 255, 80, 160))
        response = httpx.post(
            f"{gateway.url}/api/images",
            files={"image": (f"{number}.jpg", data, "image/jpeg")},
            headers={"X-Request-ID": f"upload-{number}"},
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def thumbnail_files(data_dir: Path, image_id: str) -> dict[str, tuple[int, int]]:
    folder = data_dir / "thumbnails" / image_id[:2] / image_id
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.glob("*")}


def data_dir(gateway: ServiceProcess) -> Path:
    return Path(gateway.env["GATEWAY_DATA_DIR"])


def test_sigkill_mid_batch_loses_nothing_and_redoes_no_finished_work(
    tmp_path: Path, fake_server: FakeInferenceServer
) -> None:
    # Slow captions keep most of the batch unfinished at the kill, even on a loaded machine
    # where the twelve uploads themselves take a while.
    fake_server.delay_s = 1.0
    gateway = gateway_process(tmp_path, fake_server.url)
    gateway.start()
    try:
        ids = upload_all(gateway, 12)
        deadline = time.monotonic() + 30
        while sum(image_details(gateway, image_id)["status"] == "completed" for image_id in ids) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = {image_id: image_details(gateway, image_id) for image_id in ids}
        gateway.kill()
    finally:
        gateway.stop()
    assert any(body["status"] != "completed" for body in before.values()), "the kill came too late to test anything"
    thumbnailed = {
        image_id: thumbnail_files(data_dir(gateway), image_id)
        for image_id, body in before.items()
        if body["thumbnails"]["small"] is not None
    }

    fake_server.delay_s = 0.05
    gateway.start()
    try:
        wait_for_images(gateway, ids, ("completed",))
        for image_id in ids:
            files = thumbnail_files(data_dir(gateway), image_id)
            assert sorted(files) == ["medium.jpg", "small.jpg"]
            if image_id in thumbnailed:
                assert files == thumbnailed[image_id], f"thumbnails of {image_id} were written again"
        assert list((data_dir(gateway) / "uploads").iterdir()) == []
        stats = httpx.get(f"{gateway.url}/api/stats").json()
        assert stats["total"] == 12
        assert stats["by_status"]["completed"] == 12
        assert len(httpx.get(f"{gateway.url}/api/images", params={"limit": 500}).json()["items"]) == 12
    finally:
        gateway.stop()


def test_inference_outage_then_recovery_requeues_and_completes(
    tmp_path: Path, fake_server: FakeInferenceServer
) -> None:
    fake_server.up = False
    gateway = gateway_process(tmp_path, fake_server.url)
    gateway.start()
    try:
        ids = upload_all(gateway, 3)
        wait_for_images(gateway, ids, ("failed",))
        for image_id in ids:
            body = image_details(gateway, image_id)
            assert body["caption"] == {"text": None, "status": "unavailable", "model": None, "precision": None,
                                       "error": body["caption"]["error"], "recaption": None}  # fmt: skip
            assert "503" in body["error"]
        ready = httpx.get(f"{gateway.url}/health/ready").json()
        assert ready["status"] == "ready"
        assert ready["inference"]["ready"] is False
        fake_server.up = True
        wait_for_images(gateway, ids, ("completed",))
        assert all(image_details(gateway, image_id)["caption"]["text"] for image_id in ids)
        # each caption request carried the request id of the upload it belongs to
        assert {f"upload-{number}" for number in range(len(ids))} <= set(fake_server.request_ids)
    finally:
        gateway.stop()
