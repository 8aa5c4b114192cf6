"""Approvals signed with a passkey: WebAuthn as the second signature scheme of approvals (pure).

The statement is the one an Ed25519 token signs (``policy.signatures.ApprovalStatement``: model,
candidate_version, role, decision, approver, reference, gate_report_sha256, run_id, signed_at). Its
canonical JSON's SHA-256 is the WebAuthn challenge, so the authenticator's signature binds the same
facts: a statement altered after signing no longer matches the challenge the passkey signed, and a
replay on another run or version is refused on the statement's ``run_id`` / ``candidate_version``.

A passkey approval travels like a token (``rg-webauthn-v1.`` + base64url JSON: the statement, the
assertion, the credential's public key, rp id and origin), through the same approval form and the same
checks as an Ed25519 token (``check_any`` picks the scheme by prefix). Its record keeps the statement and
the whole assertion (``signature_scheme: webauthn``), so ``audit verify`` re-verifies it offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from releasegate.policy.handshake import ApprovalFields, ApprovalRefused, Handshake, Role
from releasegate.policy.passkeys import Assertion, Passkey, PasskeyRefused, b64url, check_assertion
from releasegate.policy.signatures import (
    ApprovalStatement,
    SignedApproval,
    bound_to_handshake,
    check_signed,
    fields_from_token,
    open_token,
    recorded_signature_problem,
)

TOKEN_PREFIX = "rg-webauthn-v1."
SCHEME = "webauthn"


def challenge(statement: ApprovalStatement) -> bytes:
    """What the passkey signs: SHA-256 of the statement's canonical JSON."""
    return hashlib.sha256(statement.canonical()).digest()


class PasskeyApproval(BaseModel):
    """A statement with the passkey's assertion over its challenge and the credential it names."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    scheme: Literal["webauthn"] = "webauthn"
    statement: ApprovalStatement
    assertion: Assertion
    passkey: Passkey

    @property
    def key_id(self) -> str:
        return self.passkey.key_id

    def problem(self) -> PasskeyRefused | None:
        """Why the assertion does not verify over the statement with the recorded passkey; None when it does."""
        try:
            check_assertion(self.assertion, self.passkey, challenge(self.statement), self.statement.approver)
        except PasskeyRefused as exc:
            return exc
        return None

    def token(self) -> str:
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
        return TOKEN_PREFIX + b64url(raw)

    def record(self) -> dict[str, Any]:
        """What an approval record keeps (``audit verify`` re-verifies it)."""
        return {
            "signature_scheme": SCHEME,
            "signed_statement": self.statement.model_dump(mode="json"),
            "public_key": self.passkey.public_key,
            "key_id": self.key_id,
            "signature": self.assertion.signature,
            "webauthn": {
                "assertion": self.assertion.model_dump(mode="json"),
                "passkey": self.passkey.model_dump(mode="json"),
            },
        }

    @classmethod
    def from_record(cls, details: dict[str, Any]) -> PasskeyApproval:
        w = details["webauthn"]
        return cls(
            statement=ApprovalStatement.model_validate(details["signed_statement"]),
            assertion=Assertion.model_validate(w["assertion"]),
            passkey=Passkey.model_validate(w["passkey"]),
        )


AnySigned = SignedApproval | PasskeyApproval


def open_passkey_token(token: str) -> PasskeyApproval:
    text = "".join(token.split())
    body = text[len(TOKEN_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return PasskeyApproval.model_validate_json(raw)
    except (ValidationError, ValueError):
        raise ApprovalRefused("token", "unreadable passkey approval (cut or altered)") from None


def check_passkey(
    h: Handshake, role: Role, fields: ApprovalFields, approval: PasskeyApproval, run_id: str, now: datetime
) -> PasskeyApproval:
    """The passkey approval behind ``fields``, or ``ApprovalRefused`` naming the field and the rule.

    Call after ``check_approval`` (allow-list, order, four eyes by name)."""
    pinned = h.passkeys.get(fields.approver)
    if pinned is None:
        raise ApprovalRefused(
            "approver",
            f"{fields.approver!r} has no passkey in the governed approvers config (`passkeys`): enrol one in "
            "the console and have admins approve the enrolment",
        )
    if approval.passkey != pinned:
        raise ApprovalRefused(
            "credential_id",
            f"signed with credential {approval.assertion.credential_id[:16]}, which is not "
            f"the passkey pinned for {fields.approver!r}",
        )
    s = approval.statement
    if s.run_id != run_id:
        raise ApprovalRefused("run_id", f"the passkey signed for run {s.run_id}, not this run {run_id} (a replay)")
    if s.candidate_version != h.candidate_version:
        raise ApprovalRefused(
            "candidate_version",
            f"the passkey signed for version {s.candidate_version}, not {h.candidate_version} (a replay)",
        )
    problem = approval.problem()
    if problem is not None:
        raise ApprovalRefused(problem.field, problem.rule)
    bound_to_handshake(s, h, role, fields, now, approval.key_id, signer="the passkey", key_field="credential_id")
    return approval


def is_passkey_token(token: str) -> bool:
    return "".join(token.split()).startswith(TOKEN_PREFIX)


def open_any(token: str) -> AnySigned:
    return open_passkey_token(token) if is_passkey_token(token) else open_token(token)


def check_any(h: Handshake, role: Role, fields: ApprovalFields, token: str, run_id: str, now: datetime) -> AnySigned:
    """``check_signed`` for an Ed25519 token, ``check_passkey`` for a passkey approval."""
    if is_passkey_token(token):
        return check_passkey(h, role, fields, open_passkey_token(token), run_id, now)
    return check_signed(h, role, fields, token, run_id, now)


def fields_from_any_token(token: str) -> dict[str, Any]:
    if not is_passkey_token(token):
        return fields_from_token(token)
    s = open_passkey_token(token).statement
    return {"role": s.role.value, "approver": s.approver, "decision": s.decision, "reference": s.reference}


def from_record_any(details: dict[str, Any]) -> AnySigned | None:
    """The signed approval a record keeps (either scheme), None for an unsigned one; ValueError/KeyError
    when unreadable."""
    if details.get("signature_scheme") == SCHEME:
        return PasskeyApproval.from_record(details)
    return SignedApproval.from_record(details)


def recorded_approval_problem(subject: str, details: dict[str, Any]) -> str | None:
    """``audit verify``: re-verify a recorded approval of either scheme; None when it holds."""
    if details.get("signature_scheme") != SCHEME:
        return recorded_signature_problem(subject, details)
    try:
        approval = PasskeyApproval.from_record(details)
    except (ValueError, ValidationError, KeyError, TypeError):
        return "passkey approval unreadable"
    problem = approval.problem()
    if problem is not None:
        return f"passkey assertion does not verify over the recorded statement ({problem.field}: {problem.rule})"
    if details.get("key_id") != approval.key_id or details.get("public_key") != approval.passkey.public_key:
        return f"key_id {details.get('key_id')} is not the id of the recorded passkey"
    s = approval.statement
    for name, theirs, ours in (
        ("run_id", f"promotion:{s.run_id}", subject),
        ("role", s.role.value, details.get("role")),
        ("approver", s.approver, details.get("approver")),
        ("decision", s.decision, details.get("decision")),
        ("model", s.model, details.get("model_name")),
        ("candidate_version", s.candidate_version, str(details.get("candidate_version"))),
        ("gate_report_sha256", s.gate_report_sha256, details.get("gate_report_sha256")),
    ):
        if theirs != ours:
            return f"the signed statement says {name} {theirs!r}, the record {ours!r}"
    return None
