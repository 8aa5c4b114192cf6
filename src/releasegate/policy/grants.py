"""Signed grants: a gate exception or a deferral override is signed by its granter's key (pure).

Like an approval (``policy.signatures``), a grant is a statement signed with the granter's Ed25519 key
(``releasegate keys init``), checked against the key pinned for that name in the approvers block, and by
someone on the grant's own allow-list (``exceptions`` for gate exceptions, ``overrides`` for deferral
overrides). The statement binds what is granted: the kind, the subject (``model:<m>:v<n>`` or
``flow_run:<id>``), the granter, the ticket, the expiry (``exception_expiry``) and the kind's own terms
(the gate and the requester of an exception; the reason of an override). The readers (the promotion's
exception lookup, the capacity gateway) take a grant only when its signature verifies with the key
pinned *now*; ``audit verify`` re-verifies every one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from releasegate.errors import Refused
from releasegate.policy.signatures import Signed, Statement, signature_by

GrantKind = Literal["gate_exception", "deferral_override"]
TERMS: dict[str, set[str]] = {"gate_exception": {"gate", "requested_by"}, "deferral_override": {"reason"}}


class GrantStatement(Statement):
    kind: GrantKind
    subject: str
    granted_by: str
    ticket_ref: str
    expires_at: datetime
    terms: dict[str, str]  # gate + requested_by (exception); reason (override)
    signed_at: datetime


class SignedGrant(Signed):
    statement: GrantStatement

    def record(self) -> dict[str, Any]:
        return {"signed_grant": self.statement.model_dump(mode="json"), **self.proof()}

    @classmethod
    def from_record(cls, details: dict[str, Any]) -> SignedGrant | None:
        if not details.get("signature") or "signed_grant" not in details:
            return None
        return cls(
            statement=GrantStatement.model_validate(details["signed_grant"]),
            public_key=details["public_key"],
            signature=details["signature"],
        )


class GrantRefused(Refused):
    what = "grant refused"


def sign_grant(statement: GrantStatement, key: Ed25519PrivateKey) -> SignedGrant:
    return SignedGrant(statement=statement, **signature_by(statement, key))


def check_grant(signed: SignedGrant, pinned: dict[str, str], allowed: list[str], allow_list: str) -> None:
    """Raise ``GrantRefused`` unless the granter is on ``allowed`` and signed with their pinned key."""
    who = signed.statement.granted_by
    if who not in allowed:
        raise GrantRefused(
            "by", f"{who!r} is not on the {allow_list} allow-list (approvers config, key `{allow_list}`)"
        )
    key = pinned.get(who)
    if not key:
        raise GrantRefused(
            "by",
            f"{who!r} has no public key in the governed approvers config (`keys`): run "
            f"`releasegate keys init --name {who}` and have an admin pin the key it prints "
            "(`releasegate approvers propose`)",
        )
    if signed.public_key.lower() != key.lower():
        raise GrantRefused("key", f"the grant is signed with a key that is not {who!r}'s pinned key")
    if not signed.verifies():
        raise GrantRefused("signature", "the grant's signature does not verify: it was altered after signing")


def recorded_grant_problem(
    subject: str, actor: str, expiry: datetime | None, details: dict[str, Any], pinned: dict[str, str] | None = None
) -> str | None:
    """A recorded grant re-verified (readers, ``audit verify``): None when the signature holds over a
    statement that says what the record says (and, given ``pinned``, with the granter's pinned key)."""
    try:
        signed = SignedGrant.from_record(details)
    except (ValidationError, ValueError, KeyError):
        return "signed grant unreadable"
    if signed is None:
        return "unsigned grant"
    if not signed.verifies():
        return "signature does not verify over the recorded grant"
    s = signed.statement
    if (s.subject, s.granted_by, s.ticket_ref) != (subject, actor, details.get("ticket_ref")):
        return "the signed grant names another subject, granter or ticket than the record"
    kind = "gate_exception" if subject.startswith("model:") else "deferral_override"
    terms = TERMS[kind]
    if s.kind != kind or set(s.terms) != terms or any(s.terms[t] != str(details.get(t)) for t in terms):
        return f"the signed grant's kind or terms ({', '.join(sorted(terms))}) are not the record's"
    if expiry is None or s.expires_at != expiry:
        return "the signed grant's expiry is not the record's exception_expiry"
    if pinned is not None and pinned.get(actor, "").lower() != signed.public_key.lower():
        return f"signed with a key that is not {actor!r}'s pinned key"
    return None
