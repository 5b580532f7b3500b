"""Greedy decoding with the KV cache over the two exported graphs, the cache kept on the device.

Step one feeds ``[bos] + prompt`` with an empty self-attention cache; every later step feeds the
previous token and the cache the last step returned. The cross-attention keys/values come from
the vision graph once per image. Both stay where the session computes (GPU memory on CUDA, host
memory on CPU) as onnxruntime ``OrtValue``\\ s bound with IO binding: per step only the new token
ids go in and the last position's logits come out. A row that reaches ``eos`` is dropped from the
batch before the next step (its cache rows too, gathered on the device by ``RowGather``), so
finished captions stop costing work; transformers pads them instead, which changes nothing in the
text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from inference.model_files import GenerationConfig
from inference.row_gather import INDICES, gathered_name, row_gather_model

CACHE_DTYPES: dict[str, np.dtype[Any]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
}


class OnnxSession(Protocol):
    """The part of ``onnxruntime.InferenceSession`` the decode loop uses."""

    def io_binding(self) -> Any: ...

    def run_with_iobinding(self, iobinding: Any, run_options: Any = None) -> None: ...

    def get_inputs(self) -> list[Any]: ...

    def get_providers(self) -> list[str]: ...


@dataclass(frozen=True)
class Generated:
    token_ids: list[int]
    """Prompt ids (bos first) followed by the new tokens, as ``model.generate`` returns them."""
    new_tokens: int


def cache_names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}_{kind}_{index}" for index in range(layers) for kind in ("key", "value")]


def cache_dtype(decoder: OnnxSession) -> np.dtype[Any]:
    """float32, or float16 for an fp16 export: the element type of the decoder's cache inputs."""
    kinds = {item.name: item.type for item in decoder.get_inputs()}
    return CACHE_DTYPES[kinds["past_key_0"]]


def cross_attention_cache(
    vision: OnnxSession, pixels: NDArray[np.float32], layers: int, device: str = "cpu"
) -> dict[str, Any]:
    """Run the vision graph once: the cross keys/values of every decoder layer, by input name, as
    ``OrtValue``\\ s on ``device`` (the image embeddings are not fetched)."""
    binding = vision.io_binding()
    binding.bind_cpu_input("pixel_values", pixels)
    names = cache_names("cross", layers)
    for name in names:
        binding.bind_output(name, device)
    vision.run_with_iobinding(binding)
    return dict(zip(names, binding.get_outputs(), strict=True))


def _gathered_names(layers: int) -> list[str]:
    return cache_names("past", layers) + cache_names("cross", layers)


class RowGather:
    """Keeps some batch rows of the cache tensors, on the device they live on (see ``row_gather``)."""

    def __init__(self, session: OnnxSession, names: list[str], device: str) -> None:
        self.session, self.names, self.device = session, names, device

    @staticmethod
    def model_for(decoder: OnnxSession, layers: int) -> bytes:
        """The Gather graph over ``decoder``'s cache inputs, in their element type."""
        return row_gather_model(_gathered_names(layers), cache_dtype(decoder))

    @classmethod
    def for_session(cls, session: OnnxSession, layers: int, device: str) -> RowGather:
        return cls(session, _gathered_names(layers), device)

    def keep(self, tensors: dict[str, Any], rows: NDArray[np.int64]) -> dict[str, Any]:
        binding = self.session.io_binding()
        binding.bind_cpu_input(INDICES, rows.astype(np.int64))
        for name in self.names:
            binding.bind_ortvalue_input(name, tensors[name])
            binding.bind_output(gathered_name(name), self.device)
        self.session.run_with_iobinding(binding)
        return dict(zip(self.names, binding.get_outputs(), strict=True))


def rows_of(tensor: Any) -> int:
    """The batch size of an ``OrtValue`` (``shape()``) or a numpy array (``shape``)."""
    shape = tensor.shape
    return int((shape() if callable(shape) else shape)[0])


class RowKeeper(Protocol):
    def keep(self, tensors: dict[str, Any], rows: NDArray[np.int64]) -> dict[str, Any]:
        """The given batch ``rows`` of every tensor, by name, where the tensors live."""


class DecodeStep(Protocol):
    def bind(self, values: dict[str, Any]) -> None:
        """Inputs that stay the same from step to step (the cross keys/values, until rows leave the batch)."""

    def __call__(self, input_ids: NDArray[np.int64], past: dict[str, Any]) -> tuple[NDArray[np.float32], list[Any]]:
        """One step: the last position's logits on the host, and the new cache (``present_*``) in layer order."""


