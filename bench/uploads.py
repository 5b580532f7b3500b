"""Upload acceptance throughput: our gateway (processing paused) vs a bare Litestar app.

Run with ``make bench-uploads`` (or ``python -m bench.uploads``). Both servers run as uvicorn
processes on loopback with the same settings; 32 concurrent clients post the same ~2 MB JPEG as
multipart. Rounds alternate between the two servers; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
PHOTO = REPO_ROOT / "tests" / "data" / "corpus" / "nature_wisteria_iphone6.jpg"
BOUNDARY = "benchboundary7d1f"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def multipart_body(data: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def start_server(kind: str, port: int, scratch: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if kind == "gateway":
        env.update(
            GATEWAY_PORT=str(port), GATEWAY_WORKERS="0", GATEWAY_DATA_DIR=str(scratch / "data"),
            GATEWAY_LOG_DIR=str(scratch / "logs"), GATEWAY_LOG_LEVEL="WARNING",
        )  # fmt: skip
        env.pop("DATABASE_URL", None)
        command = [sys.executable, "-m", "gateway"]
    else:
        command = [sys.executable, "-m", "uvicorn", "bench.bare_upload_app:app", "--port", str(port),
                   "--log-level", "warning", "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} did not start")


async def load(url: str, body: bytes, requests: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(requests))
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one_client() -> None:
            for _ in counter:
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 202:
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    body = multipart_body(PHOTO.read_bytes())
    results: dict[str, list[tuple[float, float, float]]] = {"bare Litestar": [], "gateway": []}
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        servers = {"bare Litestar": "bare", "gateway": "gateway"}
        ports = {name: free_port() for name in servers}
        processes = {name: start_server(kind, ports[name], scratch) for name, kind in servers.items()}
        try:
            for name in servers:  # warm-up
                asyncio.run(load(f"http://127.0.0.1:{ports[name]}/api/images", body, 32, args.concurrency))
            for _ in range(args.rounds):
                for name in servers:
                    rate, latencies = asyncio.run(
                        load(f"http://127.0.0.1:{ports[name]}/api/images", body, args.requests, args.concurrency)
                    )
                    results[name].append((rate, percentile(latencies, 0.5), percentile(latencies, 0.99)))
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(10)
    size_mb = len(body) / 1e6
    print(f"Upload acceptance, {args.concurrency} concurrent clients, {size_mb:.1f} MB JPEG, processing paused,")
    print(f"{args.requests} requests a round, median of {args.rounds} alternating rounds\n")
    print("| server | requests/s | p50 ms | p99 ms | ratio to bare |")
    print("|---|---:|---:|---:|---:|")
    bare_rate = statistics.median(rate for rate, _, _ in results["bare Litestar"])
    for name, rows in results.items():
        rate = statistics.median(row[0] for row in rows)
        p50 = statistics.median(row[1] for row in rows)
        p99 = statistics.median(row[2] for row in rows)
        print(f"| {name} | {rate:.1f} | {p50:.0f} | {p99:.0f} | {rate / bare_rate:.2f} |")
    # Each round's ratio to the bare round just before it: the spread shows how noisy the machine is.
    paired = [ours[0] / bare[0] for bare, ours in zip(results["bare Litestar"], results["gateway"], strict=True)]
    print(f"\nratio per round: min {min(paired):.2f}, median {statistics.median(paired):.2f}, max {max(paired):.2f}")


if __name__ == "__main__":
    main()
