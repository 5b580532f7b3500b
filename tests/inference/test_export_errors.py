"""What the exporter says when a model cannot be loaded: one sentence, the cause, what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_a_dir_that_is_not_a_model_is_named_as_such(tmp_path: Path) -> None:
    from inference.export.onnx_export import ExportError, load_source

    with pytest.raises(ExportError) as caught:
        load_source(str(tmp_path), tmp_path / "work", token=None)
    message = str(caught.value)
    assert "is not a loadable Hugging Face BLIP model dir" in message
    assert "tiny-random" in message
    assert "Hub" not in message, "a local dir has nothing to do with the network"
