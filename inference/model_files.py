"""The exported model dir: file names, the manifest, and integrity checks (torch-free).

Written by ``inference.export``, read by the serving process::

    vision.onnx        pixel_values -> image_embeds + cross keys/values of every decoder layer
    decoder.onnx       one decoding step with an explicit self-attention cache
    tokenizer.json     for the ``tokenizers`` library
    preprocess.json    size, resample, rescale, mean/std of BlipImageProcessor
    generation.json    bos/eos/pad ids, default max tokens, greedy
    manifest.json      source model and revision, precision, opset, versions, sha256 of each file
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

VISION_FILE = "vision.onnx"
DECODER_FILE = "decoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
PREPROCESS_FILE = "preprocess.json"
GENERATION_FILE = "generation.json"
MANIFEST_FILE = "manifest.json"
ModelT = TypeVar("ModelT", bound=BaseModel)
HASHED_FILES = (VISION_FILE, DECODER_FILE, TOKENIZER_FILE, PREPROCESS_FILE, GENERATION_FILE)


class ModelFilesError(Exception):
    """An exported dir that is missing, incomplete or altered."""


class PreprocessConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    height: int = Field(ge=1)
    width: int = Field(ge=1)
    resample: int = Field(description="PIL resampling filter id (3 = bicubic).")
    rescale_factor: float
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]


class GenerationConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    bos_token_id: int
    eos_token_id: int = Field(description="Generation stops at this id (BLIP uses [SEP]).")
    pad_token_id: int
    max_length: int = Field(ge=1, description="Prompt plus generated tokens, as transformers counts it.")
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    head_size: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    max_positions: int | None = Field(
        default=None, ge=1, description="Position slots of the text decoder (None in exports made before it was kept)."
    )
    decoding: Literal["greedy"] = Field(
        default="greedy", description="What the runtime does: argmax at every step, no sampling, one beam."
    )


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    source_model: str
    revision: str | None
    precision: str
    opset: int
    is_test_model: bool
    files_sha256: dict[str, str]
    versions: dict[str, str]
    created_at: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, payload: BaseModel | dict[str, Any]) -> None:
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def is_exported_dir(path: Path) -> bool:
    return (path / MANIFEST_FILE).is_file()


def load_manifest(model_dir: Path, *, verify: bool = True) -> Manifest:
    """The manifest of ``model_dir``; with ``verify`` every file's sha256 is checked."""
    manifest_path = model_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelFilesError(f"{model_dir} is not an exported model dir (no {MANIFEST_FILE}).")
    manifest = _parse(Manifest, manifest_path)
    if verify:
        for name in HASHED_FILES:
            path = model_dir / name
            if not path.is_file():
                raise ModelFilesError(f"{path} is missing; export the model again.")
            if sha256_of(path) != manifest.files_sha256.get(name):
                raise ModelFilesError(f"{path} does not match its sha256 in {MANIFEST_FILE}; export again.")
    return manifest


def load_preprocess(model_dir: Path) -> PreprocessConfig:
    return _parse(PreprocessConfig, model_dir / PREPROCESS_FILE)


def load_generation(model_dir: Path) -> GenerationConfig:
    return _parse(GenerationConfig, model_dir / GENERATION_FILE)


def _parse(model: type[ModelT], path: Path) -> ModelT:
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ModelFilesError(
            f"{path} is not a valid {path.name} ({exc.error_count()} problems, first: {exc.errors()[0]['msg']}); "
            "export the model again."
        ) from exc
