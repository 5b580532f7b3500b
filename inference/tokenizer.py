"""Token ids <-> text with the ``tokenizers`` library (the exported ``tokenizer.json``)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer


class CaptionTokenizer:
    """Encodes prompts without special tokens and decodes captions the way transformers' BLIP does."""

    def __init__(self, path: Path) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))

    def encode_prompt(self, prompt: str) -> list[int]:
        return list(self._tokenizer.encode(prompt, add_special_tokens=False).ids)

    def decode(self, token_ids: list[int]) -> str:
        return str(self._tokenizer.decode(token_ids, skip_special_tokens=True)).strip()
