"""The hand-encoded Gather graph is valid ONNX and keeps exactly the asked-for rows, in fp32 and fp16."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from inference.row_gather import gathered_name, row_gather_model
from tests.optional import import_or_skip

onnx = import_or_skip("onnx", "pip install -e '.[export]'")
NAMES = ["past_key_0", "cross_value_3"]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_the_row_gather_bytes_pass_the_onnx_checker(dtype: type[np.floating]) -> None:
    model = onnx.load_from_string(row_gather_model(NAMES, np.dtype(dtype)))
    onnx.checker.check_model(model, full_check=True)
    assert [node.op_type for node in model.graph.node] == ["Gather", "Gather"]
    assert [item.name for item in model.graph.output] == [gathered_name(name) for name in NAMES]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("rows", [[0, 2, 3], [4], [1, 0]])
def test_onnxruntime_keeps_exactly_the_asked_rows(dtype: type[np.floating], rows: list[int]) -> None:
    session = ort.InferenceSession(row_gather_model(NAMES, np.dtype(dtype)), providers=["CPUExecutionProvider"])
    generator = np.random.default_rng(0)
    tensors = {name: generator.standard_normal((5, 2, 3 + index, 4)).astype(dtype) for index, name in enumerate(NAMES)}
    kept = session.run(None, {"row_indices": np.array(rows, dtype=np.int64), **tensors})
    for name, result in zip(NAMES, kept, strict=True):
        np.testing.assert_array_equal(result, tensors[name][rows])
        assert result.dtype == dtype
