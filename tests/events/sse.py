"""A small Server-Sent Events client for tests: read a stream until a condition holds."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.processes import ServiceProcess
from tests.support import make_image_bytes


@dataclass
class SseRead:
    messages: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)

    def data(self) -> list[dict[str, Any]]:
        return [json.loads(message["data"]) for message in self.messages]


def read_sse(
    url: str, until: Callable[[SseRead], bool], headers: dict[str, str] | None = None, timeout_s: float = 60,
    into: SseRead | None = None,
) -> SseRead:  # fmt: skip
    """GET ``url`` as an event stream and collect messages until ``until(read)`` or the deadline."""
    read, current = into or SseRead(), {}
    deadline = time.monotonic() + timeout_s
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout_s)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        read.connected.set()
        for line in response.iter_lines():
            if line.startswith(":"):
                read.comments.append(line[1:].strip())
            elif not line:
                if current:
                    read.messages.append(current)
                current = {}
            else:
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")
            if until(read):
                return read
            assert time.monotonic() < deadline, f"stream ended early: {read}"
    raise AssertionError(f"the stream closed: {read}")


def upload(gateway: ServiceProcess, color: tuple[int, int, int] = (200, 30, 30)) -> str:
    response = httpx.post(
        f"{gateway.url}/api/images", files={"image": ("a.jpg", make_image_bytes(color=color), "image/jpeg")}, timeout=30
    )
    assert response.status_code == 202, response.text
    image_id: str = response.json()["id"]
    return image_id
