"""Names of the built-in test models, shared by the exporter and the (torch-free) server."""

from __future__ import annotations

TEST_MODEL_NAMES = ("tiny-random", "tiny-random-wide")


def is_test_model_name(name: str) -> bool:
    return name in TEST_MODEL_NAMES
