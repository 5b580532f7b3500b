"""The model behind a two-method Protocol: BlipCaptioner loads an exported dir and captions batches."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from contracts.captions import MAX_NEW_TOKENS_LIMIT
from inference.errors import BeyondModelLimitError
from inference.generate import Decoder, RowKeeper, greedy_decode
from inference.model_files import (
    TOKENIZER_FILE,
    GenerationConfig,
    Manifest,
    PreprocessConfig,
    load_generation,
    load_manifest,
    load_preprocess,
)
from inference.preprocess import pixel_values
from inference.runtimes import Graphs, RuntimeSetting, VisionEncoder, load_served_graphs
from inference.sessions import Device, DeviceSetting
from inference.tokenizer import CaptionTokenizer


@dataclass(frozen=True)
class CaptionResult:
    caption: str
    token_ids: list[int]
    new_tokens: int


@dataclass(frozen=True)
class ModelDescription:
    name: str
    revision: str | None
    precision: str
    providers: list[str]
    """The execution providers the model's sessions really have, in priority order."""
    is_test_model: bool
    max_new_tokens_limit: int | None = None
    device: Device | None = None
    """Where the decode loop keeps its tensors; None until a model is loaded."""
    runtime: str | None = None
    """What computes the graphs: ``onnxruntime`` or ``openvino-bf16`` / ``openvino-f32`` (``-int8w``)."""


@dataclass(frozen=True)
class BatchTimings:
    preprocess_ms: float
    encode_ms: float
    decode_ms: float


class Captioner(Protocol):
    """What the service needs from a model."""

    def caption_batch(
        self, images: list[Image.Image], prompt: str | None, max_new_tokens: int | None
    ) -> tuple[list[CaptionResult], BatchTimings]: ...

    def describe(self) -> ModelDescription: ...

    def check_request(self, prompt: str | None, max_new_tokens: int | None) -> None:
        """Raise ``BeyondModelLimitError`` for a request the model has no positions for."""


def new_token_budget(max_positions: int | None, prompt_tokens: int, asked: int | None, default: int) -> int:
    """How many new tokens to generate; ``BeyondModelLimitError`` when the decoder's positions cannot hold them.

    Every token fed to the decoder takes a position: the bos, the prompt, and each new token but the
    last (it is never fed back). So ``prompt_tokens + max_new_tokens`` must not exceed ``max_positions``.
    A default budget shrinks to fit; an asked-for one is refused, naming the limit.
    """
    if max_positions is None:  # an export that predates max_positions: nothing to check against
        return asked or default
    room = max_positions - prompt_tokens
    limits: dict[str, str | int] = {
        "max_new_tokens_limit": min(max_positions, MAX_NEW_TOKENS_LIMIT),
        "prompt_tokens": prompt_tokens,
    }
    if room < 1:
        raise BeyondModelLimitError(
            f"The prompt is {prompt_tokens} tokens long, but this model has {max_positions} positions: "
            f"a prompt may take at most {max_positions - 1} tokens.",
            extensions=limits,
        )
    if asked is None:
        return min(default, room)
    if asked > room:
        reason = (
            f"the prompt takes {prompt_tokens} of its {max_positions} positions, leaving room for {room} new tokens"
            if prompt_tokens
            else f"its limit is {room} new tokens (the decoder has {max_positions} positions)"
        )
        raise BeyondModelLimitError(
            f"max_new_tokens={asked} is beyond this model: {reason}.",
            extensions=limits,
        )
    return asked


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class BlipCaptioner:
    """BLIP exported to ONNX: vision graph once per image, then greedy decoding with the KV cache."""

    def __init__(
        self,
        manifest: Manifest,
        graphs: Graphs,
        tokenizer: CaptionTokenizer,
        preprocess: PreprocessConfig,
        generation: GenerationConfig,
    ) -> None:
        self.manifest = manifest
        self.vision: VisionEncoder = graphs.vision
        self.decoder: Decoder = graphs.decoder
        self.rows: RowKeeper = graphs.rows
        self.runtime = graphs.runtime
        self.providers = graphs.providers
        self.device: Device = graphs.device
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.generation = generation
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: Path,
        threads: int,
        device: DeviceSetting = "auto",
        runtime: RuntimeSetting = "onnxruntime",
        *,
        int8_decoder: bool = False,
    ) -> BlipCaptioner:
        """Check every file's hash against the manifest, then load both graphs once on ``runtime``
        (``RuntimeUnavailableError`` where it cannot serve) and, on onnxruntime, on ``device``
        (``DeviceUnavailableError`` when ``cuda`` is asked for and not had); on OpenVINO
        ``int8_decoder`` gives the decoder int8 weights."""
        manifest = load_manifest(model_dir, verify=True)
        generation = load_generation(model_dir)
        graphs = load_served_graphs(
            runtime, manifest.precision, model_dir, generation, threads, device, int8_decoder=int8_decoder
        )
        return cls(
            manifest=manifest,
            graphs=graphs,
            tokenizer=CaptionTokenizer(model_dir / TOKENIZER_FILE),
            preprocess=load_preprocess(model_dir),
            generation=generation,
        )

    def default_max_new_tokens(self, prompt_ids: list[int]) -> int:
        """transformers' default: ``max_length`` counts the bos and the prompt too."""
        return max(1, self.generation.max_length - 1 - len(prompt_ids))

    def token_budget(self, prompt_ids: list[int], max_new_tokens: int | None) -> int:
        default = self.default_max_new_tokens(prompt_ids)
        return new_token_budget(self.generation.max_positions, len(prompt_ids), max_new_tokens, default)

    def check_request(self, prompt: str | None, max_new_tokens: int | None) -> None:
        self.token_budget(self.tokenizer.encode_prompt(prompt) if prompt else [], max_new_tokens)

    def caption_batch(
        self, images: list[Image.Image], prompt: str | None, max_new_tokens: int | None
    ) -> tuple[list[CaptionResult], BatchTimings]:
        """Caption images that share one prompt; one vision call for the whole batch."""
        with self._lock:
            started = time.perf_counter()
            pixels = pixel_values(images, self.preprocess)
            prompt_ids = self.tokenizer.encode_prompt(prompt) if prompt else []
            preprocess_ms = _ms_since(started)
            started = time.perf_counter()
            cross = self.vision.encode(pixels)
            encode_ms = _ms_since(started)
            started = time.perf_counter()
            budget = self.token_budget(prompt_ids, max_new_tokens)
            generated = greedy_decode(self.decoder, cross, prompt_ids, self.generation, budget, rows=self.rows)
            results = [
                CaptionResult(self.tokenizer.decode(row.token_ids), row.token_ids, row.new_tokens) for row in generated
            ]
            return results, BatchTimings(preprocess_ms, encode_ms, _ms_since(started))

    def describe(self) -> ModelDescription:
        return ModelDescription(
            name=self.manifest.source_model,
            revision=self.manifest.revision,
            precision=self.manifest.precision,
            providers=self.providers,
            is_test_model=self.manifest.is_test_model,
            max_new_tokens_limit=self.max_new_tokens_limit,
            device=self.device,
            runtime=self.runtime,
        )

    @property
    def max_new_tokens_limit(self) -> int | None:
        """Largest max_new_tokens served without a prompt: the decoder's positions, within the API's bound."""
        positions = self.generation.max_positions
        return None if positions is None else min(positions, MAX_NEW_TOKENS_LIMIT)
