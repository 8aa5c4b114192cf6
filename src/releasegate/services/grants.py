"""Signing a grant (a gate exception, a deferral override) for its granter: the one path
``releasegate exception grant`` and ``releasegate deferrals override`` share (``policy.grants``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from releasegate.app import App
from releasegate.policy.grants import GrantStatement, check_grant, sign_grant
from releasegate.store.keys import key_path, load_key


def signed_grant(
    statement: GrantStatement, key_file: Path | None, allow_list: Literal["exceptions", "overrides"], *, app: App
) -> dict:
    """Sign ``statement`` with the granter's key (``key_file``, default theirs in RELEASEGATE_KEY_DIR) and
    check it against their pinned key and ``allow_list``; returns what the grant's record keeps.
    Raises ``KeyRefused`` or ``GrantRefused`` (both name the field and the rule)."""
    key = load_key(key_file or key_path(app.settings.key_dir, statement.granted_by))
    signed = sign_grant(statement, key)
    from releasegate.services.approvers import governed_config

    config = governed_config("grants", app)
    check_grant(signed, config.keys, getattr(config, allow_list), allow_list)
    return signed.record()
