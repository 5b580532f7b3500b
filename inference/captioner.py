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
from inference.generate import OnnxSession, RowGather, greedy_decode
from inference.model_files import (
    DECODER_FILE,
    TOKENIZER_FILE,
    VISION_FILE,
    GenerationConfig,
    Manifest,
    PreprocessConfig,
    load_generation,
    load_manifest,
    load_preprocess,
)
from inference.preprocess import pixel_values
from inference.sessions import Device, DeviceSetting, DeviceUnavailableError, create_session, device_of, planned_device
from inference.tokenizer import CaptionTokenizer
from inference.vision import VisionEncoder, VisionRuntimeSetting, choose_vision_runtime, load_vision


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
    vision_runtime: str | None = None
    """What computes the vision graph: ``onnxruntime``, ``openvino-bf16`` or ``openvino-f32``."""


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
        vision: VisionEncoder,
        decoder: OnnxSession,
        tokenizer: CaptionTokenizer,
        preprocess: PreprocessConfig,
        generation: GenerationConfig,
        rows: RowGather | None = None,
    ) -> None:
        self.manifest = manifest
        self.vision = vision
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.generation = generation
        self.rows = rows
        # the vision graph runs on the same providers (OnnxVision) or on OpenVINO (vision.runtime says which)
        self.providers = decoder.get_providers()
        self.device: Device = device_of(decoder.get_providers())
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: Path,
        threads: int,
        device: DeviceSetting = "auto",
        vision_runtime: VisionRuntimeSetting = "onnxruntime",
    ) -> BlipCaptioner:
        """Check every file's hash against the manifest, then create the sessions once on ``device``
        (``DeviceUnavailableError`` when ``cuda`` is asked for and not had) and the vision graph on
        ``vision_runtime`` (``VisionRuntimeUnavailableError`` where it cannot serve)."""
        manifest = load_manifest(model_dir, verify=True)
        generation = load_generation(model_dir)
        planned = planned_device(device)
        runtime = choose_vision_runtime(vision_runtime, manifest.precision, planned)
        # the vision graph first: OpenVINO's compile peaks while it converts the weights, best before the decoder exists
        vision = load_vision(model_dir / VISION_FILE, generation.num_layers, threads, runtime, planned)
        decoder = create_session(model_dir / DECODER_FILE, threads, device)
        served_on = device_of(decoder.get_providers())
        if served_on != planned:
            raise DeviceUnavailableError(
                f"INFERENCE_DEVICE={device}: onnxruntime offered {planned}, but the decoder's session got {served_on} "
                "(its log says why): fix the GPU setup, or set INFERENCE_DEVICE to the device wanted."
            )
        gather = create_session(RowGather.model_for(decoder, generation.num_layers), threads, served_on)
        return cls(
            manifest=manifest,
            vision=vision,
            decoder=decoder,
            tokenizer=CaptionTokenizer(model_dir / TOKENIZER_FILE),
            preprocess=load_preprocess(model_dir),
            generation=generation,
            rows=RowGather.for_session(gather, generation.num_layers, served_on),
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
            generated = greedy_decode(
                self.decoder, cross, prompt_ids, self.generation, budget, rows=self.rows, device=self.device
            )
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
            vision_runtime=self.vision.runtime,
        )

    @property
    def max_new_tokens_limit(self) -> int | None:
        """Largest max_new_tokens served without a prompt: the decoder's positions, within the API's bound."""
        positions = self.generation.max_positions
        return None if positions is None else min(positions, MAX_NEW_TOKENS_LIMIT)
