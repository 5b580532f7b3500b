"""The Alembic chain builds exactly the tables, columns, nullability and indexes the models declare, on both
databases. Column types are not compared: the migrations choose TEXT and BIGINT where a model says ``str``
and ``int``, on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import gateway.persistence.models  # noqa: F401  (registers every table on SQLModel.metadata)
from gateway.persistence.db import build_engine, migrate
from tests.repository_backends import BACKENDS, database_url_for


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrating_from_empty_leaves_nothing_for_autogenerate_to_add(backend: str, tmp_path: Path) -> None:
    with database_url_for(backend, tmp_path) as url:
        engine = build_engine(url)
        try:
            migrate(engine)
            with engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": False})
                differences = compare_metadata(context, SQLModel.metadata)
        finally:
            engine.dispose()
    assert differences == []
