"""script.sh against a stub gateway: uploads, polling, exit codes, the API key; plus shellcheck."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import ROOT, venv_tool
from tests.optional import skip_or_fail_in_ci

SCRIPT = ROOT / "script.sh"


def test_upload_script_is_executable_and_passes_shellcheck() -> None:
    assert os.access(SCRIPT, os.X_OK)
    lines = SCRIPT.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    result = subprocess.run([venv_tool("shellcheck"), SCRIPT], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class StubGateway:
    """Just enough of the gateway's API for script.sh: uploads, one poll in ``processing``, stats."""

    never_finish: bool = False
    uploads: list[str] = field(default_factory=list)
    upload_authorizations: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if method == "GET" and path == "/health/live":
                return 200, {"status": "alive"}
            if method == "GET" and path == "/api/stats":
                return 200, {"total": len(self.uploads)}
            if method == "POST" and path == "/api/images":
                self.upload_authorizations.append(headers.get("Authorization", ""))
                match = re.search(rb'filename="((?:[^"\\]|\\.)*)"', body)
                filename = match[1].decode() if match else ""
                if filename.endswith(".txt"):
                    return 415, {"title": "Unsupported image format", "status": 415, "detail": "Not an image."}
                self.uploads.append(filename)
                return 202, {"id": f"img{len(self.uploads)}", "filename": filename, "status": "pending"}
            if method == "GET" and path.startswith("/api/images/img"):
                image_id = path.rsplit("/", 1)[1]
                filename = self.uploads[int(image_id.removeprefix("img")) - 1]
                self.polls[image_id] = self.polls.get(image_id, 0) + 1
                if self.polls[image_id] < 2 or self.never_finish:
                    return 200, {"id": image_id, "status": "processing", "caption": None, "error": None}
                if filename.startswith("broken"):
                    return 200, {"id": image_id, "status": "failed", "caption": None, "error": "The data is corrupt."}
                caption = {"text": f"a caption of {filename}", "status": "completed"}
                return 200, {"id": image_id, "status": "completed", "caption": caption, "error": None}
            return 404, {"title": "Not found", "status": 404}


@pytest.fixture
def stub_gateway() -> Iterator[tuple[StubGateway, str]]:
    stub = StubGateway()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, payload = stub.handle(method, self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield stub, f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_script(folder: Path, gateway_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("curl") is None:
        skip_or_fail_in_ci("curl is not installed (apt-get install curl); script.sh needs it.")
    script_env = {key: value for key, value in os.environ.items() if key != "GATEWAY_API_KEY"}
    script_env.update({"GATEWAY_URL": gateway_url, "POLL_INTERVAL_S": "0.05", **env})
    return subprocess.run([SCRIPT, folder], env=script_env, capture_output=True, text=True, check=False, timeout=60)


def make_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n fake image bytes for " + name.encode())
    return folder


def test_script_uploads_every_file_including_names_with_spaces_and_prints_captions_and_stats(
    stub_gateway: tuple[StubGateway, str], tmp_path: Path
) -> None:
    stub, url = stub_gateway
    folder = make_folder(tmp_path, "a photo of mine.jpg", "b.png", "ATTRIBUTION.md", ".hidden.jpg")

    result = run_script(folder, url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert stub.uploads == ["a photo of mine.jpg", "b.png"]
    assert "[1/2] a photo of mine.jpg -> img1" in result.stdout
    assert "[2/2] b.png -> img2" in result.stdout
    assert re.search(r"a photo of mine\.jpg +completed +a caption of a photo of mine\.jpg", result.stdout)
    assert '"total": 2' in result.stdout


def test_script_fails_when_an_upload_is_refused_or_an_image_ends_failed(
    stub_gateway: tuple[StubGateway, str], tmp_path: Path
) -> None:
    _, url = stub_gateway
    folder = make_folder(tmp_path, "broken.jpg", "good.jpg", "notes.txt")

    result = run_script(folder, url)

    assert result.returncode == 1
    assert "[3/3] notes.txt -> refused, HTTP 415: Unsupported image format: Not an image." in result.stdout
    assert re.search(r"broken\.jpg +failed +The data is corrupt\.", result.stdout)
    assert re.search(r"good\.jpg +completed", result.stdout)


def test_script_gives_up_after_the_poll_timeout(stub_gateway: tuple[StubGateway, str], tmp_path: Path) -> None:
    stub, url = stub_gateway
    stub.never_finish = True

    result = run_script(make_folder(tmp_path, "slow.jpg"), url, POLL_TIMEOUT_S="0")

    assert result.returncode == 1
    assert "Timed out" in result.stderr
    assert re.search(r"slow\.jpg +processing +not finished", result.stdout)


def test_script_sends_the_api_key_as_a_bearer_token(stub_gateway: tuple[StubGateway, str], tmp_path: Path) -> None:
    stub, url = stub_gateway

    result = run_script(make_folder(tmp_path, "one.jpg"), url, GATEWAY_API_KEY="s3cret")

    assert result.returncode == 0, result.stdout + result.stderr
    assert stub.upload_authorizations == ["Bearer s3cret"]


def test_script_exits_2_when_the_gateway_cannot_be_reached(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as server:
        unused_port = server.server_address[1]

    result = run_script(make_folder(tmp_path, "one.jpg"), f"http://127.0.0.1:{unused_port}")

    assert result.returncode == 2
    assert "cannot reach the gateway" in result.stderr
