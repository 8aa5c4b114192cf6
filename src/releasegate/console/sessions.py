"""The console's session: a signed cookie (HttpOnly, SameSite=Strict, Secure over https) holding who
signed in, when they were last seen (idle timeout), the CSRF token every state-changing request must
carry, a pending WebAuthn ceremony (its challenge, for a few minutes) and, after an OIDC sign-in, the
roles the identity provider's groups map to (``roles``; None after a passkey sign-in)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "rg_console"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user: str | None = None
    seen: str | None = None  # ISO time of the last request while signed in
    pending: dict[str, Any] | None = None  # {"purpose", "name", "challenge", "at"}
    expired: bool = False  # set when an idle session was dropped on this request
    roles: list[str] | None = None  # OIDC sign-in: the roles its groups map to (narrows the config's)

    def as_dict(self) -> dict[str, Any]:
        return {"csrf": self.csrf, "user": self.user, "seen": self.seen, "pending": self.pending, "roles": self.roles}


class SessionStore:
    def __init__(self, secret_key: str, idle_timeout_s: int) -> None:
        self.serializer = URLSafeSerializer(secret_key or secrets.token_urlsafe(32), salt="releasegate-console")
        self.idle_timeout_s = idle_timeout_s

    def load(self, cookie: str | None, now: datetime) -> Session:
        if not cookie:
            return Session()
        try:
            data = self.serializer.loads(cookie)
        except BadSignature:
            return Session()
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return Session()
        roles = data.get("roles")
        s = Session(
            csrf=data["csrf"],
            user=data.get("user"),
            seen=data.get("seen"),
            pending=data.get("pending"),
            roles=[str(r) for r in roles] if isinstance(roles, list) else None,
        )
        if s.user and (not s.seen or (now - datetime.fromisoformat(s.seen)).total_seconds() > self.idle_timeout_s):
            return Session(csrf=secrets.token_urlsafe(24), expired=True, user=None, seen=s.user)
        return s

    def dump(self, session: Session) -> str:
        return self.serializer.dumps(session.as_dict())


def csrf_matches(session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf.encode(), str(given).encode())
