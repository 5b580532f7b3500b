"""The model behind a two-method Protocol: BlipCaptioner loads an exported dir and captions batches."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from inference.generate import OnnxSession, cross_attention_cache, greedy_decode
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
from inference.sessions import available_providers, create_session
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
    execution_providers: list[str]
    is_test_model: bool


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


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class BlipCaptioner:
    """BLIP exported to ONNX: vision graph once per image, then greedy decoding with the KV cache."""

    def __init__(
        self,
        manifest: Manifest,
        vision: OnnxSession,
        decoder: OnnxSession,
        tokenizer: CaptionTokenizer,
        preprocess: PreprocessConfig,
        generation: GenerationConfig,
    ) -> None:
        self.manifest = manifest
        self.vision = vision
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.generation = generation
        self.providers = available_providers()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path, threads: int) -> BlipCaptioner:
        """Check every file's hash against the manifest, then create the sessions once."""
        manifest = load_manifest(model_dir, verify=True)
        return cls(
            manifest=manifest,
            vision=create_session(model_dir / VISION_FILE, threads),
            decoder=create_session(model_dir / DECODER_FILE, threads),
            tokenizer=CaptionTokenizer(model_dir / TOKENIZER_FILE),
            preprocess=load_preprocess(model_dir),
            generation=load_generation(model_dir),
        )

    def default_max_new_tokens(self, prompt_ids: list[int]) -> int:
        """transformers' default: ``max_length`` counts the bos and the prompt too."""
        return max(1, self.generation.max_length - 1 - len(prompt_ids))

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
            cross = cross_attention_cache(self.vision, pixels, self.generation.num_layers)
            encode_ms = _ms_since(started)
            started = time.perf_counter()
            budget = max_new_tokens or self.default_max_new_tokens(prompt_ids)
            generated = greedy_decode(self.decoder, cross, prompt_ids, self.generation, budget)
            results = [
                CaptionResult(self.tokenizer.decode(row.token_ids), row.token_ids, row.new_tokens) for row in generated
            ]
            return results, BatchTimings(preprocess_ms, encode_ms, _ms_since(started))

    def describe(self) -> ModelDescription:
        return ModelDescription(
            name=self.manifest.source_model,
            revision=self.manifest.revision,
            precision=self.manifest.precision,
            execution_providers=self.providers,
            is_test_model=self.manifest.is_test_model,
        )
