"""Inference benchmark: PyTorch eager ``generate`` (fp32, and bf16 where the CPU has bf16) vs our
ONNX export (fp32 and int8 on onnxruntime, the fp32 export on OpenVINO) on BLIP-large.

Run with ``make bench-inference`` (or ``python -m bench.inference``). The real
blip-image-captioning-large architecture is built from its config values with seeded random
weights (same compute as the real model), exported by our own exporter, and every configuration
runs in its own process (so peak RSS is its own), 2 threads, exactly 20 new tokens, batch 1 and
4. Rounds interleave the configurations; every cell is the median with its min-max spread, with
ratios to the best PyTorch set-up (bf16 where the CPU has AMX or AVX512_BF16, else fp32) and the
roofline: encoder FLOPs / measured ORT GEMM rate + decoder bytes / measured memory bandwidth.
``--int8-steps`` adds the int8 variants that show what each quantization fix is worth
(``bench/int8_steps.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / "models" / "bench"
SOURCE_DIR = CACHE_DIR / "blip-large-random-hf"
THREADS = 2
NEW_TOKENS = 20
ENCODER_GFLOP = 382.0  # per image: 24 layers x 577 tokens x hidden 1024 (matmuls and attention)
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
ONNX_CONFIGS = ("onnx-fp32", "onnx-fp32-openvino", "onnx-fp32-openvino-int8w", "onnx-int8")
CUDA_CONFIGS = ("pytorch", "pytorch-bf16", "onnx-fp32", "onnx-fp16")
"""``--device cuda``: PyTorch on the GPU in fp32 and bf16, our fp32 and fp16 exports on the CUDA provider."""
LARGE_TEXT = {"vocab_size": 30524, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
              "num_attention_heads": 12, "max_position_embeddings": 512}  # fmt: skip
LARGE_VISION = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                "image_size": 384, "patch_size": 16, "initializer_range": 0.02}  # fmt: skip


def build_large_random() -> Path:
    """blip-image-captioning-large's architecture with seeded random weights, as a HF model dir."""
    if (SOURCE_DIR / "config.json").exists():
        return SOURCE_DIR
    import torch
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    SOURCE_DIR.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{index}" for index in range(30522 - 5))]
    (SOURCE_DIR / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(SOURCE_DIR / "vocab.txt"), bos_token="[DEC]",
                                  additional_special_tokens=["[ENC]"])  # fmt: skip
    text = LARGE_TEXT | {"bos_token_id": tokenizer.convert_tokens_to_ids("[DEC]"), "sep_token_id": 3, "pad_token_id": 0}
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=LARGE_VISION)).eval()
    model.save_pretrained(SOURCE_DIR)
    BlipProcessor(image_processor=BlipImageProcessor(), tokenizer=tokenizer).save_pretrained(SOURCE_DIR)
    return SOURCE_DIR


def ensure_unfused_export() -> Path:
    """The fp32 export before attention fusion (the int8 steps' starting point)."""
    target = CACHE_DIR / "blip-large-random-fp32-unfused"
    if not (target / "manifest.json").exists():
        command = [sys.executable, "-c", "import sys; from pathlib import Path; "
                   "from inference.export.onnx_export import export_model; "
                   "export_model(sys.argv[1], Path(sys.argv[2]), fuse_attention=False)",
                   str(build_large_random()), str(target)]  # fmt: skip
        subprocess.run(command, check=True, cwd=REPO_ROOT)
    return target


def ensure_export(precision: str) -> Path:
    target = CACHE_DIR / f"blip-large-random-{precision}"
    if not (target / "manifest.json").exists():
        command = [sys.executable, "-m", "inference.export", "--model", str(build_large_random()),
                   "--output", str(target), "--precision", precision]  # fmt: skip
        subprocess.run(command, check=True, cwd=REPO_ROOT)
    return target