class Decoder(Protocol):
    """The decoder-step graph on its runtime (``OnnxDecoder``, or ``openvino_graphs.OpenVinoDecoder``)."""

    def empty_cache(self, batch: int, config: GenerationConfig) -> Any:
        """The first step's (empty) self-attention cache tensor."""

    def start(self) -> DecodeStep:
        """A step runner for one batch's decode loop."""


def greedy_decode(
    decoder: Decoder,
    cross: dict[str, Any],
    prompt_ids: list[int],
    config: GenerationConfig,
    max_new_tokens: int,
    min_new_tokens: int = 0,
    *,
    rows: RowKeeper | None = None,
) -> list[Generated]:
    """Greedy continuation of ``[bos] + prompt_ids`` for every image in ``cross``.

    ``min_new_tokens`` forbids ``eos`` until that many tokens exist (transformers' meaning). With
    ``rows``, finished rows leave the batch; without, they are decoded along (fed ``pad``) and ignored.
    """
    batch = rows_of(next(iter(cross.values())))
    prefix = [config.bos_token_id, *prompt_ids]
    input_ids = np.array([prefix] * batch, dtype=np.int64)
    past_names = cache_names("past", config.num_layers)
    past = dict.fromkeys(past_names, decoder.empty_cache(batch, config))
    step = decoder.start()
    step.bind(cross)
    tokens = [list(prefix) for _ in range(batch)]
    alive = np.arange(batch)  # the original row of each row still in the batch
    finished = np.zeros(batch, dtype=bool)
    for index in range(max_new_tokens):
        logits, presents = step(input_ids, past)
        if index < min_new_tokens:
            logits[:, config.eos_token_id] = -np.inf
        next_ids = np.argmax(logits, axis=-1)
        for row, token in zip(alive.tolist(), next_ids.tolist(), strict=True):
            if not finished[row]:
                tokens[row].append(int(token))
        finished[alive] |= next_ids == config.eos_token_id
        if finished.all() or index + 1 == max_new_tokens:
            break
        past = dict(zip(past_names, presents, strict=True))
        if rows is not None and finished[alive].any():
            keep = np.flatnonzero(~finished[alive])
            kept = rows.keep(past | cross, keep)
            past, cross = {name: kept[name] for name in past}, {name: kept[name] for name in cross}
            step.bind(cross)
            alive, next_ids = alive[keep], next_ids[keep]
        input_ids = np.where(finished[alive], config.pad_token_id, next_ids).astype(np.int64)[:, None]
    return [Generated(token_ids=row, new_tokens=len(row) - len(prefix)) for row in tokens]


class DecoderStep:
    """One decoder run through one IO binding: token ids from the host, cache and cross keys/values
    from the device, the new cache left on the device and only the logits copied to the host."""

    def __init__(self, decoder: OnnxSession, present_names: list[str], device: str) -> None:
        self.decoder, self.present_names, self.device = decoder, present_names, device
        self.binding = decoder.io_binding()

    def bind(self, values: dict[str, Any]) -> None:
        """Inputs that stay bound from step to step (the cross keys/values, until rows leave the batch)."""
        for name, value in values.items():
            self.binding.bind_ortvalue_input(name, value)

    def __call__(self, input_ids: NDArray[np.int64], past: dict[str, Any]) -> tuple[NDArray[np.float32], list[Any]]:
        self.binding.bind_cpu_input("input_ids", input_ids)
        self.bind(past)
        self.binding.bind_output("logits", "cpu")
        for name in self.present_names:
            self.binding.bind_output(name, self.device)
        self.decoder.run_with_iobinding(self.binding)
        logits, *presents = self.binding.get_outputs()
        return logits.numpy(), presents


class OnnxDecoder:
    """The decoder-step graph on onnxruntime; the cache it returns stays on ``device``."""

    def __init__(self, session: OnnxSession, layers: int, device: str) -> None:
        self.session, self.device = session, device
        self.present_names = cache_names("present", layers)

    def empty_cache(self, batch: int, config: GenerationConfig) -> Any:
        # a host value (no bytes to copy) rather than a zero-size device allocation
        shape = (batch, config.num_heads, 0, config.head_size)
        return ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype=cache_dtype(self.session)))

    def start(self) -> DecoderStep:
        return DecoderStep(self.session, self.present_names, self.device)
