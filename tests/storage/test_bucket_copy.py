"""``python -m gateway.storage copy-to-bucket`` (alias ``migrate``): a local data dir into the bucket, resumable,
verified by sha256."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio.to_thread
import pytest
from PIL import Image

from gateway.settings import GatewaySettings
from gateway.storage import S3BlobStore, new_image_id
from gateway.storage.__main__ import main
from tests.conftest import SettingsFactory, wait_for_status
from tests.s3_server import ACCESS_KEY_ID, BUCKET, SECRET_ACCESS_KEY, S3Server, s3_settings_for
from tests.storage.conftest import AppFactory, local_files
from tests.support import REPO_ROOT, make_image_bytes


def copy_env(server: S3Server, data_dir: Path) -> dict[str, str]:
    return {
        "GATEWAY_STORAGE_BACKEND": "s3",
        "GATEWAY_S3_ENDPOINT_URL": server.url,
        "GATEWAY_S3_BUCKET": BUCKET,
        "GATEWAY_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "GATEWAY_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "GATEWAY_DATA_DIR": str(data_dir),
    }


def run_copy(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *args: str,
    command: str = "copy-to-bucket",
) -> tuple[int, str, str]:
    """The command in this process, with its settings read from the environment as in production."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status = main([command, *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def delete_objects(server: S3Server, tmp_path: Path, *keys: str) -> None:
    """Delete through the S3 API (rclone caches listings: deleting its files directly would confuse it)."""
    store = S3BlobStore(GatewaySettings(data_dir=tmp_path / "deleter", **s3_settings_for(server.url)))
    await store.open()
    try:
        await store.delete_keys(list(keys))
    finally:
        await store.aclose()


def layout_files(data_dir: Path, count: int) -> dict[str, bytes]:
    """``count`` originals written straight into a data dir's layout, by key."""
    files = {}
    for number in range(count):
        image_id = new_image_id()
        key = f"originals/{image_id[:2]}/{image_id}.jpg"
        files[key] = number.to_bytes(4, "big") * 512
        (data_dir / key).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / key).write_bytes(files[key])
    return files


async def test_copy_to_bucket_moves_a_local_gateway_into_the_bucket_and_an_s3_gateway_serves_it(
    make_settings: SettingsFactory,
    make_s3_settings: SettingsFactory,
    open_app: AppFactory,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    local_settings = make_settings(data_dir=tmp_path / "local")
    jpeg, png = make_image_bytes((300, 200)), make_image_bytes((120, 90), image_format="PNG")
    async with open_app(local_settings) as client:
        ids = []
        for data, name in ((jpeg, "a.jpg"), (png, "b.png")):
            response = await client.post("/api/images", files={"image": (name, data, "image/jpeg")})
            ids.append(response.json()["id"])
        for image_id in ids:
            assert (await wait_for_status(client, image_id))["status"] == "completed"
    (local_settings.data_dir / "notes.txt").write_text("not part of the layout")

    env = copy_env(s3_server, local_settings.data_dir)
    status, out, _ = await anyio.to_thread.run_sync(run_copy, monkeypatch, capsys, env)  # it runs its own loop
    assert status == 0, out
    assert "6 files: 6 uploaded, 0 replaced, 0 already there" in out
    assert len(s3_server.files()) == 6

    s3_settings = make_s3_settings(data_dir=tmp_path / "empty")  # same database, a new empty disk
    async with open_app(s3_settings) as client:
        assert (await client.get(f"/api/images/{ids[0]}/original")).content == jpeg
        assert (await client.get(f"/api/images/{ids[1]}/original")).content == png
        medium = await client.get(f"/api/images/{ids[0]}/thumbnails/medium")
        assert Image.open(io.BytesIO(medium.content)).size == (300, 200)
    assert local_files(s3_settings.data_dir) == []

    status, out, _ = await anyio.to_thread.run_sync(run_copy, monkeypatch, capsys, env)
    assert status == 0
    assert "6 files: 0 uploaded, 0 replaced, 6 already there" in out


# `migrate` is the command's first name, still accepted.
@pytest.mark.parametrize("command", ["copy-to-bucket", "migrate"])
def test_copy_to_bucket_verification_catches_a_corrupted_object_and_a_plain_run_repairs_it(
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    files = layout_files(tmp_path / "data", 3)
    env = copy_env(s3_server, tmp_path / "data")
    assert run_copy(monkeypatch, capsys, env, command=command)[0] == 0
    corrupted, removed = sorted(files)[:2]
    stored = s3_server.bucket_dir() / corrupted
    stored.write_bytes(bytes(byte ^ 0xFF for byte in stored.read_bytes()))  # same size, other bytes
    asyncio.run(delete_objects(s3_server, tmp_path, removed))

    status, out, err = run_copy(monkeypatch, capsys, env, "--verify-only", command=command)
    assert status == 1
    assert f"sha256 mismatch: {corrupted}" in err
    assert f"missing: {removed}" in err
    assert "1 already there" in out

    status, out, _ = run_copy(monkeypatch, capsys, env, command=command)
    assert status == 0
    assert "3 files: 1 uploaded, 1 replaced, 1 already there" in out
    assert run_copy(monkeypatch, capsys, env, "--verify-only", command=command)[0] == 0
    assert all((s3_server.bucket_dir() / key).read_bytes() == data for key, data in files.items())


def test_copy_to_bucket_without_s3_settings_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_copy(monkeypatch, capsys, {"GATEWAY_DATA_DIR": str(tmp_path)})
    assert status == 2
    assert "set GATEWAY_STORAGE_BACKEND=s3" in err
    status, _, err = run_copy(monkeypatch, capsys, {"GATEWAY_STORAGE_BACKEND": "s3"})
    assert status == 2
    assert "GATEWAY_S3_ENDPOINT_URL" in err


def test_copy_to_bucket_into_an_unreachable_store_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], s3_server: S3Server
) -> None:
    env = copy_env(s3_server, tmp_path) | {"GATEWAY_S3_SECRET_ACCESS_KEY": "a-wrong-secret"}
    status, _, err = run_copy(monkeypatch, capsys, env)
    assert status == 2
    assert "rejected the secret access key" in err


@pytest.mark.slow
def test_copy_to_bucket_resumes_after_being_killed(s3_server: S3Server, tmp_path: Path) -> None:
    files = layout_files(tmp_path / "data", 300)
    env = {**os.environ, **copy_env(s3_server, tmp_path / "data")}
    command = [sys.executable, "-m", "gateway.storage", "copy-to-bucket", "--concurrency", "1"]
    first = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while len(s3_server.files()) < 10:
            assert first.poll() is None, "the first run ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        first.kill()
        first.wait(10)
    copied_before = len(s3_server.files())
    assert copied_before < len(files)

    second = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    skipped = int(second.stdout.split(" already there")[0].rsplit(", ", 1)[-1])
    assert skipped >= copied_before
    assert s3_server.files() == set(files)
    assert all((s3_server.bucket_dir() / key).read_bytes() == data for key, data in files.items())
