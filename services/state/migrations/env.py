"""Alembic's entry point: run with the connection ``services.state.db.Database.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from services.state.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
