"""Real service processes for resilience and end-to-end tests: free ports, start, wait, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """``python -m <module>`` with its own environment; output goes to ``<log_dir>/<module>.out``."""

    def __init__(self, module: str, env: dict[str, str], log_dir: Path, ready_path: str = "/health/live") -> None:
        self.module = module
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{self.module}.out").open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], cwd=REPO_ROOT, env=self.env, stdout=output, stderr=output
            )
        try:
            self.wait_for(self.ready_path, timeout_s)
        except BaseException:
            self.stop()  # a start that failed leaves no process behind to fail a later test
            raise

    def wait_for(self, path: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, f"{self.module} exited with {self.process.returncode}"
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.module} did not answer 200 on {path} within {timeout_s:g} s")

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
                self.process.wait(5)


def gateway_process(tmp_path: Path, inference_url: str, **settings: str) -> ServiceProcess:
    env = {
        "GATEWAY_PORT": "0",
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_LOG_DIR": str(tmp_path / "logs"),
        "GATEWAY_INFERENCE_URL": inference_url,
        "GATEWAY_WORKERS": "2",
        "GATEWAY_LEASE_S": "1.5",
        "GATEWAY_POLL_INTERVAL_S": "0.2",
        "GATEWAY_INFERENCE_ATTEMPTS": "2",
        "GATEWAY_INFERENCE_BACKOFF_S": "0.05",
        "GATEWAY_INFERENCE_PROBE_INTERVAL_S": "0.3",
        "DATABASE_URL": "",
        **settings,
    }
    service = ServiceProcess("gateway", env, tmp_path / "logs")
    service.env["GATEWAY_PORT"] = str(service.port)
    return service


def inference_process(tmp_path: Path, model: str, port: int | None = None, **settings: str) -> ServiceProcess:
    env = {
        "INFERENCE_MODEL": model,
        "INFERENCE_MODEL_DIR": str(tmp_path / "models"),
        "INFERENCE_LOG_DIR": str(tmp_path / "logs"),
        "INFERENCE_THREADS": "1",
        **settings,
    }
    service = ServiceProcess("inference", env, tmp_path / "logs", ready_path="/health/ready")
    if port is not None:
        service.port, service.url = port, f"http://127.0.0.1:{port}"
    service.env["INFERENCE_PORT"] = str(service.port)
    return service


def image_details(gateway: ServiceProcess, image_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{gateway.url}/api/images/{image_id}", timeout=10).json()
    return body


def wait_for_images(gateway: ServiceProcess, ids: list[str], statuses: tuple[str, ...], timeout_s: float = 120) -> None:
    """Poll a gateway process until every image in ``ids`` is in one of ``statuses``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(image_details(gateway, image_id)["status"] in statuses for image_id in ids):
            return
        time.sleep(0.2)
    raise AssertionError({image_id: image_details(gateway, image_id)["status"] for image_id in ids})
