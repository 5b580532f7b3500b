"""Greedy decoding with the KV cache, in numpy, over the two exported graphs.

Step one feeds ``[bos] + prompt`` with an empty self-attention cache; every later step feeds the
previous token and the cache the last step returned. The cross-attention keys/values come from
the vision graph once per image. Rows that reach ``eos`` stop growing; transformers pads them,
which changes nothing in the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from inference.model_files import GenerationConfig


class OnnxSession(Protocol):
    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...


@dataclass(frozen=True)
class Generated:
    token_ids: list[int]
    """Prompt ids (bos first) followed by the new tokens, as ``model.generate`` returns them."""
    new_tokens: int


def cross_attention_cache(vision: OnnxSession, pixels: NDArray[np.float32], layers: int) -> dict[str, Any]:
    """Run the vision graph once: the cross keys/values of every decoder layer, by input name."""
    outputs = vision.run(None, {"pixel_values": pixels})
    names = [f"cross_{kind}_{index}" for index in range(layers) for kind in ("key", "value")]
    return dict(zip(names, outputs[1:], strict=True))


def greedy_decode(
    decoder: OnnxSession,
    cross: dict[str, Any],
    prompt_ids: list[int],
    config: GenerationConfig,
    max_new_tokens: int,
    min_new_tokens: int = 0,
) -> list[Generated]:
    """Greedy continuation of ``[bos] + prompt_ids`` for every image in ``cross``.

    ``min_new_tokens`` forbids ``eos`` until that many tokens exist (transformers' meaning).
    """
    batch = next(iter(cross.values())).shape[0]
    prefix = [config.bos_token_id, *prompt_ids]
    input_ids = np.array([prefix] * batch, dtype=np.int64)
    empty = np.zeros((batch, config.num_heads, 0, config.head_size), dtype=np.float32)
    past = {f"past_{kind}_{i}": empty for i in range(config.num_layers) for kind in ("key", "value")}
    rows = [list(prefix) for _ in range(batch)]
    finished = np.zeros(batch, dtype=bool)
    for step in range(max_new_tokens):
        logits, *presents = decoder.run(None, {"input_ids": input_ids, **past, **cross})
        if step < min_new_tokens:
            logits[:, config.eos_token_id] = -np.inf
        next_ids = np.argmax(logits, axis=-1)
        for row, token in enumerate(next_ids.tolist()):
            if not finished[row]:
                rows[row].append(int(token))
        finished |= next_ids == config.eos_token_id
        if finished.all():
            break
        input_ids = np.where(finished, config.pad_token_id, next_ids).astype(np.int64)[:, None]
        past = dict(zip(past, presents, strict=True))
    return [Generated(token_ids=row, new_tokens=len(row) - len(prefix)) for row in rows]
