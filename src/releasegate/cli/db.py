"""`releasegate db upgrade`."""

from __future__ import annotations

import typer

from releasegate.cli._common import console

db_app = typer.Typer(help="Decision-log database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the decision-log schema migrations (also done automatically on first use)."""
    from alembic.util import CommandError

    from releasegate.cli._common import exit_refused
    from releasegate.settings import Settings
    from releasegate.store import db

    url = Settings().resolved_database_url
    engine = db.create_db_engine(url)
    try:
        db.upgrade(engine, revision)
    except CommandError as exc:  # e.g. a revision that does not exist
        exit_refused("revision", f"{exc} (default: head)", code=2)
    shown = engine.url.render_as_string(hide_password=True)
    console.print(f"database {shown} at revision {db.current_revision(engine)}")
