"""A real OpenID provider for the console's OIDC tests: ``oidc-provider-mock`` started as a process on a
free loopback port, and the user's side of its authorization step (an HTTP POST naming the subject, as
its "authorize" button does)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Idp:
    issuer: str  # http://127.0.0.1:<port>, what the provider puts in ``iss``

    def put_user(self, sub: str, claims: dict[str, Any]) -> None:
        httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()

    def authorize(self, url: str, sub: str, **override: str) -> httpx.Response:
        """Answer the provider's authorization page for ``sub`` (parameters of ``url`` replaced by
        ``override``); the provider's redirect back, not followed."""
        parts = urlsplit(url)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()} | override
        return httpx.post(
            f"{self.issuer}{parts.path}", params=params, data={"sub": sub}, timeout=10, follow_redirects=False
        )


@contextmanager
def provider(users: dict[str, dict[str, Any]]) -> Iterator[Idp]:
    """Start the provider with ``users`` (sub -> claims) predefined; stop it afterwards."""
    port = free_port()
    args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--require-nonce"]
    for sub, claims in users.items():
        args += ["--user-claims", json.dumps({"sub": sub, **claims})]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"}
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"oidc-provider-mock did not start on port {port}") from None
                time.sleep(0.1)
        yield Idp(issuer)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
