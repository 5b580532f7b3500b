"""Export a BLIP captioning model (hub id, local HF dir, or a tiny test model) to an ONNX dir.

We call ``torch.onnx.export`` on two small wrapper modules (``graphs.py``) instead of going
through optimum: optimum has no ONNX config for ``blip``, and the split we want (cross-attention
keys/values computed once in the vision graph, one decoder graph for every step) is not one of
its seq2seq layouts. Both graphs are checked against PyTorch with onnxruntime before the dir is
written, and the parity tests pin the whole caption to ``model.generate``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch
import transformers
from transformers import AutoTokenizer, BlipForConditionalGeneration, BlipImageProcessor

from inference.export.graphs import DecoderStep, VisionEncoder
from inference.export.tiny import build_tiny_model, is_tiny_model, tiny_revision
from inference.model_files import (
    DECODER_FILE,
    GENERATION_FILE,
    HASHED_FILES,
    MANIFEST_FILE,
    PREPROCESS_FILE,
    TOKENIZER_FILE,
    VISION_FILE,
    GenerationConfig,
    Manifest,
    PreprocessConfig,
    sha256_of,
    write_json,
)

log = logging.getLogger("inference.export")
OPSET = 17
PARITY_TOLERANCE = 1e-3
DEFAULT_MAX_LENGTH = 20
PRECISIONS = ("fp32", "int8", "fp16")


class ExportError(Exception):
    """The model could not be exported; the message says why and what to do."""


def load_source(
    model: str, workdir: Path, token: str | None, seed: int | None = None
) -> tuple[BlipForConditionalGeneration, Path | str, Any]:
    """The PyTorch model, where it came from (dir or hub id), and its processor parts."""
    source: Path | str = model
    if is_tiny_model(model):
        source = build_tiny_model(model, workdir / "source-model", seed)
    try:
        blip = BlipForConditionalGeneration.from_pretrained(source, token=token, attn_implementation="eager")
        image_processor = BlipImageProcessor.from_pretrained(source, token=token)
        tokenizer = AutoTokenizer.from_pretrained(source, token=token, use_fast=True)
    except OSError as exc:
        raise ExportError(_load_failure(model, source, exc)) from exc
    return blip.eval(), source, (image_processor, tokenizer)


def _load_failure(model: str, source: Path | str, exc: OSError) -> str:
    """One sentence: why ``model`` could not be loaded, and what to do instead."""
    cause = " ".join(str(exc).split()).split(". ")[0]
    instead = (
        "set INFERENCE_MODEL=tiny-random (the offline test model) or to a dir exported with "
        "`python -m inference.export` on a machine with internet"
    )
    if isinstance(source, Path) or Path(model).exists():
        return f"'{model}' is not a loadable Hugging Face BLIP model dir ({cause}); {instead}."
    if os.environ.get("HF_HUB_OFFLINE"):
        return (
            f"'{model}' cannot be had: the Hugging Face Hub is unreachable and the model is not in the "
            f"local Hugging Face cache; {instead}."
        )
    return (
        f"The Hugging Face Hub did not give '{model}' ({cause}); check the id, set HF_TOKEN for a gated or "
        f"private model, or {instead}."
    )


def export_model(
    model: str,
    output: Path,
    precision: str = "fp32",
    token: str | None = None,
    seed: int | None = None,
    *,
    fuse_attention: bool = True,
) -> Path:
    """Export ``model`` into ``output`` (replaced atomically: a half-written dir is never left).

    ``seed`` (tiny test models only) replaces the variant's seed: another model of the same shape,
    whose manifest revision is ``seed-<seed>``. ``fuse_attention=False`` keeps the vision attention
    as plain MatMul/Softmax (benchmarks only).
    """
    if precision not in PRECISIONS:
        raise ExportError(f"Unknown precision '{precision}'; use fp32, int8 or fp16.")
    if seed is not None and not is_tiny_model(model):
        raise ExportError("--seed applies to the tiny test models only.")
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as scratch:
        workdir = Path(scratch)
        staging = workdir / "export"
        staging.mkdir()
        blip, source, (image_processor, tokenizer) = load_source(model, workdir, token, seed)
        log.info("exporting %s (%s) to %s", model, precision, output)
        with torch.no_grad():
            # int8 quantizes the unfused graph: QAttention measured slower than int8 MatMuls (bench.inference)
            _export_vision(blip, staging / VISION_FILE, fuse_attention and precision == "fp32")
            _export_decoder(blip, staging / DECODER_FILE)
        if precision == "int8":
            _quantize(staging)
        elif precision == "fp16":
            _to_fp16(staging)
        _write_side_files(blip, image_processor, tokenizer, staging)
        _write_manifest(blip, model, precision, staging, seed)
        if is_tiny_model(model):
            shutil.copytree(Path(source), staging / "source-model")
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    return output


def _vision_names(layers: int) -> list[str]:
    return ["image_embeds", *(f"cross_{kind}_{i}" for i in range(layers) for kind in ("key", "value"))]


def _cache_names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def _export_vision(blip: BlipForConditionalGeneration, path: Path, fuse_attention: bool) -> None:
    encoder = VisionEncoder(blip).eval()
    size = blip.config.vision_config.image_size
    pixel_values = torch.randn(2, 3, size, size)
    names = _vision_names(len(encoder.layers))
    dynamic = {"pixel_values": {0: "batch"}} | {name: {0: "batch"} for name in names}
    torch.onnx.export(
        encoder, (pixel_values,), str(path), input_names=["pixel_values"], output_names=names,
        dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
    )  # fmt: skip
    vision = blip.config.vision_config
    if fuse_attention:
        _fuse_attention(path, vision.num_attention_heads, vision.hidden_size, vision.num_hidden_layers)
    expected = [tensor.numpy() for tensor in encoder(pixel_values)]
    _check_against_torch(path, {"pixel_values": pixel_values.numpy()}, expected)


def _fuse_attention(path: Path, heads: int, hidden_size: int, layers: int) -> None:
    """onnxruntime's transformer optimizer on the vision graph: each layer's attention becomes one
    ``com.microsoft.Attention`` node (packed qkv weight), layer norms ``SkipLayerNormalization`` and
    the MLP activation ``BiasGelu``. OpenVINO reads these contrib ops too."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(path), model_type="vit", num_heads=heads, hidden_size=hidden_size, opt_level=0)
    fused = sum(node.op_type == "Attention" for node in optimized.model.graph.node)
    if fused != layers:
        raise ExportError(f"{path.name}: {fused} of {layers} vision attention layers fused; expected all.")
    optimized.save_model_to_file(str(path))
    log.info("%s: %d attention layers fused", path.name, fused)


