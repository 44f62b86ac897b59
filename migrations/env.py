"""Alembic environment: runs migrations on the connection the store hands over, or on
BURNRATE_DB_URL when called from the ``alembic`` command line."""

from alembic import context
from sqlalchemy import create_engine

from analytics.store import Base, database_url

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(database_url())
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
