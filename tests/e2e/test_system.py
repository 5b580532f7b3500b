"""Both services as real processes (tiny-random, exported on first use), driven as a user would."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from PIL import Image

from tests.processes import ServiceProcess, gateway_process, image_details, inference_process, wait_for_images
from tests.support import IMAGES_DIR, REPO_ROOT, UPRIGHT_MAX_MEAN_DIFFERENCE, difference_from_upright

pytestmark = pytest.mark.slow
SAMPLES = sorted(path for path in IMAGES_DIR.iterdir() if path.suffix.lower() in (".jpg", ".jpeg", ".png"))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    root = tmp_path_factory.mktemp("system")
    inference = inference_process(root, "tiny-random")
    inference.start(timeout_s=300)  # the first start exports tiny-random in a child process
    gateway = gateway_process(root, inference.url)
    gateway.start()
    yield gateway, inference
    gateway.stop()
    inference.stop()


def all_images(gateway: ServiceProcess) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{gateway.url}/api/images", params={"limit": 500}).json()["items"]
    return items


def test_script_uploads_every_sample_and_each_completes_with_a_caption(
    system: tuple[ServiceProcess, ServiceProcess],
) -> None:
    gateway, _ = system
    env = {**os.environ, "GATEWAY_URL": gateway.url, "POLL_INTERVAL_S": "0.5", "POLL_TIMEOUT_S": "300"}
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "script.sh")], capture_output=True, text=True, env=env, timeout=400, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"[{len(SAMPLES)}/{len(SAMPLES)}]" in result.stdout
    assert "indoor chandelier.jpg" in result.stdout
    assert '"total"' in result.stdout
    images = all_images(gateway)
    assert sorted(image["filename"] for image in images) == sorted(path.name for path in SAMPLES)
    for image in images:
        body = image_details(gateway, image["id"])
        assert body["status"] == "completed", body
        assert body["caption"]["status"] == "completed"
        assert body["caption"]["text"]
        assert body["caption"]["model"] == {"id": "tiny-random", "revision": "seed-1234"}
        assert body["caption"]["precision"] == "fp32"


def test_thumbnails_are_upright_within_their_boxes_and_carry_the_caption(
    system: tuple[ServiceProcess, ServiceProcess],
) -> None:
    gateway, _ = system
    for image in all_images(gateway):
        body = image_details(gateway, image["id"])
        metadata = body["metadata"]
        rotated = metadata["orientation"] in (5, 6, 7, 8)
        displayed = (metadata["height"], metadata["width"]) if rotated else (metadata["width"], metadata["height"])
        for size, box in (("small", 160), ("medium", 640)):
            response = httpx.get(f"{gateway.url}/api/images/{image['id']}/thumbnails/{size}")
            assert response.status_code == 200
            assert unquote(response.headers["x-caption"]) == body["caption"]["text"]
            with Image.open(io.BytesIO(response.content)) as thumbnail:
                width, height = thumbnail.size
                assert thumbnail.mode == "RGB"
            assert width <= box and height <= box
            assert width <= displayed[0] and height <= displayed[1]
            assert (width >= height) == (displayed[0] >= displayed[1]), (image["filename"], size)
            if size == "small":
                difference = difference_from_upright(response.content, IMAGES_DIR / image["filename"])
                assert difference < UPRIGHT_MAX_MEAN_DIFFERENCE, (image["filename"], difference)
        as_json = httpx.get(
            f"{gateway.url}/api/images/{image['id']}/thumbnails/small", headers={"Accept": "application/json"}
        ).json()
        assert as_json["caption"] == body["caption"]["text"]


def test_stats_add_up(system: tuple[ServiceProcess, ServiceProcess]) -> None:
    gateway, _ = system
    stats = httpx.get(f"{gateway.url}/api/stats").json()
    assert stats["total"] == sum(stats["by_status"].values()) == len(all_images(gateway))
    assert stats["total"] == sum(stats["captions"].values())
    assert stats["by_status"]["completed"] + stats["by_status"]["failed"] == stats["total"]
    assert stats["success_rate"] == round(stats["by_status"]["completed"] / stats["total"], 3)
    assert stats["processing_ms"]["p50"] <= stats["processing_ms"]["p95"] <= stats["processing_ms"]["max"]


def test_inference_stopped_mid_run_makes_captions_unavailable_then_they_complete(
    system: tuple[ServiceProcess, ServiceProcess], tmp_path: Path
) -> None:
    gateway, inference = system
    inference.stop()
    ready = httpx.get(f"{gateway.url}/health/ready").json()
    assert ready["status"] == "ready" and ready["inference"]["ready"] is False
    ids = []
    for number, path in enumerate(SAMPLES[:3]):
        data = path.read_bytes() + b"\x00" * (number + 1)  # new bytes: no caption to reuse
        response = httpx.post(f"{gateway.url}/api/images", files={"image": (f"outage-{path.name}", data)})
        assert response.status_code == 202
        ids.append(response.json()["id"])
    wait_for_images(gateway, ids, ("failed",))
    for image_id in ids:
        body = image_details(gateway, image_id)
        assert body["caption"]["status"] == "unavailable"
        assert body["caption"]["text"] is None
        assert body["thumbnails"]["small"] is not None
    inference.start(timeout_s=120)
    wait_for_images(gateway, ids, ("completed",))
    assert all(image_details(gateway, image_id)["caption"]["text"] for image_id in ids)
