"""Alembic environment: runs on the engine handed over in ``config.attributes['engine']``."""

from alembic import context
from sqlalchemy import create_engine

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` invocation with sqlalchemy.url set
    engine = create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
