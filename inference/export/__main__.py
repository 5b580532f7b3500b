"""``python -m inference.export --model <hub id | HF dir | tiny-random> --output <dir> [--precision P]``.

``P``: fp32 (default), int8 (dynamic quantization, CPU) or fp16 (for the CUDA execution provider).
Also ``[--if-missing] [--seed N]`` (``--seed``: tiny test models only).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from inference.export_names import is_test_model_name
from inference.model_files import is_exported_dir

HUB_PROBE_TIMEOUT_S = 5.0
log = logging.getLogger("inference.export")


def hub_reachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection (DNS included) within ``timeout_s``."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.export", description=__doc__)
    parser.add_argument("--model", required=True, help="hub id, local Hugging Face model dir, or tiny-random")
    parser.add_argument("--output", required=True, type=Path, help="dir to write the exported model to")
    parser.add_argument(
        "--precision", choices=("fp32", "int8", "fp16"), default="fp32", help="fp16: for the CUDA execution provider"
    )
    parser.add_argument("--if-missing", action="store_true", help="do nothing when --output is already an export")
    parser.add_argument(
        "--seed", type=int, default=None, help="tiny test models only: another seed, another model (revision seed-N)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.if_missing and (is_exported_dir(args.output) or is_exported_dir(Path(args.model))):
        log.info("%s is already exported; nothing to do", args.output)
        return 0
    from_hub = not is_test_model_name(args.model) and not Path(args.model).exists()
    if from_hub and not os.environ.get("HF_HUB_OFFLINE") and not hub_reachable():
        # Fail fast (or use the local Hugging Face cache) instead of retrying a dead network for a minute.
        log.warning("the Hugging Face Hub cannot be reached; using the local Hugging Face cache only")
        os.environ["HF_HUB_OFFLINE"] = "1"
    from inference.export.onnx_export import ExportError, export_model  # after HF_HUB_OFFLINE is decided

    try:
        export_model(args.model, args.output, args.precision, token=os.environ.get("HF_TOKEN") or None, seed=args.seed)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
