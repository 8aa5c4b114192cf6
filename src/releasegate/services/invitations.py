"""One-time passkey enrolment invitations: an enrolment needs an identity first.

An admin of the governed approvers config issues an invitation for a name on one of its lists
(``releasegate approvers invite NAME --by ADMIN``), signed with the admin's pinned Ed25519 key as an
approval of a config change is. The sealed record (``approvers_config``, status ``invited``) holds the
SHA-256 of a random code (never the code), the name, the admin, the expiry and the signature; the code is
shown once, to hand to the approver out of band. The console's enrolment takes the code
(``check_invitation``); the proposal it records names the invitation, which is then used.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from releasegate import records
from releasegate.app import App
from releasegate.decisions import DecisionRecord
from releasegate.details import EnrolmentInvitationDetails
from releasegate.policy.approvers import ConfigRefused, SignedConfig, check_admin_signature
from releasegate.services.approvers import SUBJECT, _records, _refused, _signed, history
from releasegate.store.keys import KeyRefused

MAX_HOURS = 24 * 14


def code_sha256(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def invitation_digest(name: str, code_hash: str, expires_at: str) -> str:
    """What the admin signs: this name may enrol with the code of this hash until then."""
    body = {"invitation": "passkey-enrolment", "name": name, "code_sha256": code_hash, "expires_at": expires_at}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def invite(app: App, name: str, by: str, hours: int = 24, key_file: Path | None = None) -> tuple[str, str, datetime]:
    """Record ``by``'s signed invitation for ``name``; returns (its decision id, the code, the expiry).
    ``ConfigRefused`` (recorded) for a name on no list, someone not an admin, a bad key or hours."""
    if not 1 <= hours <= MAX_HOURS:
        raise _refused(app, by, "hours", f"{hours}: from 1 to {MAX_HOURS} hours (ask the approver to enrol sooner)")
    steps = history(app, "approvers")
    if not steps:
        raise _refused(app, by, "approvers", "no governed config yet: `releasegate infra up` trusts the first one")
    current = steps[-1]
    if name not in current.config.names():
        raise _refused(
            app,
            by,
            "name",
            f"{name!r} is on no list of the approvers config in force: propose it first",
            current.digest,
        )
    if by not in current.config.admins:
        raise _refused(
            app, by, "by", f"{by!r} is not an admin of the approvers config in force (`admins`)", current.digest
        )
    code = secrets.token_urlsafe(18)
    expires = app.clock.now() + timedelta(hours=hours)
    expires_at = expires.isoformat()
    digest = invitation_digest(name, code_sha256(code), expires_at)
    try:
        sig = _signed(app, "invite", digest, current.digest, by, key_file)
    except KeyRefused as exc:
        raise _refused(app, by, exc.field, exc.rule, digest) from None
    problem = _signature_problem(sig, current.config, digest)
    if problem is not None:
        raise _refused(app, by, problem.field, problem.rule, digest)
    details = EnrolmentInvitationDetails(
        status="invited",
        digest=digest,
        name=name,
        admin=by,
        code_sha256=code_sha256(code),
        expires_at=expires_at,
        signature=sig,
    )
    rec = app.log.append(
        records.enrolment_invitation(
            decision_rationale=f"{by} invited {name} to enrol a passkey until {expires:%Y-%m-%d %H:%M} UTC "
            "(a one-time code; the enrolment still needs two admins)",
            subject=SUBJECT,
            actor=by,
            details=details,
        )
    )
    return rec.decision_id, code, expires


def _signature_problem(sig: dict[str, Any], config: Any, digest: str) -> ConfigRefused | None:
    try:
        signed = SignedConfig.model_validate(
            {"statement": sig["statement"], "public_key": sig["public_key"], "signature": sig["signature"]}
        )
    except (ValidationError, KeyError, TypeError):
        return ConfigRefused("signature", "unreadable")
    if signed.statement.action != "invite":
        return ConfigRefused("signature", "signed for another action than an invitation")
    try:
        check_admin_signature(signed, config, digest, signed.statement.previous_digest)
    except ConfigRefused as exc:
        return exc
    return None


def check_invitation(app: App, name: str, code: str) -> str:
    """The id of the valid invitation with ``code`` for ``name``: issued for that name, unexpired, its
    admin's signature good against the config in force, not used by a recorded enrolment. Otherwise
    ``ConfigRefused`` (not recorded here: the caller records the refusal)."""
    recs = _records(app.log, "console")
    steps = history(app, "console")
    wanted = code_sha256(code)
    found: DecisionRecord | None = next(
        (r for r in recs if r.details.get("status") == "invited" and r.details.get("code_sha256") == wanted), None
    )
    if not code.strip() or found is None or not steps:
        raise ConfigRefused("code", "no invitation has this code: ask an admin for one")
    d = found.details
    if d.get("name") != name:
        raise ConfigRefused("code", f"this invitation is for another name, not {name!r}")
    expires = datetime.fromisoformat(str(d.get("expires_at")))
    if app.clock.now() >= expires:
        raise ConfigRefused("code", f"the invitation expired at {expires:%Y-%m-%d %H:%M} UTC: ask an admin for another")
    if any(r.details.get("invitation_decision_id") == found.decision_id for r in recs):
        raise ConfigRefused("code", "the invitation was used already: ask an admin for another")
    digest = invitation_digest(name, wanted, str(d.get("expires_at")))
    problem = _signature_problem(d.get("signature") or {}, steps[-1].config, digest)
    if d.get("digest") != digest or problem is not None:
        rule = problem.rule if problem is not None else "does not match what was signed"
        raise ConfigRefused("code", f"the invitation's signature is not good against the config in force: {rule}")
    return found.decision_id
