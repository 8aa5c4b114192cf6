"""Signed approvals: an approval is a statement signed with the approver's own Ed25519 key (pure).

Prefect's open-source server has no users, so a name typed into the approval form proves nothing. An
approver holds a private key (``releasegate keys init --name NAME``: in their home, mode 0600); its public
key is pinned next to their name in the approvers block (``keys``). An approval carries a *token*: the
statement below, the signer's public key and the signature, base64url-encoded behind ``rg-approval-v1.``.
The statement binds the approval to the evidence it approves:

  model, candidate_version, role, decision, approver, reference,
  gate_report_sha256 (the TECH gate report of the run), run_id (the paused promotion run), signed_at

so a token is good for one decision of one person on one gate report of one run: signed over another
report, replayed on another run, altered, or signed with a key that is not the approver's pinned key, it
is refused naming the field and the rule. Four eyes compares keys: one key cannot give two roles, even
under two names. Every accepted approval record keeps the statement, key and signature, so
``releasegate audit verify`` re-verifies each signature without trusting the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError

from releasegate.policy.handshake import ApprovalFields, ApprovalRefused, Handshake, Role

TOKEN_PREFIX = "rg-approval-v1."
MAX_AGE = timedelta(hours=24)  # a token older than the joint ack's validity is not fresh evidence
CLOCK_SKEW = timedelta(minutes=5)
SIGN_HINT = "sign it: releasegate approve RUN --role ROLE --by YOU --ref REF [--token-only]"


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def parse_public_key(text: str, source: str) -> Ed25519PublicKey:
    """A pinned public key: 64 hex characters (as ``keys init`` and ``audit checkpoint`` print it)."""
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.strip()))
    except ValueError:
        raise ValueError(
            f"{source}: expected the 64-hex-character public key `keys init` or `audit checkpoint` prints"
        ) from None


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: the key's identity in records and four-eyes checks."""
    return hashlib.sha256(bytes.fromhex(public_hex(key))).hexdigest()


HexKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]  # a raw Ed25519 public key
HexSignature = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{128}$")]  # a raw Ed25519 signature


class Statement(BaseModel):
    """What a key signs: its canonical JSON (an approval here, a grant in ``policy.grants``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def canonical(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


class Signed(BaseModel):
    """A statement with the signer's public key and the Ed25519 signature over its canonical JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    statement: Statement
    public_key: HexKey
    signature: HexSignature

    @property
    def key_id(self) -> str:
        return key_id(parse_public_key(self.public_key, "public_key"))

    def verifies(self) -> bool:
        try:
            parse_public_key(self.public_key, "public_key").verify(
                bytes.fromhex(self.signature), self.statement.canonical()
            )
            return True
        except (InvalidSignature, ValueError):
            return False

    def proof(self) -> dict[str, str]:
        """The signer's key, its id and the signature, as records keep them beside the statement."""
        return {"public_key": self.public_key, "key_id": self.key_id, "signature": self.signature}


def signature_by(statement: Statement, key: Ed25519PrivateKey) -> dict[str, str]:
    """``public_key`` and ``signature`` of ``statement`` signed with ``key`` (the fields of ``Signed``)."""
    return {"public_key": public_hex(key.public_key()), "signature": key.sign(statement.canonical()).hex()}


class ApprovalStatement(Statement):
    """What the approver signs."""

    model: str
    candidate_version: str
    role: Role
    decision: Literal["approve", "reject"]
    approver: str
    reference: str
    gate_report_sha256: str
    run_id: str
    signed_at: AwareDatetime  # a time without a UTC offset is refused when the token is read


class SignedApproval(Signed):
    statement: ApprovalStatement

    def token(self) -> str:
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
        return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def record(self) -> dict[str, Any]:
        """What an approval record keeps (``audit verify`` re-verifies it)."""
        return {"signed_statement": self.statement.model_dump(mode="json"), **self.proof()}

    @classmethod
    def from_record(cls, details: dict[str, Any]) -> SignedApproval | None:
        if not details.get("signature"):
            return None
        return cls(
            statement=ApprovalStatement.model_validate(details["signed_statement"]),
            public_key=details["public_key"],
            signature=details["signature"],
        )


def sign(statement: ApprovalStatement, key: Ed25519PrivateKey) -> SignedApproval:
    return SignedApproval(statement=statement, **signature_by(statement, key))


