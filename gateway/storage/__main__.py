"""``python -m gateway.storage migrate``: copy a local data dir into the S3 bucket the settings name.

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
from gateway.storage.bucket_copy import Migration
from gateway.storage.s3 import S3BlobStore


def _say(line: str, *, error: bool = False) -> None:
    (sys.stderr if error else sys.stdout).write(line + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway.storage", description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="copy originals and thumbnails of a data dir into the bucket")
    migrate.add_argument("--data-dir", type=Path, default=None, help="source data dir (default: GATEWAY_DATA_DIR)")
    migrate.add_argument("--verify-only", action="store_true", help="upload nothing; report what is missing or differs")
    migrate.add_argument("--concurrency", type=int, default=4, help="files in flight at once (default 4)")
    return parser.parse_args(argv)


async def migrate(settings: GatewaySettings, data_dir: Path, *, verify_only: bool, concurrency: int) -> int:
    store = S3BlobStore(settings)
    await store.open()
    try:
        problem = await store.check()
        if problem is not None:
            _say(f"migrate: {problem}", error=True)
            return 2
        report = await Migration(store, data_dir, verify_only=verify_only, concurrency=concurrency).run()
    finally:
        await store.aclose()
    for label, keys in (("sha256 mismatch", report.mismatched), ("missing", report.missing), ("failed", report.failed)):
        for key in sorted(keys):
            _say(f"migrate: {label}: {key}", error=True)
    _say(f"migrate {'(verify only) ' if verify_only else ''}{data_dir} -> {store.description}: {report.summary()}")
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        _say(f"migrate: invalid settings: {exc.errors()[0]['msg']}", error=True)
        return 2
    if settings.storage_backend != "s3":
        _say("migrate: set GATEWAY_STORAGE_BACKEND=s3 and the GATEWAY_S3_* variables of the target bucket.", error=True)
        return 2
    data_dir = (args.data_dir or settings.data_dir).resolve()
    if not data_dir.is_dir():
        _say(f"migrate: {data_dir} is not a directory.", error=True)
        return 2
    return asyncio.run(migrate(settings, data_dir, verify_only=args.verify_only, concurrency=max(1, args.concurrency)))


if __name__ == "__main__":
    sys.exit(main())
