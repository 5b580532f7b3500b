"""The Alembic chain builds exactly the tables, columns, nullability and indexes the models declare, on both
databases. Column types are not compared: the migrations choose TEXT and BIGINT where a model says ``str``
and ``int``, on purpose. The caption search index is left out: it is the database's own (an FTS5 table on SQLite,
a generated tsvector column and its GIN index on PostgreSQL, migration 0006), which no model declares;
test_the_search_index_exists_after_migrating checks it is there."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import gateway.persistence.models  # noqa: F401  (registers every table on SQLModel.metadata)
from gateway.persistence.db import build_engine, upgrade_schema
from gateway.persistence.search import FTS_TABLE, GIN_INDEX, TSVECTOR_COLUMN, is_search_index
from tests.repository_backends import BACKENDS, database_url_for


def not_search_index(_object: object, name: str | None, type_: str, _reflected: bool, _compare_to: object) -> bool:
    return not is_search_index(name, type_)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrating_from_empty_leaves_nothing_for_autogenerate_to_add(backend: str, tmp_path: Path) -> None:
    with database_url_for(backend, tmp_path) as url:
        engine = build_engine(url)
        try:
            upgrade_schema(engine)
            with engine.connect() as connection:
                options = {"compare_type": False, "include_object": not_search_index}
                context = MigrationContext.configure(connection, opts=options)
                differences = compare_metadata(context, SQLModel.metadata)
        finally:
            engine.dispose()
    assert differences == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_search_index_exists_after_migrating(backend: str, tmp_path: Path) -> None:
    with database_url_for(backend, tmp_path) as url:
        engine = build_engine(url)
        try:
            upgrade_schema(engine)
            inspector = inspect(engine)
            if backend == "postgresql":
                assert TSVECTOR_COLUMN in {column["name"] for column in inspector.get_columns("images")}
                assert GIN_INDEX in {index["name"] for index in inspector.get_indexes("images")}
            else:
                assert FTS_TABLE in inspector.get_table_names()
        finally:
            engine.dispose()
