"""``python -m gateway recaption [--all] [--no-follow]``: queue captions for re-captioning, then follow them.

Settings come from the environment like the gateway's (``DATABASE_URL``, ``GATEWAY_INFERENCE_URL``).
Without ``--all`` the inference replicas are asked which model they serve (``GET /v1/model``) and
every caption another model made is queued; with ``--all`` every caption is. The running gateways
do the work in the background; this command shows a progress bar until the queue is empty.
Exit status: 0 when every queued caption was re-made, 1 when some failed (their old caption is
kept), 2 when nothing could be queued (settings, database, no ready replica, replicas that disagree).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TextIO

import anyio.to_thread
from pydantic import ValidationError

from gateway.catalog import ImageCatalog
from gateway.errors import InferenceUnavailableError, ReplicasDisagreeError, StorageUnavailableError
from gateway.persistence.aggregates import RecaptionCounts
from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.persistence.models import CaptionModel
from gateway.replicas.client import InferenceClient
from gateway.settings import GatewaySettings

POLL_S = 0.5
STALL_HINT_S = 15.0
BAR_WIDTH = 30


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway recaption", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--all", action="store_true", help="queue every caption, not only those another model made")
    parser.add_argument("--no-follow", action="store_true", help="queue, print how many, and return at once")
    return parser.parse_args(argv)


def progress_line(counts: RecaptionCounts, total: int) -> str:
    """``recaption [#####-----] 12/40  done 11  failed 1``: how many of ``total`` left the queue."""
    finished = max(0, total - counts.queued)
    filled = BAR_WIDTH * finished // total if total else BAR_WIDTH
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"recaption [{bar}] {finished}/{total}  done {counts.done}  failed {counts.failed}"


async def served_model(settings: GatewaySettings) -> CaptionModel:
    inference = InferenceClient(settings)
    try:
        await inference.pool.resolve()
        return await inference.served_model()
    finally:
        await inference.aclose()


async def follow(catalog: ImageCatalog, out: TextIO) -> int:
    """Show progress until nothing is queued; 1 when some re-captions failed meanwhile."""
    first = (await catalog.stats()).recaption
    total, counts, shown, moved_at, hinted = first.queued, first, "", time.monotonic(), False
    while True:
        line = progress_line(counts, total)
        if line != shown:
            out.write(("\r" if out.isatty() else "") + line + ("" if out.isatty() else "\n"))
            out.flush()
            shown, moved_at = line, time.monotonic()
        if counts.queued == 0:
            break
        if not hinted and time.monotonic() - moved_at > STALL_HINT_S:
            out.write(
                "\nrecaption: nothing moved for a while: is a gateway running (GATEWAY_RECAPTION_CONCURRENCY > 0)?\n"
            )
            hinted = True
        await asyncio.sleep(POLL_S)
        counts = (await catalog.stats()).recaption
        total = max(total, total - first.queued + counts.queued)  # more queued meanwhile by someone else
    out.write(("\n" if out.isatty() else "") + f"recaption: finished: done {counts.done}, failed {counts.failed}\n")
    return 1 if counts.failed > first.failed else 0


async def recaption(settings: GatewaySettings, *, every: bool, keep_following: bool, out: TextIO) -> int:
    database = Database(build_engine(settings.resolved_database_url))
    try:
        await anyio.to_thread.run_sync(upgrade_schema, database.engine)
        current = None if every else await served_model(settings)
        catalog = ImageCatalog(database)
        queued = await catalog.queue_recaptions(current)
        scope = "every caption" if current is None else f"captions not made by {current.describe()}"
        out.write(f"recaption: queued {queued} ({scope})\n")
        return await follow(catalog, out) if keep_following else 0
    except (InferenceUnavailableError, ReplicasDisagreeError, StorageUnavailableError) as exc:
        sys.stderr.write(f"recaption: {exc.detail}\n")
        return 2
    finally:
        database.dispose()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        sys.stderr.write(f"recaption: invalid settings: {exc.errors()[0]['msg']}\n")
        return 2
    try:
        return asyncio.run(recaption(settings, every=args.all, keep_following=not args.no_follow, out=sys.stdout))
    except KeyboardInterrupt:
        sys.stdout.write("\nrecaption: stopped following; the gateways keep re-captioning what is queued\n")
        return 130
