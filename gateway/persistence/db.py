"""Engine, sessions and schema migration (Alembic) for SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from gateway.errors import StorageUnavailableError
from gateway.persistence.threads import run_to_completion

log = structlog.get_logger("gateway.db")
T = TypeVar("T")
BEGIN_IMMEDIATE = "begin_immediate"
MIGRATIONS_DIR = Path(__file__).parents[1] / "migrations"


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common ``postgresql://`` spelling."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _enable_sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is switched off so that we emit BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    # A writer takes the write lock up front (waiting out busy_timeout) instead of failing
    # later when it upgrades a read snapshot that another writer has moved past.
    immediate = connection.info.pop(BEGIN_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def build_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL mode and a generous busy timeout."""
    url = normalize_database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _enable_sqlite_wal)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several gateways may start at once: one migrates, the others wait for it.
            connection.execute(text("SELECT pg_advisory_xact_lock(7291001)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """Runs blocking session work in worker threads and turns database failures into 503s."""

    def __init__(self, engine: Engine, *, max_threads: int = 8) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._limiter = anyio.CapacityLimiter(max_threads)
        # SQLite has one writer at a time; its busy handler sleeps in growing steps, so writers
        # of this process queue on a lock instead (other processes still meet busy_timeout).
        self._sqlite_write_lock = threading.Lock() if self.is_sqlite else contextlib.nullcontext()

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a thread inside one read transaction."""
        return await run_to_completion(self.run_sync, work, False, limiter=self._limiter)

    async def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a thread inside one write transaction, committed on success."""
        return await run_to_completion(self.run_sync, work, True, limiter=self._limiter)

    def run_sync(self, work: Callable[[Session], T], write: bool = True) -> T:
        """Blocking form of ``read``/``write`` for threads and scripts."""
        try:
            with self._sqlite_write_lock if write else contextlib.nullcontext(), self.engine.connect() as connection:
                if write and self.is_sqlite:
                    connection.info[BEGIN_IMMEDIATE] = True
                with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                    return work(session)
        except SQLAlchemyError as exc:
            log.warning("database_error", error_type=type(exc).__name__, error=str(exc).splitlines()[0][:500])
            raise StorageUnavailableError(f"The database could not be used: {type(exc).__name__}.") from exc

    async def ping(self) -> bool:
        """True when a trivial query succeeds."""
        try:
            await self.read(lambda session: session.execute(text("SELECT 1")).scalar_one())
        except StorageUnavailableError:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
