"""A real HTTP fake of the inference service for tests that run the gateway as a process."""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from contracts.captions import CAPTIONS_PATH, READY_PATH
from tests.support import caption_body


class FakeInferenceServer:
    """Captions after ``delay_s``; ``up=False`` answers 503 with Retry-After like a loading model."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.up = True
        self.captions_served = 0
        self.request_ids: list[str] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
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
                if self.path == READY_PATH and fake.up:
                    self._send(200, {"status": "ready", "detail": "The fake model is ready."})
                else:
                    self._send(503, {"status": "not_ready", "detail": "The fake model is down."})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.request_ids.append(self.headers.get("X-Request-ID", ""))
                if not self.path.startswith(CAPTIONS_PATH) or not fake.up:
                    self._send(503, {"type": "about:blank", "title": "Unavailable", "status": 503,
                                     "detail": "The fake model is down."}, {"Retry-After": "1"})  # fmt: skip
                    return
                time.sleep(fake.delay_s)
                with fake._lock:
                    fake.captions_served += 1
                    number = next(fake._counter)
                self._send(200, caption_body(f"a served caption number {number}"))

        return Handler
