"""``python -m inference.export --model <hub id | HF dir | tiny-random> --output <dir> [--precision fp32|int8]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from inference.export.onnx_export import ExportError, export_model
from inference.model_files import is_exported_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.export", description=__doc__)
    parser.add_argument("--model", required=True, help="hub id, local Hugging Face model dir, or tiny-random")
    parser.add_argument("--output", required=True, type=Path, help="dir to write the exported model to")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    parser.add_argument("--if-missing", action="store_true", help="do nothing when --output is already an export")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.if_missing and (is_exported_dir(args.output) or is_exported_dir(Path(args.model))):
        logging.getLogger("inference.export").info("%s is already exported; nothing to do", args.output)
        return 0
    try:
        export_model(args.model, args.output, args.precision, token=os.environ.get("HF_TOKEN") or None)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
