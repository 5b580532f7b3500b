"""``python -m gateway.storage copy-to-bucket``: copy a local data dir into the S3 bucket the settings name.

``migrate`` is the same command under its first name, still accepted (it is not the database migration,
which every gateway applies at start).

Settings come from the environment like the gateway's (``GATEWAY_STORAGE_BACKEND=s3`` and the
``GATEWAY_S3_*`` variables; ``GATEWAY_DATA_DIR`` is the source unless ``--data-dir`` is given).
Exit status: 0 when every file is in the bucket with its sha256, 1 on any mismatch, missing
object or failed upload, 2 when the settings or the store cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from gateway.settings import GatewaySettings
from gateway.storage.bucket_copy import BucketCopy
from gateway.storage.s3 import S3BlobStore

COMMAND = "copy-to-bucket"


def _say(line: str, *, error: bool = False) -> None:
    (sys.stderr if error else sys.stdout).write(line + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway.storage", description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser(
        COMMAND, aliases=["migrate"], help="copy originals and thumbnails of a data dir into the bucket"
    )
    copy.add_argument("--data-dir", type=Path, default=None, help="source data dir (default: GATEWAY_DATA_DIR)")
    copy.add_argument("--verify-only", action="store_true", help="upload nothing; report what is missing or differs")
    copy.add_argument("--concurrency", type=int, default=4, help="files in flight at once (default 4)")
    return parser.parse_args(argv)


async def copy_to_bucket(settings: GatewaySettings, data_dir: Path, *, verify_only: bool, concurrency: int) -> int:
    store = S3BlobStore(settings)
    await store.open()
    try:
        problem = await store.check()
        if problem is not None:
            _say(f"{COMMAND}: {problem}", error=True)
            return 2
        report = await BucketCopy(store, data_dir, verify_only=verify_only, concurrency=concurrency).run()
    finally:
        await store.aclose()
    for label, keys in (("sha256 mismatch", report.mismatched), ("missing", report.missing), ("failed", report.failed)):
        for key in sorted(keys):
            _say(f"{COMMAND}: {label}: {key}", error=True)
    _say(f"{COMMAND} {'(verify only) ' if verify_only else ''}{data_dir} -> {store.description}: {report.summary()}")
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        _say(f"{COMMAND}: invalid settings: {exc.errors()[0]['msg']}", error=True)
        return 2
    if settings.storage_backend != "s3":
        _say(
            f"{COMMAND}: set GATEWAY_STORAGE_BACKEND=s3 and the GATEWAY_S3_* variables of the target bucket.",
            error=True,
        )
        return 2
    data_dir = (args.data_dir or settings.data_dir).resolve()
    if not data_dir.is_dir():
        _say(f"{COMMAND}: {data_dir} is not a directory.", error=True)
        return 2
    return asyncio.run(
        copy_to_bucket(settings, data_dir, verify_only=args.verify_only, concurrency=max(1, args.concurrency))
    )


if __name__ == "__main__":
    sys.exit(main())
