"""Alembic environment: preauth runs migrations programmatically with an open connection."""

from __future__ import annotations

from alembic import context

from preauth.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic -x` from the command line: build an engine from the URL
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite:///preauth.db")
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
