"""Caption search latency (``GET /api/images?q=``'s query) at 10k, 100k and 1M images, on SQLite and PostgreSQL.

Run with ``make bench-search`` (or ``python -m bench.search``). Rows are bulk-inserted in SQL (executemany on
SQLite, ``COPY`` on PostgreSQL) into a database migrated by the app's own migrations, so the index is built
the way the app builds it: on SQLite the triggers of migration 0006 index each inserted caption into
FTS5; on PostgreSQL the generated ``caption_search`` column is computed for each row, and the GIN index
of migration 0006 is dropped before a bulk load and created again after it with the same statement
(as the migration builds it over existing rows). Counters and events are not written: search reads neither.

Captions are ten words from a vocabulary of 5,000 made-up words with Zipf-like frequencies, plus
``dog`` in exactly 10 % of captions and ``zeppelin`` in one caption of every 99,991. Each query is
``ImageRepository.list_page`` (first page of 50, newest first, ORM rows included), timed ``--calls`` times
after a warm-up call: p50 and p95.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from bench.stats import backend_database, cpu_model
from gateway.persistence.db import Database
from gateway.persistence.models import Image, utc_now
from gateway.persistence.repository import ImageRepository
from gateway.persistence.search import parse_query

SIZES = (10_000, 100_000, 1_000_000)
COMMON, RARE = "dog", "zeppelin"
RARE_EVERY = 99_991
# w0003 is the most frequent filler word (in ~65 % of captions): ~6.5 % of captions hold both words.
QUERIES = {"rare word": RARE, "word in 10 %": COMMON, "two words, both in ~6.5 %": f"{COMMON} w0003"}
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "du", "ga", "ho", "ji", "fu", "be"]
# The statement of migration 0006.
CREATE_GIN = "CREATE INDEX ix_images_caption_search ON images USING gin (caption_search) WITH (fastupdate = off)"


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    words = {"w0003"}
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return ["w0003", *sorted(words - {"w0003"})]  # w0003 first: the most frequent filler word


@dataclass
class Captions:
    rng: random.Random
    words: list[str]
    weights: list[float]

    @classmethod
    def make(cls) -> Captions:
        rng = random.Random(7)
        words = vocabulary(rng)
        return cls(rng, words, [1 / (rank + 1) for rank in range(len(words))])

    def caption(self, n: int) -> str:
        chosen = self.rng.choices(self.words, self.weights, k=9)
        chosen.append(COMMON if n % 10 == 0 else "cat")
        if n % RARE_EVERY == 0:
            chosen[0] = RARE
        return "a photo of " + " ".join(chosen)


def rows(start: int, stop: int, captions: Captions) -> Iterator[dict[str, object]]:
    for n in range(start, stop):
        yield {
            "id": f"{n:032x}",
            "filename": "bench.jpg",
            "status": "completed",
            "created_at": EPOCH + timedelta(milliseconds=n),
            "request_id": "",
            "format": "JPEG",
            "mode": "RGB",
            "width": 640,
            "height": 480,
            "size_bytes": 100_000,
            "sha256": f"{n:064x}",
            "metadata_done": True,
            "caption_text": captions.caption(n),
            "caption_status": "completed",
            "attempts": 1,
            "caption_cycles": 0,
        }


def load_sqlite(database: Database, start: int, stop: int, captions: Captions) -> None:
    batch = 20_000
    for first in range(start, stop, batch):
        chunk = list(rows(first, min(first + batch, stop), captions))
        database.run_sync(lambda session, chunk=chunk: session.execute(insert(Image), chunk))  # type: ignore[arg-type]


def load_postgresql(database: Database, start: int, stop: int, captions: Captions) -> None:
    columns = list(next(rows(0, 1, captions)))
    with database.engine.begin() as connection:
        connection.execute(text("DROP INDEX IF EXISTS ix_images_caption_search"))
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY images ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows(start, stop, captions):
                copy.write_row([row[name] for name in columns])
        connection.execute(text(CREATE_GIN))
    with database.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE images"))


def latencies_ms(database: Database, q: str, calls: int) -> tuple[float, float, int]:
    query = parse_query(q)

    def once() -> int:
        page = database.run_sync(lambda session: ImageRepository(session).list_page(None, 50, None, query), False)
        return len(page.items)

    found = once()
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        once()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[max(0, round(0.95 * len(timings)) - 1)], found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(size) for size in SIZES))
    parser.add_argument("--calls", type=int, default=41, help="timed searches per query and size")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"CPU: {cpu_model()}; started {utc_now():%Y-%m-%d %H:%M} UTC")
    table: list[str] = []
    for backend in args.backends.split(","):
        with contextlib.ExitStack() as stack:
            database = stack.enter_context(backend_database(backend))
            if database is None:
                continue
            captions, made, load_s = Captions.make(), 0, 0.0
            for size in sizes:
                started = time.perf_counter()
                load = load_sqlite if backend == "sqlite" else load_postgresql
                load(database, made, size, captions)
                made, load_s = size, load_s + time.perf_counter() - started
                for label, q in QUERIES.items():
                    p50, p95, found = latencies_ms(database, q, args.calls)
                    line = (
                        f"| {backend} | {size:,} | {label} (`{q}`) | {found} | {p50:.2f} | {p95:.2f} | {load_s:.0f} |"
                    )
                    table.append(line)
                    print(line, flush=True)
    print(f"\nCPU: {cpu_model()}; finished {utc_now():%Y-%m-%d %H:%M} UTC")
    print("| backend | images | query | items on page 1 | p50 ms | p95 ms | rows loaded in (s, cumulative) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
