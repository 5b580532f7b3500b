"""Chaos: PostgreSQL, a real S3 server, two gateways on empty disks, three tiny-random replicas; kills mid-run.

One replica is SIGKILLed for good and one gateway is SIGKILLed and restarted on a NEW empty data
dir while 160 uploads spread over both gateways are being processed. Every image must complete
with a caption, none lost or doubled, no saved stage redone, captions spread over the surviving
replicas, and every image readable through either gateway.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ModelExporter
from tests.processes import ServiceProcess, gateway_process, inference_process
from tests.repository_backends import postgres_schema_url
from tests.s3_server import ACCESS_KEY_ID, BUCKET, SECRET_ACCESS_KEY, running_s3_server
from tests.support import make_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
IMAGES = 160
KILL_AFTER = 60


def log_events(log_dir: Path, filename: str, event: str) -> list[dict[str, Any]]:
    path = log_dir / filename
    if not path.exists():
        return []
    lines = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [line for line in lines if line.get("event") == event]


def upload(gateway_url: str, number: int) -> tuple[str, str]:
    data = make_image_bytes((320 + number % 50, 240), color=(number % 256, (number * 7) % 256, 90))
    response = httpx.post(
        f"{gateway_url}/api/images", files={"image": (f"{number}.jpg", data, "image/jpeg")}, timeout=30
    )
    assert response.status_code == 202, response.text
    return response.json()["id"], hashlib.sha256(data).hexdigest()


def wait_all_completed(gateway: ServiceProcess, ids: list[str], timeout_s: float = 400) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = Counter(
            httpx.get(f"{gateway.url}/api/images/{image_id}", timeout=10).json()["status"] for image_id in ids
        )
        if statuses["completed"] == len(ids):
            return
        assert "failed" not in statuses, statuses
        assert time.monotonic() < deadline, statuses
        time.sleep(1)


def caption_in_flight(gateway: ServiceProcess, replica: ServiceProcess, wait_s: float) -> bool:
    """Whether, within ``wait_s``, ``gateway`` has a caption in flight on ``replica``: the gateway then holds
    a claimed image whose caption is not saved, and the replica is working on it."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        replicas = httpx.get(f"{gateway.url}/health/ready", timeout=10).json()["inference"]["replicas"]
        if any(entry["url"] == replica.url and entry["in_flight"] > 0 for entry in replicas):
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.mark.timeout(600)  # the suite's 300 s would cut the 400 s wait for completion short
def test_two_gateways_and_three_replicas_lose_nothing_when_a_replica_and_a_gateway_are_killed(
    tmp_path: Path, exported_model: ModelExporter, postgres_url: str
) -> None:
    model_dir = exported_model()
    with running_s3_server(tmp_path / "s3") as s3:
        s3_settings = {
            "GATEWAY_STORAGE_BACKEND": "s3",
            "GATEWAY_S3_ENDPOINT_URL": s3.url,
            "GATEWAY_S3_BUCKET": BUCKET,
            "GATEWAY_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "GATEWAY_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }
        run_chaos(tmp_path, model_dir, postgres_url, s3_settings)


def run_chaos(tmp_path: Path, model_dir: Path, postgres_url: str, s3_settings: dict[str, str]) -> None:
    replicas = [inference_process(tmp_path / f"replica-{n}", str(model_dir)) for n in range(3)]
    gateways: list[ServiceProcess] = []
    try:
        for replica in replicas:
            replica.start(timeout_s=300)
        urls = ",".join(replica.url for replica in replicas)
        shared = {"DATABASE_URL": postgres_url, "GATEWAY_LEASE_S": "3", **s3_settings}

        def new_gateway(name: str) -> ServiceProcess:
            gateway = gateway_process(tmp_path / name, urls, **shared)
            gateway.start()
            gateways.append(gateway)
            return gateway

        gateway_a, gateway_b = new_gateway("gateway-a"), new_gateway("gateway-b")
        with ThreadPoolExecutor(max_workers=6) as pool:
            first = list(pool.map(lambda n: upload((gateway_a, gateway_b)[n % 2].url, n), range(KILL_AFTER)))
            # Both kills must land mid-work: when the queue drained already (a slow machine uploads
            # slower than it captions), B gets more uploads until it has a caption on replica 0.
            while not caption_in_flight(gateway_b, replicas[0], wait_s=2):
                first += list(pool.map(lambda n: upload(gateway_b.url, n), range(len(first), len(first) + 6)))
                assert len(first) < IMAGES, "gateway B never had a caption in flight on replica 0"
            replicas[0].kill()
            gateway_b.kill()
            gateway_b = new_gateway("gateway-b-reborn")  # a new empty data dir
            rest = list(pool.map(lambda n: upload((gateway_a, gateway_b)[n % 2].url, n), range(len(first), IMAGES)))
        uploaded = first + rest
        ids = [image_id for image_id, _ in uploaded]
        wait_all_completed(gateway_a, ids)

        stats = httpx.get(f"{gateway_a.url}/api/stats").json()
        assert stats["total"] == IMAGES
        assert stats["by_status"]["completed"] == IMAGES
        for gateway in (gateway_a, gateway_b):
            for image_id, sha256 in uploaded:
                details = httpx.get(f"{gateway.url}/api/images/{image_id}").json()
                assert details["caption"]["status"] == "completed" and details["caption"]["text"], details
                original = httpx.get(f"{gateway.url}/api/images/{image_id}/original")
                assert hashlib.sha256(original.content).hexdigest() == sha256
                assert httpx.get(f"{gateway.url}/api/images/{image_id}/thumbnails/small").status_code == 200
    finally:
        for service in [*gateways, *replicas]:
            service.stop()

    stages = Counter(
        (line["image_id"], line["stage"])
        for gateway in gateways
        for line in log_events(Path(gateway.env["GATEWAY_LOG_DIR"]), "gateway.jsonl", "stage_completed")
    )
    assert stages and max(stages.values()) == 1, [key for key, count in stages.items() if count > 1]
    served = [len(log_events(Path(r.env["INFERENCE_LOG_DIR"]), "inference.jsonl", "caption_served")) for r in replicas]
    assert served[1] > IMAGES // 6 and served[2] > IMAGES // 6, served
    reborn_data = Path(gateway_b.env["GATEWAY_DATA_DIR"])
    assert not [path for path in reborn_data.rglob("*") if path.is_file() and "uploads" not in path.parts]