def _export_decoder(blip: BlipForConditionalGeneration, path: Path) -> None:
    step = DecoderStep(blip).eval()
    text = blip.config.text_config
    layers, heads = step.num_layers, step.heads
    head_size = text.hidden_size // heads
    image_tokens = (blip.config.vision_config.image_size // blip.config.vision_config.patch_size) ** 2 + 1
    batch, past_length, new_length = 2, 3, 2
    input_ids = torch.randint(0, text.vocab_size, (batch, new_length))
    past = [torch.randn(batch, heads, past_length, head_size) for _ in range(2 * layers)]
    cross = [torch.randn(batch, heads, image_tokens, head_size) for _ in range(2 * layers)]
    past_names, cross_names = _cache_names("past", layers), _cache_names("cross", layers)
    present_names = _cache_names("present", layers)
    dynamic: dict[str, dict[int, str]] = {"input_ids": {0: "batch", 1: "new_tokens"}, "logits": {0: "batch"}}
    dynamic |= {name: {0: "batch", 2: "past_tokens"} for name in past_names}
    dynamic |= {name: {0: "batch", 2: "image_tokens"} for name in cross_names}
    dynamic |= {name: {0: "batch", 2: "total_tokens"} for name in present_names}
    torch.onnx.export(
        step, (input_ids, *past, *cross), str(path), input_names=["input_ids", *past_names, *cross_names],
        output_names=["logits", *present_names], dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
    )  # fmt: skip
    feeds = {"input_ids": input_ids.numpy()}
    feeds |= {name: tensor.numpy() for name, tensor in zip(past_names + cross_names, past + cross, strict=True)}
    expected = [tensor.numpy() for tensor in step(input_ids, *past, *cross)]
    _check_against_torch(path, feeds, expected)


def _check_against_torch(path: Path, feeds: dict[str, np.ndarray], expected: list[np.ndarray]) -> None:
    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, feeds)
    worst = max(float(np.max(np.abs(a - e))) if a.size else 0.0 for a, e in zip(actual, expected, strict=True))
    if worst > PARITY_TOLERANCE:
        raise ExportError(f"{path.name}: onnxruntime differs from PyTorch by {worst:.2e} (> {PARITY_TOLERANCE}).")
    log.info("%s matches PyTorch (max abs diff %.2e)", path.name, worst)


