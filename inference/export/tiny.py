"""Tiny BLIP models built in code with seeded random weights, for tests and offline demos.

Nothing is downloaded: the config, the weights and a small WordPiece vocabulary are all made
here and saved as a normal Hugging Face model dir, which the regular export path then exports.
Their captions are nonsense words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import BertTokenizerFast, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

from inference.export_names import is_test_model_name

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "a",
    "an",
    "the",
    "of",
    "on",
    "in",
    "with",
    "and",
    "at",
    "to",
    "is",
    "are",
    "two",
    "three",
    "people",
    "person",
    "man",
    "woman",
    "child",
    "dog",
    "cat",
    "bird",
    "horse",
    "car",
    "bus",
    "boat",
    "plane",
    "train",
    "street",
    "road",
    "building",
    "house",
    "room",
    "table",
    "chair",
    "bed",
    "sofa",
    "window",
    "door",
    "tree",
    "trees",
    "grass",
    "sky",
    "water",
    "sea",
    "beach",
    "mountain",
    "river",
    "field",
    "snow",
    "city",
    "park",
    "kitchen",
    "food",
    "plate",
    "cup",
    "coffee",
    "pizza",
    "photo",
    "picture",
    "painting",
    "view",
    "close",
    "up",
    "black",
    "white",
    "red",
    "blue",
    "green",
    "yellow",
    "small",
    "large",
    "old",
    "young",
    "sitting",
    "standing",
    "walking",
    "running",
    "holding",
    "looking",
    "near",
    "next",
    "front",
    "top",
    "side",
    "over",
    "under",
    ",",
    ".",
]
BOS_TOKEN = "[DEC]"  # noqa: S105 (a token, not a password)
EXTRA_TOKEN = "[ENC]"  # noqa: S105


@dataclass(frozen=True)
class TinyVariant:
    """A tiny architecture; several exist so that parity is not tested on one shape only."""

    name: str
    seed: int
    image_size: int
    patch_size: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    text_hidden: int
    text_layers: int
    text_heads: int
    hidden_act: str


TINY_VARIANTS = {  # keys are inference.export_names.TEST_MODEL_NAMES
    "tiny-random": TinyVariant("tiny-random", 1234, 64, 16, 32, 2, 4, 32, 2, 4, "gelu"),
    "tiny-random-wide": TinyVariant("tiny-random-wide", 4321, 96, 16, 48, 3, 6, 64, 3, 8, "gelu"),
}


def is_tiny_model(name: str) -> bool:
    return is_test_model_name(name)


def write_vocabulary(path: Path) -> list[str]:
    """A WordPiece vocabulary: specials, lowercase words, single letters and ``##`` suffix pieces."""
    letters = [chr(code) for code in range(ord("a"), ord("z") + 1)]
    tokens = [*SPECIAL_TOKENS, *dict.fromkeys(WORDS + letters), *(f"##{letter}" for letter in letters)]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return tokens


def tiny_revision(variant_name: str, seed: int | None = None) -> str:
    """The revision a tiny model reports: its seed, so two seeds are two models (``seed-1234``)."""
    return f"seed-{TINY_VARIANTS[variant_name].seed if seed is None else seed}"


def build_tiny_model(variant_name: str, output_dir: Path, seed: int | None = None) -> Path:
    """Build, seed (the variant's seed unless ``seed`` is given) and save a tiny BLIP as a HF model dir."""
    variant = TINY_VARIANTS[variant_name]
    output_dir.mkdir(parents=True, exist_ok=True)
    write_vocabulary(output_dir / "vocab.txt")
    tokenizer = BertTokenizerFast(
        vocab_file=str(output_dir / "vocab.txt"),
        do_lower_case=True,
        bos_token=BOS_TOKEN,
        additional_special_tokens=[EXTRA_TOKEN],
    )
    vocab_size = len(tokenizer)
    text_config: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": variant.text_hidden,
        "intermediate_size": variant.text_hidden * 4,
        "num_hidden_layers": variant.text_layers,
        "num_attention_heads": variant.text_heads,
        "max_position_embeddings": 64,
        "hidden_act": variant.hidden_act,
        "initializer_range": 0.5,
        "bos_token_id": tokenizer.convert_tokens_to_ids(BOS_TOKEN),
        "pad_token_id": tokenizer.pad_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }
    vision_config: dict[str, Any] = {
        "hidden_size": variant.vision_hidden,
        "intermediate_size": variant.vision_hidden * 4,
        "num_hidden_layers": variant.vision_layers,
        "num_attention_heads": variant.vision_heads,
        "image_size": variant.image_size,
        "patch_size": variant.patch_size,
        # BlipVisionConfig defaults to 1e-10: every image would then get the same caption and
        # parity would pass while testing nothing.
        "initializer_range": 0.5,
    }
    config = BlipConfig(text_config=text_config, vision_config=vision_config)
    torch.manual_seed(variant.seed if seed is None else seed)
    model = BlipForConditionalGeneration(config).eval()
    model.save_pretrained(output_dir)
    size = {"height": variant.image_size, "width": variant.image_size}
    BlipProcessor(image_processor=BlipImageProcessor(size=size), tokenizer=tokenizer).save_pretrained(output_dir)
    return output_dir
