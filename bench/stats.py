"""``GET /api/stats`` latency at 10k, 100k and 1M images, on SQLite and on PostgreSQL.

Run with ``make bench-stats`` (or ``python -m bench.stats``). Rows are made through the
repository's own write paths (``add_all``, ``claim``, ``save_cpu_stages_many``, ``finish_many``:
the batch forms that ``add``, ``claim_next``, ``save_cpu_stages`` and ``finish`` call with one
image), in transactions of ``--batch`` images each, so the counters, histograms and events are the real
ones. At each size the stats read (counters, index probes and the JSON view) is timed
``--calls`` times; the table shows the median.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.persistence.models import CaptionStatus, Image, ImageStatus, utc_now
from gateway.persistence.repository import ImageRepository
from gateway.persistence.transitions import CaptionOutcome, CpuStagesResult, FinalState
from gateway.schemas import stats_of

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SIZES = (10_000, 100_000, 1_000_000)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} CPUs)"
    return platform.processor() or "unknown CPU"


def new_image(rng: random.Random) -> Image:
    return Image(
        id=uuid.uuid4().hex,
        filename="bench.jpg",
        format="JPEG",
        mode="RGB",
        width=640,
        height=480,
        size_bytes=100_000,
        sha256=f"{rng.getrandbits(256):064x}",
    )


def process_batch(session: Session, count: int, rng: random.Random) -> None:
    """Upload ``count`` images and take each through claim, CPU stages and its final state."""
    repository = ImageRepository(session)
    repository.add_all([new_image(rng) for _ in range(count)])
    claimed = repository.claim("bench", 30, limit=count)
    assert len(claimed) == count
    stages, finals = [], []
    for image in claimed:
        assert image.started_at is not None
        stages.append(
            (
                image.id,
                CpuStagesResult(decode_ms=rng.uniform(5, 50), metadata_ms=rng.uniform(0.1, 2), thumbnails_ms=20.0),
            )
        )
        completed_at = image.started_at + timedelta(milliseconds=rng.lognormvariate(6.5, 0.6))
        if rng.random() < 0.9:
            caption = CaptionOutcome(CaptionStatus.COMPLETED, text="a photo", model="bench", duration_ms=600.0)
            finals.append((image.id, FinalState(ImageStatus.COMPLETED, caption, completed_at)))
        else:
            caption = CaptionOutcome(CaptionStatus.UNAVAILABLE, error="down", duration_ms=900.0)
            failed = FinalState(ImageStatus.FAILED, caption, completed_at, error="Caption unavailable: down")
            finals.append((image.id, failed))
    assert len(repository.save_cpu_stages_many("bench", stages)) == count
    assert len(repository.finish_many("bench", finals)) == count


def stats_latency_ms(database: Database, calls: int) -> float:
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        view = database.run_sync(lambda session: stats_of(ImageRepository(session).stats(), 0.0), write=False)
        timings.append((time.perf_counter() - started) * 1000)
    assert view.total > 0
    return statistics.median(timings)


@contextmanager
def backend_database(backend: str) -> Iterator[Database | None]:
    """A migrated, empty database: a temporary SQLite file or a throwaway PostgreSQL schema."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            database = Database(build_engine(f"sqlite:///{Path(directory) / 'bench.sqlite3'}"))
            upgrade_schema(database.engine)
            yield database
            database.dispose()
        return
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schema = f"bench_stats_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError:
        admin.dispose()
        print(f"{backend}: no server at {POSTGRES_URL}; skipped")
        yield None
        return
    try:
        database = Database(build_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"))
        upgrade_schema(database.engine)
        yield database
        database.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def clone_seed_rows(session: Session, copies: int) -> None:
    """Copy every row made through the repository ``copies`` times in SQL, new ids, and scale the counters.

    Every counter is a sum over rows, so adding ``copies`` exact copies of the seed rows multiplies
    each counter by the same factor: the counters still equal a recount. Used only with ``--seed``,
    when making every row through the repository would take too long on the machine at hand.
    """
    sqlite = session.connection().dialect.name == "sqlite"
    new_id = "lower(hex(randomblob(16)))" if sqlite else "md5(random()::text || clock_timestamp()::text)"
    columns = ", ".join(column.name for column in Image.__table__.columns if column.name not in ("id", "filename"))  # type: ignore[attr-defined]
    seed = session.execute(text("SELECT COUNT(*) FROM images WHERE filename = 'bench.jpg'")).scalar_one()
    total = session.execute(text("SELECT COUNT(*) FROM images")).scalar_one()
    for _ in range(copies):
        session.execute(
            text(
                f"INSERT INTO images (id, filename, {columns}) SELECT {new_id}, 'copy.jpg', {columns}"  # noqa: S608
                " FROM images WHERE filename = 'bench.jpg'"
            )
        )
    session.execute(
        text("UPDATE stat_counters SET value = value * :factor"), {"factor": (total + copies * seed) / total}
    )


@dataclass
class Grower:
    """One backend's database, grown size after size."""

    backend: str
    database: Database
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    made: int = 0
    write_s: float = 0.0

    def grow_to(self, size: int, batch: int, seed: int | None) -> None:
        started = time.perf_counter()
        if seed is not None and self.made >= seed:
            assert size % seed == 0, "--seed must divide every size"
            for _ in range((size - self.made) // seed):
                self.database.run_sync(lambda session: clone_seed_rows(session, 1))
                self.made += seed
        while self.made < size:
            count = min(batch, size - self.made)
            self.database.run_sync(lambda session, count=count: process_batch(session, count, self.rng))
            self.made += count
        self.write_s += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(size) for size in SIZES))
    parser.add_argument("--batch", type=int, default=5000, help="images per write transaction")
    parser.add_argument("--calls", type=int, default=21, help="stats reads per size (median shown)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--seed", type=int, default=None, help="make only this many rows through the repository, copy the rest in SQL"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"CPU: {cpu_model()}; load average {os.getloadavg()[0]:.1f}; started {utc_now():%Y-%m-%d %H:%M} UTC")
    rows: list[tuple[str, int, float, float]] = []
    with contextlib.ExitStack() as stack:
        growers = [
            Grower(backend, database)
            for backend in args.backends.split(",")
            if (database := stack.enter_context(backend_database(backend))) is not None
        ]
        for size in sizes:  # every backend at one size before the next size: partial runs still compare
            for grower in growers:
                grower.grow_to(size, args.batch, args.seed)
                rows.append((grower.backend, size, stats_latency_ms(grower.database, args.calls), grower.write_s))
                print(f"  {grower.backend:10} {size:>9,} images: stats {rows[-1][2]:.2f} ms", flush=True)
    print("\n| backend | images | stats median (ms) | vs 1st size | rows written in (s, cumulative) |")
    print("|---|---:|---:|---:|---:|")
    first = {backend: median_ms for backend, _size, median_ms, _write_s in reversed(rows)}
    for backend, size, median_ms, write_s in sorted(rows, key=lambda row: (row[0] != "sqlite", row[1])):
        print(f"| {backend} | {size:,} | {median_ms:.2f} | {median_ms / first[backend]:.2f}x | {write_s:.0f} |")


if __name__ == "__main__":
    main()
