"""Database URLs for repository tests: a SQLite file, and a throwaway schema on the local PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.persistence.models import Image
from gateway.storage import new_image_id

POSTGRES_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards; skips (or fails in CI) without a server."""
    admin = create_engine(POSTGRES_SERVER_URL, isolation_level="AUTOCOMMIT")
    schema = f"gw_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        message = (
            f"PostgreSQL is not answering at {POSTGRES_SERVER_URL} ({type(exc).__name__}); start it with `make db`."
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message} It is required when CI is set.")
        pytest.skip(message)
    try:
        yield f"{POSTGRES_SERVER_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def database_url_for(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "postgresql":
        with postgres_schema_url() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'repository.sqlite3'}"


BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def migrated_database(backend: str, tmp_path: Path) -> Iterator[Database]:
    """A ``Database`` on ``backend`` with every migration applied, disposed afterwards."""
    with database_url_for(backend, tmp_path) as url:
        engine = build_engine(url)
        upgrade_schema(engine)
        database = Database(engine)
        try:
            yield database
        finally:
            database.dispose()


def new_image(**overrides: Any) -> Image:
    """An image row as an upload would insert it (a 10x10 JPEG), with ``overrides``."""
    values: dict[str, Any] = {
        "id": new_image_id(),
        "filename": "a.jpg",
        "format": "JPEG",
        "mode": "RGB",
        "width": 10,
        "height": 10,
        "size_bytes": 100,
        "sha256": "0" * 64,
    }
    values.update(overrides)
    return Image(**values)