def sample_images(batch: int) -> list[Any]:
    from PIL import Image

    corpus = REPO_ROOT / "tests" / "data" / "corpus"
    names = ["animal_cat_chelsea.png", "outdoor_rocket_launch.jpg", "object_coffee_cup.png",
             "person_astronaut_eileen_collins.png"]  # fmt: skip
    return [Image.open(corpus / names[index % len(names)]).convert("RGB") for index in range(batch)]


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and flags, from /proc/cpuinfo."""
    name, flags = "unknown CPU", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            name = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return name, flags


def cpu_has_bf16() -> bool:
    return any(flag in cpu_info()[1] for flag in BF16_CPU_FLAGS)


def configs(int8_steps: bool, device: str = "cpu") -> list[str]:
    """PyTorch fp32, PyTorch bf16 where the CPU has it, then ours (on CUDA: ``CUDA_CONFIGS``)."""
    from bench.int8_steps import STEP_NAMES

    if device == "cuda":
        return list(CUDA_CONFIGS)
    steps = [f"onnx-int8-{name}" for name in STEP_NAMES] if int8_steps else []
    return ["pytorch", *(["pytorch-bf16"] if cpu_has_bf16() else []), *ONNX_CONFIGS, *steps]


def model_dir_of(config: str) -> Path:
    from bench.int8_steps import STEPS_DIR

    if config.startswith("onnx-int8-"):
        return STEPS_DIR / config.removeprefix("onnx-int8-")
    return CACHE_DIR / f"blip-large-random-{config.split('-')[1]}"


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: across fork/vfork + exec Linux carries
    the parent's high-water mark into it, so a worker would report the exporting parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_pytorch(batch: int, iterations: int, bf16: bool, device: str = "cpu") -> dict[str, Any]:
    import torch
    from transformers import BlipForConditionalGeneration, BlipProcessor

    torch.set_num_threads(THREADS)
    model = BlipForConditionalGeneration.from_pretrained(SOURCE_DIR, attn_implementation="eager").eval()
    inputs = BlipProcessor.from_pretrained(SOURCE_DIR)(images=sample_images(batch), return_tensors="pt")
    if bf16:  # the weights and the activations in bf16: oneDNN's bf16 kernels where the CPU has them
        model = model.to(torch.bfloat16)
        inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    model, inputs = model.to(device), inputs.to(device)
    latencies = []
    with torch.inference_mode():
        for _ in range(iterations + 1):
            started = time.perf_counter()
            output = model.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=NEW_TOKENS,
                                    min_new_tokens=NEW_TOKENS)  # fmt: skip
            if device == "cuda":
                torch.cuda.synchronize()
            latencies.append(time.perf_counter() - started)
            assert output.shape[1] == NEW_TOKENS + 1
    return {"latencies_s": latencies[1:], "encode_s": [], "decode_s": []}


def run_onnx(config: str, batch: int, iterations: int, device: str = "cpu") -> dict[str, Any]:
    """``device`` cuda: ``INFERENCE_DEVICE=cuda``, so a missing CUDA provider is an error, not a CPU figure."""
    from inference.captioner import BlipCaptioner
    from inference.generate import greedy_decode
    from inference.preprocess import pixel_values

    runtime = "openvino" if "-openvino" in config else "onnxruntime"
    on = "cuda" if device == "cuda" else "cpu"
    captioner = BlipCaptioner.load(
        model_dir_of(config), threads=THREADS, device=on, runtime=runtime, int8_decoder=config.endswith("-int8w")
    )
    images = sample_images(batch)
    latencies, encodes, decodes = [], [], []
    for _ in range(iterations + 1):
        started = time.perf_counter()
        pixels = pixel_values(images, captioner.preprocess)
        encode_started = time.perf_counter()
        cross = captioner.vision.encode(pixels)
        decode_started = time.perf_counter()
        encodes.append(decode_started - encode_started)
        rows = greedy_decode(captioner.decoder, cross, [], captioner.generation, NEW_TOKENS, NEW_TOKENS)
        decodes.append(time.perf_counter() - decode_started)
        latencies.append(time.perf_counter() - started)
        assert all(row.new_tokens == NEW_TOKENS for row in rows)
    return {"latencies_s": latencies[1:], "encode_s": encodes[1:], "decode_s": decodes[1:]}


def worker(config: str, batch: int, iterations: int, device: str) -> None:
    if config.startswith("pytorch"):
        result = run_pytorch(batch, iterations, bf16=config == "pytorch-bf16", device=device)
    else:
        result = run_onnx(config, batch, iterations, device)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def measure_gemm_gflops() -> float:
    """ORT's fp32 MatMul rate on this machine with THREADS threads (577x1024 @ 1024x4096)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [577, 1024]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1024, 4096])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [577, 4096])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    del onnx
    a = np.random.default_rng(0).standard_normal((577, 1024), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((1024, 4096), dtype=np.float32)
    for _ in range(3):
        session.run(None, {"a": a, "b": b})
    runs = []
    for _ in range(15):
        started = time.perf_counter()
        session.run(None, {"a": a, "b": b})
        runs.append(time.perf_counter() - started)
    return 2 * 577 * 1024 * 4096 / statistics.median(runs) / 1e9


def measure_bandwidth_gbs() -> float:
    """Memory bandwidth (read + write) of a 512 MB copy."""
    source = np.ones(128 * 1024 * 1024, dtype=np.float32)
    target = np.empty_like(source)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        np.copyto(target, source)
        runs.append(time.perf_counter() - started)
    return 2 * source.nbytes / statistics.median(runs) / 1e9


def decoder_weight_bytes() -> int:
    import onnx

    model = onnx.load(str(CACHE_DIR / "blip-large-random-fp32" / "decoder.onnx"))
    return sum(int(np.prod(tensor.dims)) * 4 for tensor in model.graph.initializer if len(tensor.dims) == 2)


def spread(values: list[float], digits: int = 2) -> str:
    """``median (min-max)``."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def require_cuda() -> None:
    """``--device cuda`` measures on a GPU or not at all: say what is missing before any export."""
    import onnxruntime as ort
    import torch

    missing = []
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        missing.append(f"onnxruntime {ort.__version__} has no CUDA provider (install the gpu extra, onnxruntime-gpu)")
    if not torch.cuda.is_available():
        missing.append(f"torch {torch.__version__} sees no CUDA device (a CUDA build of torch and a GPU are needed)")
    if missing:
        raise SystemExit("--device cuda: " + "; ".join(missing) + ".")


def default_config() -> str:
    """The row the service's defaults serve on this CPU (``INFERENCE_RUNTIME=auto``, fp32 export)."""
    from inference.runtimes import openvino_computes_bf16

    return "onnx-fp32-openvino" if openvino_computes_bf16() else "onnx-fp32"


def label(config: str) -> str:
    from inference.runtimes import openvino_computes_bf16

    compute = "bf16" if openvino_computes_bf16() else "f32"
    names = {
        "onnx-fp32-openvino": f"onnx-fp32 on OpenVINO ({compute})",
        "onnx-fp32-openvino-int8w": f"onnx-fp32 on OpenVINO ({compute}, int8 decoder weights)",
    }
    return names.get(config, config) + (" **default**" if config == default_config() else "")


def print_table(samples: dict[tuple[str, int], dict[str, list[float]]], names: list[str], batches: list[int]) -> None:
    reference_name = "pytorch-bf16" if "pytorch-bf16" in names else "pytorch"
    print(f"| configuration | batch | latency s | vision s | decoder s | images/s | peak RSS MB | "
          f"vs pytorch | vs {reference_name} (best PyTorch) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for batch in batches:
        fp32 = statistics.median(samples[("pytorch", batch)]["latencies_s"])
        best = statistics.median(samples[(reference_name, batch)]["latencies_s"])
        for config in names:
            entry = samples[(config, batch)]
            latency = statistics.median(entry["latencies_s"])
            vision = spread(entry["encode_s"]) if entry["encode_s"] else "-"
            decoder = spread(entry["decode_s"]) if entry["decode_s"] else "-"
            print(f"| {label(config)} | {batch} | {spread(entry['latencies_s'])} | {vision} | {decoder} | "
                  f"{batch / latency:.2f} | {max(entry['peak_rss_mb']):.0f} | {latency / fp32:.2f} | "
                  f"{latency / best:.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=2, help="timed runs per worker process")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--int8-steps", action="store_true", help="also the int8 variants of bench/int8_steps.py")
    parser.add_argument("--worker")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: PyTorch and our fp32/fp16 exports on the GPU (gpu extra, CUDA torch)")  # fmt: skip
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.batch, args.iterations, args.device)
        return
    if args.device == "cuda":
        require_cuda()
    for precision in ("fp32", "fp16") if args.device == "cuda" else ("fp32", "int8"):
        ensure_export(precision)
    if args.int8_steps:
        from bench.int8_steps import build_step_dirs

        build_step_dirs(CACHE_DIR / "blip-large-random-fp32", ensure_unfused_export())
    names = configs(args.int8_steps, args.device)
    batches = [int(value) for value in args.batches.split(",")]
    samples: dict[tuple[str, int], dict[str, list[float]]] = {}
    gemm_rates: list[float] = []
    bandwidths: list[float] = []
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    started_at = datetime.now(UTC)
    for round_number in range(args.rounds):
        # the machine's own rates are measured in every round, between the model runs, so the
        # roofline moves with whatever else the (shared) machine is doing at the time
        gemm_rates.append(measure_gemm_gflops())
        bandwidths.append(measure_bandwidth_gbs())
        for batch in batches:
            for config in names:
                command = [sys.executable, "-m", "bench.inference", "--worker", config, "--batch", str(batch),
                           "--iterations", str(args.iterations), "--device", args.device]  # fmt: skip
                output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO_ROOT, env=env)
                result = json.loads(output.stdout.strip().splitlines()[-1])
                entry = samples.setdefault(
                    (config, batch), {"latencies_s": [], "encode_s": [], "decode_s": [], "peak_rss_mb": []}
                )
                for key in ("latencies_s", "encode_s", "decode_s"):
                    entry[key] += result[key]
                entry["peak_rss_mb"].append(result["peak_rss_mb"])
                print(f"round {round_number + 1}: {config} batch {batch}: "
                      f"{statistics.median(result['latencies_s']):.2f} s", file=sys.stderr)  # fmt: skip
    gemm_rates.append(measure_gemm_gflops())
    bandwidths.append(measure_bandwidth_gbs())
    gemm, bandwidth = statistics.median(gemm_rates), statistics.median(bandwidths)
    decoder_bytes = decoder_weight_bytes()
    cpu_name, flags = cpu_info()
    bf16_flags = ", ".join(flag for flag in BF16_CPU_FLAGS if flag in flags) or "none"
    print(f"{cpu_name} ({os.cpu_count()} CPUs; bf16 flags: {bf16_flags}), "
          f"{started_at:%Y-%m-%d %H:%M} to {datetime.now(UTC):%H:%M} UTC")  # fmt: skip
    print(f"BLIP-large architecture, random weights, {NEW_TOKENS} new tokens, {THREADS} threads, "
          f"{args.rounds} interleaved rounds x {args.iterations} runs; median (min-max)\n")  # fmt: skip
    print_table(samples, names, batches)
    if args.device == "cuda":
        return
    encode = statistics.median(samples[("onnx-fp32", 1)]["encode_s"])
    total = statistics.median(samples[("onnx-fp32", 1)]["latencies_s"])
    encoder_bound = ENCODER_GFLOP / gemm
    decoder_bound = decoder_bytes * NEW_TOKENS / (bandwidth * 1e9)
    print(f"\nRoofline (batch 1, fp32): ORT fp32 GEMM {gemm:.0f} GFLOP/s (median of {len(gemm_rates)} "
          f"measurements between the rounds, {min(gemm_rates):.0f}-{max(gemm_rates):.0f}), memory bandwidth "
          f"{bandwidth:.1f} GB/s ({min(bandwidths):.1f}-{max(bandwidths):.1f}).")  # fmt: skip
    print(f"- vision encoder: {encode:.3f} s measured vs {encoder_bound:.3f} s at the GEMM rate "
          f"({encode / encoder_bound:.2f}x)")  # fmt: skip
    print(f"- decoder: {decoder_bytes / 1e6:.0f} MB of weights streamed per token x {NEW_TOKENS} = "
          f"{decoder_bound:.3f} s at the measured bandwidth")  # fmt: skip
    print(f"- total: {total:.3f} s measured vs {encoder_bound + decoder_bound:.3f} s bound "
          f"({total / (encoder_bound + decoder_bound):.2f}x)")  # fmt: skip
    strictest = ENCODER_GFLOP / max(gemm_rates) + decoder_bytes * NEW_TOKENS / (max(bandwidths) * 1e9)
    print(f"- total against the fastest GEMM and bandwidth measured: {total / strictest:.2f}x")


if __name__ == "__main__":
    main()
