"""The governance console: approvers decide in a browser, signing with a passkey (``create_app``)."""

from releasegate.console.app import create_app

__all__ = ["create_app"]
