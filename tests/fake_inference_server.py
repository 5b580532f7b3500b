"""A real HTTP fake of the inference service for tests that run the gateway as a process."""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from contracts.captions import CAPTIONS_PATH, READY_PATH
from contracts.model_info import MODEL_INFO_PATH
from tests.support import caption_body, model_info_body


class FakeInferenceServer:
    """Captions after ``delay_s``; ``up=False`` answers 503 with Retry-After like a loading model.

    As a replica of a pool: ``caption_status`` answers captions with that status (``retry_after``
    sets the header), ``load_failed`` reports a model that failed to load for good, and
    ``max_new_tokens_limit`` and ``revision`` are what ``GET /v1/model`` reports. ``host``/``port`` pick the address.
    """

    def __init__(self, delay_s: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.delay_s = delay_s
        self.up = True
        self.caption_status: int | None = None
        self.retry_after: str | None = None
        self.load_failed = False
        self.max_new_tokens_limit: int | None = 128
        self.revision: str | None = None
        self.in_flight = 0
        self.captions_served = 0
        self.request_ids: list[str] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeInferenceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path == MODEL_INFO_PATH and fake.up:
                    self._send(200, model_info_body(fake.max_new_tokens_limit, revision=fake.revision))
                elif self.path == READY_PATH and fake.load_failed:
                    self._send(503, {"status": "not_ready", "state": "failed", "detail": "The model failed to load."})
                elif self.path == READY_PATH and fake.up:
                    self._send(200, {"status": "ready", "state": "ready", "detail": "The fake model is ready."})
                else:
                    self._send(503, {"status": "not_ready", "detail": "The fake model is down."})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.request_ids.append(self.headers.get("X-Request-ID", ""))
                if not self.path.startswith(CAPTIONS_PATH) or not fake.up:
                    self._send(503, {"type": "about:blank", "title": "Unavailable", "status": 503,
                                     "detail": "The fake model is down."}, {"Retry-After": "1"})  # fmt: skip
                    return
                if fake.caption_status is not None:
                    headers = {"Retry-After": fake.retry_after} if fake.retry_after else {}
                    status = fake.caption_status
                    problem = {"type": "about:blank", "title": "Scripted", "status": status, "detail": "Scripted."}
                    self._send(status, problem, headers)
                    return
                with fake._lock:
                    fake.in_flight += 1
                time.sleep(fake.delay_s)
                with fake._lock:
                    fake.in_flight -= 1
                    fake.captions_served += 1
                    number = next(fake._counter)
                self._send(200, caption_body(f"a served caption number {number}"))

        return Handler
