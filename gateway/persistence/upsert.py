"""``INSERT ... ON CONFLICT`` in the session's own dialect: PostgreSQL and SQLite spell it the same way."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session


def upsert_into(session: Session, table: Any) -> PostgresqlInsert | SqliteInsert:
    """An insert into ``table`` that takes ``on_conflict_do_nothing``/``on_conflict_do_update``."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(table)
    return sqlite_insert(table)
