"""Prefect's temporary (ephemeral) API server, as releasegate's commands start it on embedded defaults.

With no ``PREFECT_API_URL``, every command that talks to Prefect (``infra up``, ``deploy``, ``events
send``, ``deferrals``...) starts Prefect's ephemeral server in a subprocess and waits
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` for it (Prefect's default: 20 s). Importing Prefect
and migrating its database take about that on a quiet 2-core machine, so one start in two failed there.
``apply_startup_timeout`` gives it ``STARTUP_TIMEOUT_SECONDS`` unless the user set the setting (in the
environment, the active Prefect profile or ``prefect.toml``); ``startup_failure`` turns the failure that
remains into one line saying what to do. No Prefect import here: it runs before Prefect is imported.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import MutableMapping
from pathlib import Path

SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
STARTUP_TIMEOUT_SECONDS = 180  # a busy 2-core machine: import, migrations and start took up to ~60 s
_FAILURE = "ephemeral Prefect API server"  # Prefect's "Timed out while attempting to connect to ..."


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def user_set(environ: MutableMapping[str, str], cwd: Path | None = None) -> bool:
    """Whether the startup timeout is set by the user: environment, active profile, or ``prefect.toml``."""
    if environ.get(SETTING):
        return True
    home = Path(environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profiles = _read_toml(Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser())
    active = environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    if SETTING in ((profiles.get("profiles") or {}).get(active) or {}):
        return True
    local = _read_toml((cwd or Path.cwd()) / "prefect.toml")
    return "startup_timeout_seconds" in ((local.get("server") or {}).get("ephemeral") or {})


def apply_startup_timeout(environ: MutableMapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """Set the startup timeout to ``STARTUP_TIMEOUT_SECONDS`` unless the user set it; returns the value
    in force in the environment ("" when it comes from a profile or prefect.toml)."""
    env = os.environ if environ is None else environ
    if not user_set(env, cwd):
        env[SETTING] = str(STARTUP_TIMEOUT_SECONDS)
    return env.get(SETTING, "")


def startup_failure(exc: BaseException) -> str | None:
    """One line saying what to do when ``exc`` (or what caused it) is the ephemeral server's failure to
    start; None for any other error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RuntimeError) and _FAILURE in str(seen):
            limit = os.environ.get(SETTING) or "the configured"
            return (
                f"Prefect's temporary API server did not start within {limit} s ({SETTING}): the machine is busy "
                f"or slow; run the command again with a longer timeout (export {SETTING}=300), or start the local "
                "stack once (`releasegate up`, then `source ~/.releasegate/stack/stack.env`) so that commands use "
                "its server"
            )
        seen = seen.__cause__ or seen.__context__
    return None
