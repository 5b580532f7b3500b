"""Alembic environment: run migrations on the connection the gateway hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

import gateway.persistence.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from gateway.persistence.search import is_search_index

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = engine_from_config(
            config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool
        )
        with engine.connect() as own_connection:
            _run(own_connection)
        return
    _run(connection)


def _include_object(_object: object, name: str | None, type_: str, _reflected: bool, _compare_to: object) -> bool:
    # The search index is the database's own (migration 0006), not a table the models declare.
    return not is_search_index(name, type_)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
