"""The gateway speaks the shapes of contracts/, and the two services never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.captions import CaptionParams, CaptionResponse
from tests.support import REPO_ROOT


def imported_modules(package: Path) -> set[str]:
    modules: set[str] = set()
    for source in package.rglob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
    return modules


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("gateway", "inference"), ("inference", "gateway"), ("servicekit", "gateway"), ("servicekit", "inference")],
)
def test_services_never_import_each_other(package: str, forbidden: str) -> None:
    imports = imported_modules(REPO_ROOT / package)
    assert not {name for name in imports if name == forbidden or name.startswith(forbidden + ".")}


def test_contracts_import_nothing_of_ours() -> None:
    imports = imported_modules(REPO_ROOT / "contracts")
    assert not {name for name in imports if name.split(".")[0] in ("gateway", "inference", "servicekit", "tests")}


def test_caption_response_rejects_missing_members() -> None:
    with pytest.raises(ValidationError):
        CaptionResponse.model_validate({"caption": "x", "model": "m"})


def test_caption_params_render_only_what_is_set() -> None:
    assert CaptionParams().as_query() == {}
    assert CaptionParams(prompt="a photo of", max_new_tokens=5).as_query() == {
        "prompt": "a photo of",
        "max_new_tokens": "5",
    }
    with pytest.raises(ValidationError):
        CaptionParams(max_new_tokens=0)
