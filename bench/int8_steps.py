"""What each int8 fix is worth: the int8 export rebuilt one fix at a time, for ``bench.inference --int8-steps``.

- ``before``: as quantized before issue 13: the vision graph unfused (BLIP's packed qkv), MatMul
  weights per tensor, the LM head and its transform left fp32 (they were Gemm nodes, which the
  dynamic quantizer skips; here the same two MatMuls are excluded by name).
- ``lm-head``: the LM head and its transform int8 too.
- ``per-channel``: and every weight quantized per output channel: the product's int8 recipe since
  commit 8675d35 (its vision graph has q/k/v split instead of packed; same MatMul work).
- ``onnx-int8`` of a run made before that commit: and the vision attention fused first (one
  ``QAttention`` per layer), measured slower, so no longer done.

Each variant dir reuses the fp32 export's side files with a manifest of its own hashes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from inference.model_files import (
    DECODER_FILE,
    HASHED_FILES,
    MANIFEST_FILE,
    VISION_FILE,
    load_generation,
    load_manifest,
    sha256_of,
    write_json,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS_DIR = REPO_ROOT / "models" / "bench" / "int8-steps"
STEP_NAMES = ("before", "lm-head", "per-channel")


def lm_head_nodes(decoder: Path, vocab_size: int) -> list[str]:
    """The head's transform MatMul and the MatMul whose weight has ``vocab_size`` columns."""
    model = onnx.load(str(decoder), load_external_data=False)
    widths = {tensor.name: tensor.dims[-1] for tensor in model.graph.initializer if len(tensor.dims) == 2}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and ("/transform/" in node.name or widths.get(node.input[1]) == vocab_size)
    ]


def quantize(source: Path, target: Path, *, per_channel: bool, exclude: list[str] | None = None) -> None:
    if not target.exists():
        quantize_dynamic(
            source, target, op_types_to_quantize=["MatMul"], per_channel=per_channel, weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude or [],
        )  # fmt: skip


def build_step_dirs(fp32_dir: Path, unfused_dir: Path) -> dict[str, Path]:
    """One exported dir per step under STEPS_DIR (made once)."""
    work = STEPS_DIR / "graphs"
    work.mkdir(parents=True, exist_ok=True)
    head = lm_head_nodes(fp32_dir / DECODER_FILE, load_generation(fp32_dir).vocab_size)
    quantize(unfused_dir / VISION_FILE, work / "vision-per-tensor.onnx", per_channel=False)
    quantize(unfused_dir / VISION_FILE, work / "vision-per-channel.onnx", per_channel=True)
    quantize(fp32_dir / DECODER_FILE, work / "decoder-head-fp32.onnx", per_channel=False, exclude=head)
    quantize(fp32_dir / DECODER_FILE, work / "decoder-per-tensor.onnx", per_channel=False)
    quantize(fp32_dir / DECODER_FILE, work / "decoder-per-channel.onnx", per_channel=True)
    layout = {
        "before": ("vision-per-tensor.onnx", "decoder-head-fp32.onnx"),
        "lm-head": ("vision-per-tensor.onnx", "decoder-per-tensor.onnx"),
        "per-channel": ("vision-per-channel.onnx", "decoder-per-channel.onnx"),
    }
    dirs = {}
    for name, (vision, decoder) in layout.items():
        target = STEPS_DIR / name
        if not (target / MANIFEST_FILE).exists():
            target.mkdir(parents=True, exist_ok=True)
            for file in HASHED_FILES:
                if file not in (VISION_FILE, DECODER_FILE):
                    shutil.copy2(fp32_dir / file, target / file)
            shutil.copy2(work / vision, target / VISION_FILE)
            shutil.copy2(work / decoder, target / DECODER_FILE)
            manifest = load_manifest(fp32_dir, verify=False).model_copy(
                update={"precision": f"int8 ({name})", "files_sha256": {f: sha256_of(target / f) for f in HASHED_FILES}}
            )
            write_json(target / MANIFEST_FILE, manifest)
        dirs[name] = target
    return dirs
