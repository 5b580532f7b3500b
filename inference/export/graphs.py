"""The two graphs we export, as torch modules over a BlipForConditionalGeneration's own weights.

1. ``VisionEncoder``: pixel_values -> image embeddings and, for every decoder layer, the
   cross-attention keys and values (computed once per image, not at every step). Its attention is
   written as ViT's (separate query/key/value projections split from BLIP's packed ``qkv``, scores
   divided by sqrt(head size)): the pattern onnxruntime's transformer optimizer fuses into one
   ``com.microsoft.Attention`` node, which BLIP's packed reshape of ``qkv`` is not.
2. ``DecoderStep``: one step for every step, the first included (then with an empty cache):
   input ids + past self-attention keys/values + the cached cross keys/values ->
   last-position logits + present self-attention keys/values.

The math is BlipText's (BERT post-LayerNorm layers), written with explicit cache tensors so the
exported graphs have plain inputs and outputs; parity tests pin it to ``model.generate``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import BlipForConditionalGeneration


def _split_heads(states: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, width = states.shape
    return states.view(batch, length, heads, width // heads).transpose(1, 2)


def _merge_heads(states: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_size = states.shape
    return states.transpose(1, 2).reshape(batch, length, heads * head_size)


class _QueryKeyValue(nn.Module):
    """BLIP's packed ``qkv`` projection as three ``nn.Linear`` (rows 0..D, D..2D, 2D..3D of its weight)."""

    def __init__(self, packed: nn.Linear) -> None:
        super().__init__()
        width = packed.out_features // 3
        self.query, self.key, self.value = (nn.Linear(packed.in_features, width) for _ in range(3))
        for index, part in enumerate((self.query, self.key, self.value)):
            part.weight = nn.Parameter(packed.weight[index * width : (index + 1) * width].detach().clone())
            part.bias = nn.Parameter(packed.bias[index * width : (index + 1) * width].detach().clone())


class VisionEncoder(nn.Module):
    """pixel_values -> (image_embeds, cross_key_0, cross_value_0, ..., cross_key_{L-1}, cross_value_{L-1})."""

    def __init__(self, model: BlipForConditionalGeneration) -> None:
        super().__init__()
        vision = model.vision_model
        self.embeddings = vision.embeddings
        self.vision_layers = vision.encoder.layers
        self.post_layernorm = vision.post_layernorm
        self.qkv = nn.ModuleList(_QueryKeyValue(layer.self_attn.qkv) for layer in self.vision_layers)
        self.vision_heads = model.config.vision_config.num_attention_heads
        self.vision_head_size = model.config.vision_config.hidden_size // self.vision_heads
        self.layers = model.text_decoder.bert.encoder.layer
        self.heads = model.config.text_config.num_attention_heads

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.embeddings(pixel_values)
        for layer, qkv in zip(self.vision_layers, self.qkv, strict=True):
            hidden = hidden + layer.self_attn.projection(self._attention(qkv, layer.layer_norm1(hidden)))
            hidden = hidden + layer.mlp(layer.layer_norm2(hidden))
        image_embeds = self.post_layernorm(hidden)
        outputs = [image_embeds]
        for layer in self.layers:
            cross = layer.crossattention.self
            outputs.append(_split_heads(cross.key(image_embeds), self.heads))
            outputs.append(_split_heads(cross.value(image_embeds), self.heads))
        return tuple(outputs)

    def _attention(self, qkv: _QueryKeyValue, hidden: torch.Tensor) -> torch.Tensor:
        query = _split_heads(qkv.query(hidden), self.vision_heads)
        key = _split_heads(qkv.key(hidden), self.vision_heads)
        value = _split_heads(qkv.value(hidden), self.vision_heads)
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.vision_head_size)
        return _merge_heads(torch.matmul(torch.softmax(scores, dim=-1), value))


class DecoderStep(nn.Module):
    """(input_ids, past self k/v, cross k/v per layer) -> (last logits, present self k/v per layer)."""

    def __init__(self, model: BlipForConditionalGeneration) -> None:
        super().__init__()
        decoder = model.text_decoder
        self.embeddings = decoder.bert.embeddings
        self.layers = decoder.bert.encoder.layer
        self.head = decoder.cls.predictions
        self.heads = model.config.text_config.num_attention_heads
        self.num_layers = len(self.layers)
        self.scale = 1.0 / math.sqrt(model.config.text_config.hidden_size // self.heads)

    def forward(self, input_ids: torch.Tensor, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        past = caches[: 2 * self.num_layers]
        cross = caches[2 * self.num_layers :]
        new_length = input_ids.shape[1]
        past_length = past[0].shape[2]
        positions = torch.arange(new_length, device=input_ids.device).unsqueeze(0) + past_length
        embeddings = self.embeddings.word_embeddings(input_ids) + self.embeddings.position_embeddings(positions)
        hidden = self.embeddings.LayerNorm(embeddings)
        # causal mask over [past + new]: new token i sees every past token and new tokens <= i
        query_positions = torch.arange(new_length, device=input_ids.device).unsqueeze(1) + past_length
        key_positions = torch.arange(past_length + new_length, device=input_ids.device).unsqueeze(0)
        mask = (key_positions > query_positions).to(hidden.dtype) * torch.finfo(hidden.dtype).min
        presents: list[torch.Tensor] = []
        for index, layer in enumerate(self.layers):
            hidden, key, value = self._self_attention(layer, hidden, past[2 * index], past[2 * index + 1], mask)
            presents += [key, value]
            hidden = self._cross_attention(layer, hidden, cross[2 * index], cross[2 * index + 1])
            hidden = layer.output(layer.intermediate(hidden), hidden)
        # 3-D through the head, so both of its Linears export as MatMul (a 2-D Linear is a Gemm,
        # which onnxruntime's dynamic quantizer leaves fp32): the 30524 x 768 LM head gets int8 too.
        last = self.head.transform(hidden[:, -1:, :])
        logits = nn.functional.linear(last, self.head.decoder.weight, self.head.bias)
        return (logits[:, 0, :], *presents)

    def _self_attention(
        self, layer: nn.Module, hidden: torch.Tensor, past_key: torch.Tensor, past_value: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        attention = layer.attention.self
        key = torch.cat([past_key, _split_heads(attention.key(hidden), self.heads)], dim=2)
        value = torch.cat([past_value, _split_heads(attention.value(hidden), self.heads)], dim=2)
        context = self._attend(_split_heads(attention.query(hidden), self.heads), key, value, mask)
        return layer.attention.output(context, hidden), key, value

    def _cross_attention(
        self, layer: nn.Module, hidden: torch.Tensor, key: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        attention = layer.crossattention.self
        context = self._attend(_split_heads(attention.query(hidden), self.heads), key, value, None)
        return layer.crossattention.output(context, hidden)

    def _attend(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        scores = torch.matmul(query, key.transpose(-1, -2)) * self.scale
        if mask is not None:
            scores = scores + mask
        return _merge_heads(torch.matmul(torch.softmax(scores, dim=-1), value))
