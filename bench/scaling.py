"""Captions/s through the gateway's replica pool as replicas are added, and with one slow replica.

Run with ``make bench-scaling`` (or ``python -m bench.scaling``). Fake replicas are real HTTP
servers on loopback, in a child process: each serves ONE caption at a time and takes a fixed
service time (it sleeps, so two cores are plenty). The parent drives them through the real
``InferenceClient`` and its pool, with twice as many captions in flight as there are replicas
(as gateway workers would). Ideal captions/s is the sum of 1/service time over the replicas.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.connection
import platform
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from contracts.captions import CAPTIONS_PATH, READY_PATH
from contracts.model_info import MODEL_INFO_PATH
from gateway.replicas.client import InferenceClient
from gateway.replicas.pool import Strategy
from gateway.settings import GatewaySettings

CAPTION = {"caption": "a bench caption", "model": "fake", "tokens": 3,
           "timings_ms": {"preprocess": 0, "encode": 0, "decode": 0, "total": 0}}  # fmt: skip
MODEL = {"name": "fake", "precision": "int8", "execution_providers": ["CPUExecutionProvider"],
         "batching": {"max_batch": 1, "max_wait_ms": 0, "queue_size": 64}, "is_test_model": True,
         "ready": True, "max_new_tokens_limit": 128}  # fmt: skip


def _replica_handler(service_s: float) -> type[BaseHTTPRequestHandler]:
    one_at_a_time = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx's pool expects

        def log_message(self, *_: Any) -> None:
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == MODEL_INFO_PATH:
                self._send(200, MODEL)
            elif self.path == READY_PATH:
                self._send(200, {"status": "ready", "state": "ready", "detail": "ready"})
            else:
                self._send(404, {"detail": "no such path"})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not self.path.startswith(CAPTIONS_PATH):
                self._send(404, {"detail": "no such path"})
                return
            with one_at_a_time:
                time.sleep(service_s)
            self._send(200, CAPTION)

    return Handler


def serve_replicas(service_times_s: list[float], conn: multiprocessing.connection.Connection) -> None:
    """Child process: one server per service time; send the URLs; serve until told to stop."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _replica_handler(s)) for s in service_times_s]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send([f"http://127.0.0.1:{server.server_address[1]}" for server in servers])
    conn.recv()
    for server in servers:
        server.shutdown()


async def measure(urls: list[str], strategy: Strategy, warmup_s: float, duration_s: float) -> float:
    """Captions/s over ``duration_s`` after ``warmup_s``, with 2 captions in flight per replica."""
    settings = GatewaySettings(inference_url=",".join(urls), inference_probe_interval_s=5.0)
    client = InferenceClient(settings, strategy=strategy)
    await client.start()
    done: list[float] = []
    stop_at = time.monotonic() + warmup_s + duration_s

    async def loop(number: int) -> None:
        while time.monotonic() < stop_at:
            await client.caption(b"\xff\xd8bench\xff\xd9", "image/jpeg", f"bench-{number}")
            done.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(loop(number) for number in range(2 * len(urls))))
    await client.aclose()
    window_start = started + warmup_s
    return sum(1 for moment in done if window_start <= moment < window_start + duration_s) / duration_s


def run_with_replicas(service_times_s: list[float], strategy: Strategy, warmup_s: float, duration_s: float) -> float:
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=serve_replicas, args=(service_times_s, child))
    process.start()
    try:
        urls: list[str] = parent.recv()
        return asyncio.run(measure(urls, strategy, warmup_s, duration_s))
    finally:
        parent.send("stop")
        process.join(10)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-ms", type=float, default=200.0, help="service time of one fake caption")
    parser.add_argument("--duration-s", type=float, default=6.0, help="measured window per row")
    parser.add_argument("--warmup-s", type=float, default=1.0)
    args = parser.parse_args()
    service_s = args.service_ms / 1000
    print(f"CPU: {cpu_model()} ({multiprocessing.cpu_count()} cores); fake replicas serve one caption at a time")
    print(f"in {args.service_ms:g} ms; 2 captions in flight per replica; {args.duration_s:g} s measured per row\n")
    print("| replicas | captions/s | ideal | ratio |")
    print("|---:|---:|---:|---:|")
    for count in (1, 2, 4, 8):
        rate = run_with_replicas([service_s] * count, Strategy.LEAST_IN_FLIGHT, args.warmup_s, args.duration_s)
        ideal = count / service_s
        print(f"| {count} | {rate:.1f} | {ideal:.1f} | {rate / ideal:.2f} |", flush=True)
    times = [service_s] * 3 + [3 * service_s]
    ideal = sum(1 / s for s in times)
    slow_ms = 3 * args.service_ms
    print(f"\nOne replica 3x slower: 4 replicas, three at {args.service_ms:g} ms and one at {slow_ms:g} ms\n")
    print("| strategy | captions/s | ideal | ratio |")
    print("|---|---:|---:|---:|")
    for strategy in (Strategy.LEAST_IN_FLIGHT, Strategy.ROUND_ROBIN):
        rate = run_with_replicas(times, strategy, args.warmup_s, args.duration_s)
        print(f"| {strategy.value.replace('_', '-')} | {rate:.1f} | {ideal:.1f} | {rate / ideal:.2f} |", flush=True)


if __name__ == "__main__":
    main()
