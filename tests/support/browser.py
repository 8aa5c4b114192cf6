"""What the console's browser tests share: Debian's chromium, the virtual authenticator they add over
the Chrome DevTools Protocol, the skip-or-fail rule when the browser is missing, the Prefect API a block
of the test talks to.

Skipped when chromium or the ``playwright`` package is missing, except under CI (env ``CI``), where that
fails instead (``require`` at module level, ``fail_if_missing`` in a module-scoped autouse fixture, so
the failure comes before any stack starts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# A platform authenticator with user verification (what a laptop's fingerprint reader offers).
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (Debian package chromium); the console's browser test drives that binary"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not importable ({exc}); pip install playwright==1.65.2 (no browser download needed)"
    return None


def require() -> str | None:
    """At a test module's top: skip the module when the browser is missing (outside CI); the reason, for
    ``fail_if_missing`` under CI."""
    reason = missing()
    if reason and not os.environ.get("CI"):
        pytest.skip(reason, allow_module_level=True)
    return reason


def fail_if_missing(reason: str | None) -> None:
    """Under CI a missing browser or playwright is a failure, not a skip."""
    if reason:
        pytest.fail(f"CI is set and the console's browser test cannot run: {reason}", pytrace=False)


@contextmanager
def on_server(api: str) -> Iterator[None]:
    """Prefect's client calls in this block go to ``api``."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        yield
