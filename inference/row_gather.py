"""Select batch rows of many tensors where they live (CPU or GPU memory), with an ONNX Gather graph.

When some captions of a batch reach ``eos``, the decode loop keeps only the unfinished rows of
the self-attention cache and the cross-attention keys/values. Copying them to the host, slicing
in numpy and copying back would move the whole cross-attention cache over PCIe at every finish;
a Gather (axis 0) per tensor, run by onnxruntime on the session's own device, keeps them there.

The graph is tiny and the same for every model but for its tensor names and element type, so it
is encoded here in the ONNX protobuf wire format (a dozen fields): the serving process has no
``onnx`` package. ``tests/inference/test_row_gather.py`` checks the bytes with ``onnx.checker``.
"""

from __future__ import annotations

import numpy as np

IR_VERSION = 8
OPSET = 17
INDICES = "row_indices"
ELEMENT_TYPES = {np.dtype(np.float32): 1, np.dtype(np.float16): 10}
INT64 = 7
CACHE_RANK = 4
"""Every cache tensor is [batch, heads, tokens, head size]."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _tensor_value(name: str, element_type: int, rank: int) -> bytes:
    """ValueInfoProto: a tensor of ``rank`` dimensions of unknown size."""
    shape = b"".join(_bytes_field(1, b"") for _ in range(rank))  # TensorShapeProto: empty Dimension messages
    tensor_type = _int_field(1, element_type) + _bytes_field(2, shape)
    return _bytes_field(1, name.encode()) + _bytes_field(2, _bytes_field(1, tensor_type))


def _gather_node(name: str) -> bytes:
    """NodeProto: inputs (1), output (2), name (3), op_type (4); Gather's axis defaults to 0."""
    inputs = _bytes_field(1, name.encode()) + _bytes_field(1, INDICES.encode())
    return (
        inputs
        + _bytes_field(2, gathered_name(name).encode())
        + _bytes_field(3, f"gather_{name}".encode())
        + (_bytes_field(4, b"Gather"))
    )


def gathered_name(name: str) -> str:
    return f"{name}_rows"


def row_gather_model(names: list[str], dtype: np.dtype[np.generic]) -> bytes:
    """ModelProto bytes: ``row_indices`` (int64 [rows]) and each of ``names`` (rank 4) in, each
    ``Gather(name, row_indices, axis=0)`` out as ``<name>_rows``."""
    element_type = ELEMENT_TYPES[np.dtype(dtype)]
    graph = b"".join(_bytes_field(1, _gather_node(name)) for name in names)
    graph += _bytes_field(2, b"row_gather")
    graph += _bytes_field(11, _tensor_value(INDICES, INT64, 1))
    graph += b"".join(_bytes_field(11, _tensor_value(name, element_type, CACHE_RANK)) for name in names)
    graph += b"".join(_bytes_field(12, _tensor_value(gathered_name(name), element_type, CACHE_RANK)) for name in names)
    opset = _bytes_field(8, _int_field(2, OPSET))  # OperatorSetIdProto: default domain, version 2
    return _int_field(1, IR_VERSION) + _bytes_field(7, graph) + opset
