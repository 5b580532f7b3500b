"""Re-captioning across a model switch with real processes: PostgreSQL, two gateways, one killed mid-run.

Images captioned by a tiny-random model are re-made by the same shape with another seed (another
revision) after the replica is restarted on it. Gateway A is SIGKILLed while it has a re-caption
in flight and started again; every image must end with exactly one ``image.caption_updated`` event,
one saved re-caption in the logs, the new model's caption, and the counters must agree.
Uploads made during the run are captioned at once by the new model and never re-captioned.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ModelExporter, Reporter
from tests.processes import (
    ServiceProcess,
    free_port,
    gateway_process,
    image_details,
    inference_process,
    wait_for_images,
)
from tests.repository_backends import postgres_schema_url
from tests.s3_server import ACCESS_KEY_ID, BUCKET, SECRET_ACCESS_KEY, running_s3_server
from tests.support import REPO_ROOT, eventually_blocking, make_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
IMAGES = 24
FIRST_SEED, SECOND_SEED = 1234, 99  # 1234 is tiny-random's own seed


def log_lines(service: ServiceProcess, filename: str, event: str) -> list[dict[str, Any]]:
    path = Path(service.env.get("GATEWAY_LOG_DIR") or service.env["INFERENCE_LOG_DIR"]) / filename
    if not path.exists():
        return []
    lines = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [line for line in lines if line.get("event") == event]


def upload(gateway: ServiceProcess, number: int) -> str:
    data = make_image_bytes((200 + number, 150), color=(number * 9 % 256, 80, 160))
    response = httpx.post(f"{gateway.url}/api/images", files={"image": (f"{number}.jpg", data)}, timeout=30)
    assert response.status_code == 202, response.text
    image_id: str = response.json()["id"]
    return image_id


def recaption_counts(gateway: ServiceProcess) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{gateway.url}/api/stats", timeout=10).json()["recaption"]
    return counts


def recaption_in_flight(gateway: ServiceProcess) -> bool:
    """The gateway holds a claimed image whose new caption the replica is making (nothing else runs then)."""
    replicas = httpx.get(f"{gateway.url}/health/ready", timeout=10).json()["inference"]["replicas"]
    return any(replica["in_flight"] > 0 for replica in replicas)


def caption_updates(postgres_url: str) -> list[tuple[str, dict[str, Any] | None]]:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT image_id, previous_model FROM events WHERE type = 'image.caption_updated'")
            ).all()
    finally:
        engine.dispose()
    return [(image_id, json.loads(previous) if previous else None) for image_id, previous in rows]


def recaption_command(tmp_path: Path, inference_url: str, postgres_url: str) -> subprocess.Popen[bytes]:
    """``python -m gateway recaption`` with the gateways' database and replica; its output in recaption.out."""
    env = {**os.environ, "DATABASE_URL": postgres_url, "GATEWAY_INFERENCE_URL": inference_url,
           "GATEWAY_DATA_DIR": str(tmp_path / "command"), "GATEWAY_LOG_DIR": str(tmp_path / "command")}  # fmt: skip
    with (tmp_path / "recaption.out").open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "recaption"], cwd=REPO_ROOT, env=env, stdout=output, stderr=output
        )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.mark.timeout(600)
