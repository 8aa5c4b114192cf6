"""`releasegate console`: the governance console (approvers decide in a browser, signing with a passkey)."""

from __future__ import annotations

from typing import Annotated

import typer

from releasegate.cli._common import console as out
from releasegate.cli._common import exit_refused


def console_cmd(
    host: Annotated[str, typer.Option(help="Host name to serve on; also the WebAuthn rp id.")] = "localhost",
    port: Annotated[int, typer.Option(help="Port.")] = 4300,
    origin: Annotated[
        str | None,
        typer.Option(help="The URL the browser shows, behind a TLS proxy (default http://HOST:PORT)."),
    ] = None,
) -> None:
    """Serve the console: passkey sign-in and enrolment, the inbox of paused promotions with their gate
    reports, and approvals signed with the approver's passkey (GET /healthz, GET /inbox,
    POST /approvals/RUN). Passkeys need a secure context: https, or http on localhost."""
    import uvicorn

    from releasegate import bootstrap

    where = (origin or f"http://{host}:{port}").rstrip("/")
    if not (where.startswith("https://") or where.startswith(("http://localhost:", "http://localhost/"))):
        exit_refused("origin", f"{where}: passkeys need https, or http://localhost (a secure context)", code=2)
    out.print(f"releasegate console on {where}/inbox", highlight=False)
    uvicorn.run(bootstrap.console_app(where), host=host, port=port, log_level="warning")
