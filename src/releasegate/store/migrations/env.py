"""Alembic environment: runs on the engine handed over in ``config.attributes['engine']``.

Several processes (two workers, say) may open a fresh PostgreSQL decision log at the same moment and
all migrate it on first use; without a lock they race on creating ``alembic_version`` (seen:
``UniqueViolation`` on ``pg_type_typname_nsp_index``). A transaction-scoped advisory lock makes the
migrations run one after the other; the later ones then find the schema at head. SQLite serialises
writers by itself.
"""

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ArgumentError

MIGRATION_LOCK = 73_460_001  # any constant shared by every releasegate process

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` invocation with sqlalchemy.url set
    url = config.get_main_option("sqlalchemy.url")
    if url is None:  # what create_engine(None) raised before, with the reason
        raise ArgumentError("no engine in config.attributes and no sqlalchemy.url in the Alembic config")
    engine = create_engine(url)

with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
