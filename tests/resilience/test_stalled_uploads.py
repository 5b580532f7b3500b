"""Real sockets against a real gateway process: stalled bodies time out with 408, disconnects are no rejections."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import ServiceProcess, free_port, gateway_process
from tests.support import eventually_blocking, make_image_bytes

pytestmark = pytest.mark.slow
IDLE_TIMEOUT_S = 1.0
STALLED_SOCKETS = 100
DECLARED_BYTES = 20 * 1024 * 1024
BOUNDARY = "stalledboundary"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServiceProcess]:
    nobody = f"http://127.0.0.1:{free_port()}"
    service = gateway_process(tmp_path, nobody, GATEWAY_WORKERS="0", GATEWAY_BODY_IDLE_TIMEOUT_S=str(IDLE_TIMEOUT_S))
    service.start()
    yield service
    service.stop()


def open_upload(gateway: ServiceProcess, first_body_bytes: bytes = b"") -> socket.socket:
    """A socket that declared a 20 MB multipart upload and sent only ``first_body_bytes`` of it."""
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=60)
    head = (
        f"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {DECLARED_BYTES}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    )
    sock.sendall(head.encode() + first_body_bytes)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return received


def rejected(gateway: ServiceProcess) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{gateway.url}/api/stats", timeout=10).json()["rejected"]
    return counts


def log_events(gateway: ServiceProcess, event: str) -> list[dict[str, Any]]:
    lines = (gateway.log_dir / "gateway.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record.get("event") == event]


def test_stalled_bodies_are_answered_408_and_closed_without_counting_a_rejection(gateway: ServiceProcess) -> None:
    before = rejected(gateway)
    started = time.monotonic()
    sockets = [open_upload(gateway) for _ in range(STALLED_SOCKETS)]
    answers = [read_until_closed(sock) for sock in sockets]
    elapsed_s = time.monotonic() - started
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers[0][:200]
    assert b"application/problem+json" in answers[0]
    assert b"sent nothing for 1 s" in answers[0]
    assert elapsed_s < 45, f"{STALLED_SOCKETS} stalled uploads took {elapsed_s:.1f} s to be closed"
    assert rejected(gateway) == before
    # the gateway still serves uploads afterwards
    files = {"image": ("a.jpg", make_image_bytes(), "image/jpeg")}
    assert httpx.post(f"{gateway.url}/api/images", files=files, timeout=30).status_code == 202


def test_a_client_that_disconnects_mid_body_is_not_a_rejection(gateway: ServiceProcess) -> None:
    before = rejected(gateway)
    part_head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    for _ in range(3):
        open_upload(gateway, part_head + make_image_bytes()[:200]).close()
    eventually_blocking(lambda: len(log_events(gateway, "upload_aborted")) >= 3, 30, "noticing the disconnects")
    assert all(event["status"] == 400 for event in log_events(gateway, "upload_aborted"))
    assert not log_events(gateway, "upload_rejected")
    assert rejected(gateway) == before