def test_two_gateways_recaption_every_image_exactly_once_when_one_is_killed_mid_caption(
    tmp_path: Path, exported_model: ModelExporter, postgres_url: str, report: Reporter
) -> None:
    first, second = exported_model(), exported_model(seed=SECOND_SEED)  # the first: tiny-random as shipped
    port = free_port()
    services: list[ServiceProcess] = []
    commands: list[subprocess.Popen[bytes]] = []
    with running_s3_server(tmp_path / "s3") as s3:
        shared = {
            "DATABASE_URL": postgres_url,
            "GATEWAY_LEASE_S": "3",
            "GATEWAY_RECAPTION_PER_S": "0",  # the concurrency (1 per gateway) is the only bound here
            "GATEWAY_STORAGE_BACKEND": "s3",
            "GATEWAY_S3_ENDPOINT_URL": s3.url,
            "GATEWAY_S3_BUCKET": BUCKET,
            "GATEWAY_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "GATEWAY_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }

        def start(service: ServiceProcess, timeout_s: float = 60) -> ServiceProcess:
            services.append(service)
            service.start(timeout_s=timeout_s)
            return service

        def new_gateway(name: str) -> ServiceProcess:
            return start(gateway_process(tmp_path / name, f"http://127.0.0.1:{port}", **shared))

        try:
            replica = start(inference_process(tmp_path / "replica-first", str(first), port=port), timeout_s=300)
            gateway_a, gateway_b = new_gateway("gateway-a"), new_gateway("gateway-b")
            ids = [upload((gateway_a, gateway_b)[n % 2], n) for n in range(IMAGES)]
            wait_for_images(gateway_a, ids, ("completed",))
            old = {image_id: image_details(gateway_a, image_id)["caption"] for image_id in ids}
            assert {caption["model"]["revision"] for caption in old.values()} == {f"seed-{FIRST_SEED}"}

            replica.stop()  # the switch: the same address now serves the second seed
            # Every caption waits 300 ms for a batch that never fills: the kill below lands mid-caption.
            slow = {"INFERENCE_MAX_BATCH": "4", "INFERENCE_MAX_WAIT_MS": "300"}
            replica = start(inference_process(tmp_path / "replica-second", str(second), port=port, **slow), 300)
            queued = httpx.post(f"{gateway_a.url}/api/captions/recaption", json={"all": False}, timeout=30)
            assert queued.status_code == 202, queued.text
            assert queued.json() == {"queued": IMAGES}
            # The command finds them queued already (queues 0) and follows the run to its end.
            command = recaption_command(tmp_path, f"http://127.0.0.1:{port}", postgres_url)
            commands.append(command)

            eventually_blocking(
                lambda: recaption_counts(gateway_b)["done"] >= 3, timeout_s=120, what="re-captioning never started"
            )
            new_uploads = [upload(gateway_b, IMAGES + n) for n in range(3)]  # uploads go first
            eventually_blocking(
                lambda: recaption_in_flight(gateway_a), timeout_s=60, what="gateway A never had a re-caption in flight"
            )
            gateway_a.kill()
            remaining_at_kill = recaption_counts(gateway_b)["queued"]
            gateway_a = new_gateway("gateway-a-reborn")
            eventually_blocking(
                lambda: recaption_counts(gateway_a)["queued"] == 0, timeout_s=300, what="re-captioning never finished"
            )
            wait_for_images(gateway_a, new_uploads, ("completed",))
            assert command.wait(60) == 0
            output = (tmp_path / "recaption.out").read_text(encoding="utf-8").splitlines()
            assert output[0] == f"recaption: queued 0 (captions not made by tiny-random@seed-{SECOND_SEED} (fp32))"
            # the bar counts what was queued when the command began to follow: all of it has left the queue
            assert re.fullmatch(rf"recaption \[#+\] (\d+)/\1  done {IMAGES}  failed 0", output[-2]), output
            assert output[-1] == f"recaption: finished: done {IMAGES}, failed 0"

            assert recaption_counts(gateway_a) == {"queued": 0, "done": IMAGES, "failed": 0}
            for image_id in ids:
                caption = image_details(gateway_b, image_id)["caption"]
                assert caption["model"] == {"id": "tiny-random", "revision": f"seed-{SECOND_SEED}"}, caption
                assert caption["precision"] == "fp32"
                assert caption["recaption"] == {"status": "done", "error": None}
            for image_id in new_uploads:
                caption = image_details(gateway_b, image_id)["caption"]
                assert caption["model"]["revision"] == f"seed-{SECOND_SEED}"
                assert caption["recaption"] is None
        finally:
            for command in commands:
                if command.poll() is None:
                    command.kill()
                    command.wait(10)
            for service in reversed(services):
                service.stop()

    updates = caption_updates(postgres_url)
    assert Counter(image_id for image_id, _ in updates) == Counter(ids)  # each image once, none twice
    assert {previous["revision"] for _, previous in updates if previous} == {f"seed-{FIRST_SEED}"}
    gateways = [service for service in services if "GATEWAY_LOG_DIR" in service.env]
    saved = Counter(line["image_id"] for g in gateways for line in log_lines(g, "gateway.jsonl", "recaption_saved"))
    assert saved == Counter(ids)
    served = len(log_lines(replica, "inference.jsonl", "caption_served"))
    report(f"re-captioning: {remaining_at_kill} of {IMAGES} still queued at the kill; the second model served "
           f"{served} captions for {IMAGES} re-captions and {len(new_uploads)} uploads")  # fmt: skip
    assert served >= IMAGES + len(new_uploads)
