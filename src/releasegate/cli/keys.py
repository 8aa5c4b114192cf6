"""`releasegate keys init | show`: an approver's own Ed25519 signing key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from releasegate.cli._common import console, exit_refused

keys_app = typer.Typer(help="Approvers' signing keys (signed approvals).", no_args_is_help=True)

_DIR = typer.Option("--dir", help="Key folder (default RELEASEGATE_KEY_DIR, else ~/.releasegate/keys).")


def _folder(folder: Path | None) -> Path:
    from releasegate import bootstrap

    return (folder or bootstrap.settings().key_dir).expanduser()


@keys_app.command("init")
def keys_init(
    name: Annotated[str, typer.Option("--name", help="Your approver name, as on the allow-list.")],
    folder: Annotated[Path | None, _DIR] = None,
) -> None:
    """Make your Ed25519 key (private key mode 0600 in your home) and print the public key an admin pins
    in the governed approvers config, next to your name."""
    from releasegate.store.keys import KeyRefused, create_key

    try:
        path, public = create_key(_folder(folder), name)
    except KeyRefused as exc:
        exit_refused(exc, code=2)
    console.print(f"private key written to {path} (mode 0600; it never leaves this machine)")
    console.print(
        "ask an admin to pin your public key in the approvers config: they add it under `keys:` and run "
        "`releasegate approvers propose FILE --by ADMIN` (a second admin approves when keys change):"
    )
    console.print(f"keys:\n  {name}: {public}", soft_wrap=True, highlight=False)


@keys_app.command("show")
def keys_show(
    name: Annotated[str, typer.Option("--name", help="Your approver name.")],
    folder: Annotated[Path | None, _DIR] = None,
) -> None:
    """Print the public key of your key (to pin it again, or to check what is pinned)."""
    from releasegate.policy.signatures import key_id, public_hex
    from releasegate.store.keys import KeyRefused, key_path, load_key

    try:
        key = load_key(key_path(_folder(folder), name))
    except KeyRefused as exc:
        exit_refused(exc, code=2)
    console.print(f"{name}: {public_hex(key.public_key())}  (key id {key_id(key.public_key())[:16]})", soft_wrap=True)