def _quantize(staging: Path) -> None:
    """Dynamic int8: weights per output channel, activations per tensor at run time. Every MatMul
    with a constant weight (the LM head included: ``graphs.py`` keeps it a MatMul; a fused
    attention would become ``QAttention``); attention scores stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in (VISION_FILE, DECODER_FILE):
        fp32 = staging / name
        int8 = staging / f"{name}.int8"
        quantize_dynamic(
            fp32, int8, op_types_to_quantize=["MatMul", "Attention"], per_channel=True, weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # contrib ops defeat shape inference
        )  # fmt: skip
        int8.replace(fp32)


def _to_fp16(staging: Path) -> None:
    from inference.export.fp16 import Fp16MismatchError, convert_to_fp16

    try:
        convert_to_fp16(staging)
    except Fp16MismatchError as exc:
        raise ExportError(str(exc)) from exc


def _write_side_files(blip: BlipForConditionalGeneration, image_processor: Any, tokenizer: Any, staging: Path) -> None:
    tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
    mean, std = image_processor.image_mean, image_processor.image_std
    write_json(
        staging / PREPROCESS_FILE,
        PreprocessConfig(
            height=image_processor.size["height"],
            width=image_processor.size["width"],
            resample=int(image_processor.resample),
            rescale_factor=float(image_processor.rescale_factor),
            image_mean=(float(mean[0]), float(mean[1]), float(mean[2])),
            image_std=(float(std[0]), float(std[1]), float(std[2])),
        ),
    )
    text = blip.config.text_config
    # config.json omits values equal to their defaults: read the ids from the loaded config object.
    max_length = blip.generation_config.max_length or DEFAULT_MAX_LENGTH
    write_json(
        staging / GENERATION_FILE,
        GenerationConfig(
            bos_token_id=text.bos_token_id,
            eos_token_id=text.sep_token_id,
            pad_token_id=text.pad_token_id,
            max_length=max_length,
            num_layers=text.num_hidden_layers,
            num_heads=text.num_attention_heads,
            head_size=text.hidden_size // text.num_attention_heads,
            vocab_size=text.vocab_size,
            max_positions=text.max_position_embeddings,
        ),
    )


def _write_manifest(
    blip: BlipForConditionalGeneration, model: str, precision: str, staging: Path, seed: int | None
) -> None:
    revision = tiny_revision(model, seed) if is_tiny_model(model) else getattr(blip.config, "_commit_hash", None)
    manifest = Manifest(
        source_model=model,
        revision=revision,
        precision=precision,
        opset=OPSET,
        is_test_model=is_tiny_model(model),
        files_sha256={name: sha256_of(staging / name) for name in HASHED_FILES},
        versions={
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    write_json(staging / MANIFEST_FILE, manifest)
