"""script.sh against a real gateway process: a second run after an interruption uploads nothing twice."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_inference_server import FakeInferenceServer
from tests.optional import skip_or_fail_in_ci
from tests.processes import ServiceProcess, gateway_process
from tests.support import REPO_ROOT, make_image_bytes

pytestmark = pytest.mark.slow
SCRIPT = REPO_ROOT / "script.sh"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServiceProcess]:
    with FakeInferenceServer() as inference:
        service = gateway_process(tmp_path, inference.url)
        service.start()
        try:
            yield service
        finally:
            service.stop()


def run_script(folder: Path, gateway: ServiceProcess) -> subprocess.CompletedProcess[str]:
    if shutil.which("curl") is None:
        skip_or_fail_in_ci("curl is not installed: script.sh needs it.")
    env = {key: value for key, value in os.environ.items() if key != "GATEWAY_API_KEY"}
    env.update({"GATEWAY_URL": gateway.url, "POLL_INTERVAL_S": "0.1", "POLL_TIMEOUT_S": "60"})
    return subprocess.run([SCRIPT, folder], env=env, capture_output=True, text=True, check=False, timeout=120)


def image_total(gateway: ServiceProcess) -> int:
    total: int = httpx.get(f"{gateway.url}/api/stats", timeout=10).json()["total"]
    return total


def upload_lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """``{file name: image id}`` from the script's "[n/N] name -> id" lines."""
    pairs = (line.split("] ", 1)[1].rsplit(" -> ", 1) for line in result.stdout.splitlines() if " -> " in line)
    return dict(pairs)


def test_running_the_script_again_uploads_nothing_twice(tmp_path: Path, gateway: ServiceProcess) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = {f"photo {number}.jpg": make_image_bytes((40 + number, 30)) for number in range(3)}
    # the interrupted first run got as far as the first photo
    (folder / "photo 0.jpg").write_bytes(photos["photo 0.jpg"])
    first = run_script(folder, gateway)
    assert first.returncode == 0, first.stdout + first.stderr
    for name, data in photos.items():
        (folder / name).write_bytes(data)
    again = run_script(folder, gateway)
    assert again.returncode == 0, again.stdout + again.stderr
    assert image_total(gateway) == 3
    assert upload_lines(again)["photo 0.jpg"] == upload_lines(first)["photo 0.jpg"]
    # once more: nothing new; the same bytes under another path are another upload
    assert upload_lines(run_script(folder, gateway)) == upload_lines(again)
    shutil.copy(folder / "photo 0.jpg", folder / "copy of photo 0.jpg")
    assert run_script(folder, gateway).returncode == 0
    assert image_total(gateway) == 4