def open_token(token: str) -> SignedApproval:
    """Parse a token (not yet checked); ``ApprovalRefused`` on anything that is not one."""
    text = "".join(token.split())
    if not text.startswith(TOKEN_PREFIX):
        raise ApprovalRefused(
            "token", f"not a releasegate approval token (it starts with {TOKEN_PREFIX!r}): {SIGN_HINT}"
        )
    body = text[len(TOKEN_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return SignedApproval.model_validate_json(raw)
    except ValidationError as exc:
        raise _statement_refusal(exc) from None
    except ValueError:
        raise ApprovalRefused("token", f"unreadable approval token (cut or altered): {SIGN_HINT}") from None


def _statement_refusal(exc: ValidationError) -> ApprovalRefused:
    """A token that decodes but whose statement breaks its shape: name the statement's field (a
    ``signed_at`` without a UTC offset, say); anything else is an unreadable token."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if len(loc) >= 2 and loc[0] == "statement":
        field = loc[1]
        if err["type"] == "timezone_aware":
            return ApprovalRefused(
                field, f"the token's time has no UTC offset (a naive time is never guessed): {SIGN_HINT}"
            )
        return ApprovalRefused(field, f"the token's statement is malformed ({err['msg']}): {SIGN_HINT}")
    return ApprovalRefused("token", f"unreadable approval token (cut or altered): {SIGN_HINT}")


def statement_for(
    h: Handshake, role: Role, fields: ApprovalFields, run_id: str, signed_at: datetime
) -> ApprovalStatement:
    if not h.gate_report_sha256:
        raise ApprovalRefused("gate_report_sha256", "this run has no TECH gate report to approve yet")
    return ApprovalStatement(
        model=h.model,
        candidate_version=h.candidate_version,
        role=role,
        decision=fields.decision,
        approver=fields.approver,
        reference=fields.reference,
        gate_report_sha256=h.gate_report_sha256,
        run_id=run_id,
        signed_at=signed_at,
    )


def check_signed(
    h: Handshake, role: Role, fields: ApprovalFields, token: str, run_id: str, now: datetime
) -> SignedApproval:
    """The signed approval behind ``fields``, or ``ApprovalRefused`` naming the field and the rule.

    Call after ``check_approval`` (allow-list, order, four eyes by name)."""
    if not token.strip():
        raise ApprovalRefused("token", f"required: a prod promotion takes signed approvals only; {SIGN_HINT}")
    signed = open_token(token)
    pinned = h.keys.get(fields.approver)
    if not pinned:
        raise ApprovalRefused(
            "approver",
            f"{fields.approver!r} has no public key in the governed approvers config (`keys`): run "
            f"`releasegate keys init --name {fields.approver}` and have an admin pin the key it prints "
            "(`releasegate approvers propose`)",
        )
    if signed.public_key.lower() != pinned.lower():
        raise ApprovalRefused(
            "token", f"signed with key {signed.key_id[:16]}, which is not {fields.approver!r}'s pinned key"
        )
    if not signed.verifies():
        raise ApprovalRefused("token", "the signature does not verify: the token was altered after signing")
    s = signed.statement
    if s.run_id != run_id:
        raise ApprovalRefused("run_id", f"the token was signed for run {s.run_id}, not this run {run_id} (a replay)")
    bound_to_handshake(s, h, role, fields, now, signed.key_id, signer="the token", key_field="token")
    return signed


def bound_to_handshake(
    s: ApprovalStatement,
    h: Handshake,
    role: Role,
    fields: ApprovalFields,
    now: datetime,
    key_id: str,
    *,
    signer: Literal["the token", "the passkey"],
    key_field: str,
) -> None:
    """``ApprovalRefused`` unless the signed statement ``s`` is this approval of this run's handshake: the
    gate report it approves, model, version, role, decision, approver and reference, its age, and a key
    that gave no other role's approval. Both schemes (Ed25519 tokens, passkeys) bind their statement here."""
    what = "token" if signer == "the token" else "signature"
    if s.gate_report_sha256 != h.gate_report_sha256:
        raise ApprovalRefused(
            "gate_report_sha256",
            f"{signer} {'approves' if what == 'token' else 'approved'} gate report {s.gate_report_sha256[:16]}, "
            f"but this run's report is {(h.gate_report_sha256 or 'none')[:16]}: review the current report and "
            "sign again",
        )
    for name, theirs, ours in (
        ("model", s.model, h.model),
        ("candidate_version", s.candidate_version, h.candidate_version),
        ("role", s.role.value, role.value),
        ("decision", s.decision, fields.decision),
        ("approver", s.approver, fields.approver),
        ("reference", s.reference, fields.reference),
    ):
        if theirs != ours:
            says = "the token says" if what == "token" else "the signed statement says"
            raise ApprovalRefused(name, f"{says} {theirs!r}, the approval says {ours!r}")
    if s.signed_at > now + CLOCK_SKEW or now - s.signed_at > MAX_AGE:
        raise ApprovalRefused("signed_at", f"signed at {s.signed_at.isoformat()}: a {what} is good for 24 h")
    for other in h.given():
        if other.role is not role and other.key_id == key_id:
            raise ApprovalRefused(
                key_field,
                f"four eyes: {'the key' if what == 'token' else 'the passkey'} {key_id[:16]} gave the "
                f"{other.role.value.upper()} approval and cannot also give {role.value.upper()}'s",
            )


def fields_from_token(token: str) -> dict[str, Any]:
    """The form fields a token states (the UI form may take the token alone)."""
    s = open_token(token).statement
    return {"role": s.role.value, "approver": s.approver, "decision": s.decision, "reference": s.reference}


def recorded_signature_problem(subject: str, details: dict[str, Any]) -> str | None:
    """Re-verify a signed approval as recorded (``audit verify``): the signature over the statement, and
    the statement agreeing with the record it sits in. None when it holds."""
    try:
        signed = SignedApproval.from_record(details)
    except (ValueError, ValidationError, KeyError):
        return "signed statement unreadable"
    if signed is None:
        return None
    if not signed.verifies():
        return "signature does not verify over the recorded statement"
    if details.get("key_id") != signed.key_id:
        return f"key_id {details.get('key_id')} is not the id of the recorded public key"
    s = signed.statement
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
