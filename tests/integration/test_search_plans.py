"""The search query uses the full-text index, never a scan of the images table: EXPLAIN on both databases.

The tables hold 20,000 captioned images (made in one INSERT ... SELECT, with times in the format SQLAlchemy
writes, indexed by the database's own triggers or generated column, then analysed), so the planners choose as
they would on a real table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.persistence.repository import ImageRepository
from gateway.persistence.search import parse_query, sqlite_few_hits, sqlite_hits
from tests.repository_backends import BACKENDS, database_url_for

IMAGES = 20_000
COLUMNS = (
    "id, filename, status, created_at, request_id, format, mode, width, height, size_bytes, sha256, "
    "metadata_done, caption_text, caption_status, attempts, caption_cycles"
)
# Every image: "a photo of wN" (N in 0..499) and "dog" in one of every 4; "zeppelin" in 2 of them.
SQLITE_ROWS = f"""
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {IMAGES})
INSERT INTO images ({COLUMNS})
SELECT printf('%032x', x), 'a.jpg', 'completed', datetime('2026-01-01', '+' || x || ' seconds') || '.000000', '',
       'JPEG', 'RGB',
       1, 1, 1, printf('%064x', x), 1,
       'a photo of w' || (x % 500) || CASE WHEN x % 4 = 0 THEN ' dog' ELSE ' cat' END
       || CASE WHEN x % 10000 = 7 THEN ' zeppelin' ELSE '' END, 'completed', 1, 0
FROM n
"""  # noqa: S608  (constants only)
POSTGRES_ROWS = f"""
INSERT INTO images ({COLUMNS})
SELECT lpad(to_hex(x), 32, '0'), 'a.jpg', 'completed', timestamptz '2026-01-01' + x * interval '1 second', '',
       'JPEG', 'RGB', 1, 1, 1, lpad(to_hex(x), 64, '0'), true,
       'a photo of w' || (x % 500) || CASE WHEN x % 4 = 0 THEN ' dog' ELSE ' cat' END
       || CASE WHEN x % 10000 = 7 THEN ' zeppelin' ELSE '' END, 'completed', 1, 0
FROM generate_series(1, {IMAGES}) AS x
"""  # noqa: S608  (constants only)


def many_images(backend: str, tmp_path: Path) -> Iterator[Database]:
    with database_url_for(backend, tmp_path) as url:
        engine = build_engine(url)
        upgrade_schema(engine)
        with engine.begin() as connection:
            connection.execute(text(SQLITE_ROWS if backend == "sqlite" else POSTGRES_ROWS))
            connection.execute(text("ANALYZE"))
        database = Database(engine)
        yield database
        database.dispose()


@pytest.fixture
def sqlite_images(tmp_path: Path) -> Iterator[Database]:
    yield from many_images("sqlite", tmp_path)


@pytest.fixture
def postgres_images(tmp_path: Path) -> Iterator[Database]:
    yield from many_images("postgresql", tmp_path)


def plan_of(session: Session, q: str) -> str:
    """The plan of the first page's query for ``q``, as the repository builds it (values inlined)."""
    query = ImageRepository(session).page_query(None, 51, None, parse_query(q))
    sql = str(query.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if session.get_bind().dialect.name == "sqlite" else "EXPLAIN "
    rows = session.execute(text(prefix + sql)).all()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.postgres
@pytest.mark.parametrize("q", ["zeppelin", "zeppelins photo"])
def test_postgresql_finds_rare_words_through_the_gin_index(postgres_images: Database, q: str) -> None:
    plan = postgres_images.run_sync(lambda session: plan_of(session, q), write=False)
    assert "Bitmap Index Scan on ix_images_caption_search" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.postgres
def test_postgresql_walks_created_at_for_a_common_word_and_never_scans(postgres_images: Database) -> None:
    plan = postgres_images.run_sync(lambda session: plan_of(session, "dog"), write=False)
    assert "Seq Scan" not in plan, plan
    assert "ix_images_caption_search" in plan or "ix_images_created_at" in plan, plan


def test_sqlite_counts_hits_in_the_fts5_index(sqlite_images: Database) -> None:
    def probe_plan(session: Session) -> str:
        query = sqlite_hits(parse_query("zeppelin")).limit(sqlite_few_hits(session) + 1)  # type: ignore[arg-type]
        sql = str(query.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}))
        return "\n".join(str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)).all())

    plan = sqlite_images.run_sync(probe_plan, write=False)
    assert "SCAN images_fts VIRTUAL TABLE INDEX" in plan, plan


def test_sqlite_looks_a_few_hits_up_by_rowid(sqlite_images: Database) -> None:
    plan = sqlite_images.run_sync(lambda session: plan_of(session, "zeppelin"), write=False)
    assert "SEARCH images USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "SCAN images\n" not in plan + "\n", plan


def test_sqlite_walks_created_at_against_the_fts5_hits_of_a_common_word(sqlite_images: Database) -> None:
    plan = sqlite_images.run_sync(lambda session: plan_of(session, "dog"), write=False)
    assert "SCAN images USING INDEX ix_images_created_at" in plan, plan
    assert "SCAN images_fts VIRTUAL TABLE INDEX" in plan, plan


@pytest.fixture(params=BACKENDS)
def any_images(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    yield from many_images(request.param, tmp_path)


def test_common_and_rare_words_page_newest_first_whichever_plan_serves_them(any_images: Database) -> None:
    def pages(q: str) -> list[str]:
        query, seen, cursor = parse_query(q), [], None
        for _ in range(3):
            page = any_images.run_sync(
                lambda session, cursor=cursor: ImageRepository(session).list_page(None, 50, cursor, query), write=False
            )
            seen += [image.id for image in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        return seen

    assert pages("dogs") == [f"{x:032x}" for x in range(IMAGES, IMAGES - 600, -1) if x % 4 == 0][:150]
    assert pages("zeppelin") == [f"{x:032x}" for x in (10007, 7)]
