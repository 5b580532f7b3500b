"""A real gateway process: killed with SIGKILL mid-batch, restarted; inference outage and recovery."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_inference_server import FakeInferenceServer
from tests.support import REPO_ROOT, make_image_bytes

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GatewayProcess:
    def __init__(self, tmp_path: Path, inference_url: str, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / "data"
        self.env = {
            **os.environ,
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_DATA_DIR": str(self.data_dir),
            "GATEWAY_LOG_DIR": str(tmp_path / "logs"),
            "GATEWAY_INFERENCE_URL": inference_url,
            "GATEWAY_WORKERS": "2",
            "GATEWAY_LEASE_S": "1.5",
            "GATEWAY_POLL_INTERVAL_S": "0.2",
            "GATEWAY_INFERENCE_ATTEMPTS": "2",
            "GATEWAY_INFERENCE_BACKOFF_S": "0.05",
            "GATEWAY_INFERENCE_PROBE_INTERVAL_S": "0.3",
            **settings,
        }
        self.env.pop("DATABASE_URL", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway"], cwd=REPO_ROOT, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the gateway did not start within 30 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def fake_server() -> Iterator[FakeInferenceServer]:
    with FakeInferenceServer(delay_s=0.25) as server:
        yield server


def upload_all(gateway: GatewayProcess, count: int) -> list[str]:
    ids = []
    for number in range(count):
        data = make_image_bytes((900 + number, 700), color=(number * 9 % 255, 80, 160))
        response = httpx.post(f"{gateway.url}/api/images", files={"image": (f"{number}.jpg", data, "image/jpeg")})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def details(gateway: GatewayProcess, image_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{gateway.url}/api/images/{image_id}", timeout=5).json()
    return body


def wait_all(gateway: GatewayProcess, ids: list[str], statuses: tuple[str, ...], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(details(gateway, image_id)["status"] in statuses for image_id in ids):
            return
        time.sleep(0.2)
    raise AssertionError({image_id: details(gateway, image_id)["status"] for image_id in ids})


def thumbnail_files(data_dir: Path, image_id: str) -> dict[str, tuple[int, int]]:
    folder = data_dir / "thumbnails" / image_id[:2] / image_id
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.glob("*")}


def test_sigkill_mid_batch_loses_nothing_and_redoes_no_finished_work(
    tmp_path: Path, fake_server: FakeInferenceServer
) -> None:
    gateway = GatewayProcess(tmp_path, fake_server.url)
    gateway.start()
    try:
        ids = upload_all(gateway, 12)
        deadline = time.monotonic() + 30
        while sum(details(gateway, image_id)["status"] == "completed" for image_id in ids) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = {image_id: details(gateway, image_id) for image_id in ids}
        gateway.kill()
    finally:
        gateway.stop()
    assert any(body["status"] != "completed" for body in before.values()), "the kill came too late to test anything"
    thumbnailed = {
        image_id: thumbnail_files(gateway.data_dir, image_id)
        for image_id, body in before.items()
        if body["thumbnails"]["small"] is not None
    }

    gateway.start()
    try:
        wait_all(gateway, ids, ("completed",))
        for image_id in ids:
            files = thumbnail_files(gateway.data_dir, image_id)
            assert sorted(files) == ["medium.jpg", "small.jpg"]
            if image_id in thumbnailed:
                assert files == thumbnailed[image_id], f"thumbnails of {image_id} were written again"
        assert list((gateway.data_dir / "uploads").iterdir()) == []
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
    gateway = GatewayProcess(tmp_path, fake_server.url)
    gateway.start()
    try:
        ids = upload_all(gateway, 3)
        wait_all(gateway, ids, ("failed",))
        for image_id in ids:
            body = details(gateway, image_id)
            assert body["caption"] == {"text": None, "status": "unavailable", "model": None,
                                       "error": body["caption"]["error"]}  # fmt: skip
            assert "503" in body["error"]
        ready = httpx.get(f"{gateway.url}/health/ready").json()
        assert ready["status"] == "ready"
        assert ready["inference"]["ready"] is False
        fake_server.up = True
        wait_all(gateway, ids, ("completed",))
        assert all(details(gateway, image_id)["caption"]["text"] for image_id in ids)
        assert all(request_id for request_id in fake_server.request_ids)
    finally:
        gateway.stop()
