"""A 12 MP JPEG from upload to caption, through both services: ``python -m bench.upload_caption``.

For each set-up (the BLIP-large random-weight exports of ``bench.inference``: the fp32 export on
onnxruntime, the same on OpenVINO (the default where the CPU has bf16) and with int8 decoder
weights, and int8 on onnxruntime) an inference service and a gateway (one worker) run as processes
on loopback; uploads go one at a time, interleaved across the set-ups, each a distinct file (a JPEG
comment makes every upload's sha256 new, so no caption is reused). The time runs from the start of
the POST to the image's ``completed_at`` (the gateway's clock, on this host; the last column is what
a client polling every 0.2 s sees), split into upload (the POST), queue (accepted to claimed),
decode, metadata, thumbnails and caption (the gateway's stage timings). Both services share the
machine's cores, as on one host.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.inference import CACHE_DIR, cpu_info, ensure_export
from bench.uploads import BOUNDARY, free_port, multipart_body

REPO_ROOT = Path(__file__).resolve().parent.parent
PHOTO = REPO_ROOT / "tests" / "data" / "corpus" / "large_12mp_olympus_museum.jpg"
SETUPS = {  # name: (export precision, INFERENCE_RUNTIME)
    "onnx-fp32": ("fp32", "onnxruntime"),
    "onnx-fp32-openvino": ("fp32", "openvino"),
    "onnx-fp32-openvino-int8w": ("fp32", "openvino"),
    "onnx-int8": ("int8", "onnxruntime"),
}
STAGES = ("upload", "queue", "decode", "metadata", "thumbnails", "caption", "total")
POLL_S = 0.2
"""How often the client asks whether the image is done. It shares the 2 cores with both services, and
a 25 ms poll loop took about 0.04 s per caption from the model; the time is the server's completed_at,
so the poll only decides when the client sees it (the last column)."""
THREADS = 2


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_pair(name: str, scratch: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """An inference service for set-up ``name`` and a gateway in front of it; the gateway's URL."""
    precision, runtime = SETUPS[name]
    inference_port, gateway_port = free_port(), free_port()
    base = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    base.pop("DATABASE_URL", None)
    inference = start([sys.executable, "-m", "inference"], base | {
        "INFERENCE_PORT": str(inference_port), "INFERENCE_MODEL": str(CACHE_DIR / f"blip-large-random-{precision}"),
        "INFERENCE_THREADS": str(THREADS), "INFERENCE_LOG_DIR": str(scratch / name),
        "INFERENCE_LOG_LEVEL": "WARNING", "INFERENCE_RUNTIME": runtime,
        "INFERENCE_OPENVINO_DECODER_WEIGHTS": "int8" if name.endswith("-int8w") else "bf16",
    })  # fmt: skip
    wait_ready(f"http://127.0.0.1:{inference_port}/health/ready", inference)
    gateway = start([sys.executable, "-m", "gateway"], base | {
        "GATEWAY_PORT": str(gateway_port), "GATEWAY_WORKERS": "1", "GATEWAY_DATA_DIR": str(scratch / name / "data"),
        "GATEWAY_LOG_DIR": str(scratch / name), "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_INFERENCE_URL": f"http://127.0.0.1:{inference_port}",
    })  # fmt: skip
    wait_ready(f"http://127.0.0.1:{gateway_port}/health/ready", gateway)
    return f"http://127.0.0.1:{gateway_port}", [gateway, inference]


def distinct_jpeg(data: bytes, index: int) -> bytes:
    """The same picture with a JPEG comment segment after SOI: new bytes, same pixels."""
    comment = f"upload {index} {time.time_ns()}".encode()
    return data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def upload_once(client: httpx.Client, gateway: str, body: bytes) -> dict[str, float]:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    started_at = datetime.now(UTC)  # the gateway runs on this host: its completed_at is on the same clock
    started = time.perf_counter()
    response = client.post(f"{gateway}/api/images", content=body, headers=headers)
    uploaded = time.perf_counter()
    if response.status_code != 202:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:200]}")
    image_id = response.json()["id"]
    while True:
        details = client.get(f"{gateway}/api/images/{image_id}").json()
        if details["status"] in ("completed", "failed"):
            break
        time.sleep(POLL_S)
    polled = time.perf_counter() - started
    if details["status"] != "completed":
        raise RuntimeError(f"{image_id} failed: {details.get('error')}")
    stages = details["stages_ms"]
    return {
        "upload": uploaded - started,
        "queue": seconds_between(details["created_at"], details["started_at"]),
        **{stage: (stages[stage] or 0.0) / 1000 for stage in ("decode", "metadata", "thumbnails", "caption")},
        "total": seconds_between(started_at.isoformat(), details["completed_at"]),
        "polled": polled,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=10, help="timed uploads per set-up (after one warm-up)")
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args()
    names = args.setups.split(",")
    for precision in {SETUPS[name][0] for name in names}:
        ensure_export(precision)
    data = PHOTO.read_bytes()
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as scratch_dir, httpx.Client(timeout=120) as client:
        scratch = Path(scratch_dir)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            gateways = {}
            for name in names:
                gateways[name], started = start_pair(name, scratch)
                processes += started
            for index in range(args.uploads + 1):
                for name in names:
                    timing = upload_once(client, gateways[name], multipart_body(distinct_jpeg(data, index)))
                    if index:  # the first upload of each set-up warms up
                        samples[name].append(timing)
                    print(f"upload {index}: {name}: {timing['total']:.2f} s", file=sys.stderr)
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
    print(f"{cpu_info()[0]}, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"{PHOTO.name} ({len(data) / 1e6:.1f} MB, 12 MP) upload to caption, {args.uploads} uploads per set-up, "
          f"one at a time, interleaved; BLIP-large architecture, random weights, "
          f"inference {THREADS} threads\n")  # fmt: skip
    print(
        "| set-up | p50 s | p95 s | "
        + " | ".join(f"{stage} p50 s" for stage in STAGES[:-1])
        + f" | seen by a {POLL_S:g} s poll, p50 s |"
    )
    print("|---|---:|---:|" + "---:|" * len(STAGES))
    for name, rows in samples.items():
        totals = [row["total"] for row in rows]
        parts = " | ".join(f"{statistics.median(row[stage] for row in rows):.2f}" for stage in STAGES[:-1])
        polled = statistics.median(row["polled"] for row in rows)
        print(f"| {name} | {percentile(totals, 0.5):.2f} | {percentile(totals, 0.95):.2f} | {parts} | {polled:.2f} |")


if __name__ == "__main__":
    main()
