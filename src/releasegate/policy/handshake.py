"""The release handshake: TECH_GATE_PASS → PM_GATE_PASS → RISK_GATE_PASS (→ COMPLIANCE_GATE_PASS for a
model of ``risk_tier: high``) → JOINT_RELEASE_ACK (pure).

Technical promotion and business approval are separate facts. ``TECH_GATE_PASS`` comes from the gate
report; PM and Risk approvals come from people (the Prefect UI's approval form or
``releasegate approve``). ``check_approval`` refuses, naming the field and the rule:

* an approval needs a non-blank approver and reference;
* the approver must be on the role's allow-list (the ``releasegate-approvers`` block);
* four eyes: the approver is not the requester, and PM, Risk and Compliance are three different people;
* independence: the approver is neither an owner of the model (the manifest's ``owners``) nor anyone
  who staged the candidate (``staged_by``: the ``submit_candidate`` caller, the version's MLflow user,
  the person who asked for the run; never the placeholder ``registry-event``);
* order: no pass without a valid tech gate report, no Risk pass before the PM pass, no Compliance pass
  before the Risk pass, and none at all where the model does not require one;
* a role already approved cannot be approved twice.

``joint_release_ack`` is valid only within ``ack_validity`` (24 h) of the later approval; after that
the flow re-checks the gates before anything is released.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from releasegate.errors import Refused
from releasegate.policy.passkeys import Passkey

ACK_VALIDITY = timedelta(hours=24)


class Role(StrEnum):
    pm = "pm"
    risk = "risk"
    compliance = "compliance"  # only for models of risk_tier "high" (``Handshake.requires_compliance``)


class ApprovalFields(BaseModel):
    """What an approver submits (the Prefect UI renders these as the approval form)."""

    approver: str = Field(description="Your user name (must be on the role's allow-list).")
    decision: Literal["approve", "reject"] = Field(default="approve", description="approve or reject")
    reference: str = Field(description="Ticket or document reference of your review.")
    statement: str = Field(default="", description="PM: KPI target accepted. Risk: risk acceptance.")
    comment: str = Field(default="")


class Approval(ApprovalFields):
    model_config = ConfigDict(frozen=True)
    role: Role
    at: datetime
    key_id: str | None = None  # the signing key's identity (``policy.signatures``): four eyes by key


class Handshake(BaseModel):
    model_config = ConfigDict(frozen=True)
    model: str
    candidate_version: str
    requested_by: str
    tech_report_ref: str | None = None
    tech_pass: bool = False
    candidate_sha256: str | None = None  # the artifact the approvals are about (binds them to the binary)
    gate_report_sha256: str | None = None  # the TECH gate report a signed approval approves
    pm: Approval | None = None
    risk: Approval | None = None
    compliance: Approval | None = None
    requires_compliance: bool = False  # the model's risk_tier is "high"
    allow_lists: dict[Role, list[str]] = Field(default_factory=dict)
    keys: dict[str, str] = Field(default_factory=dict)  # approver -> pinned Ed25519 public key (hex)
    passkeys: dict[str, Passkey] = Field(default_factory=dict)  # approver -> pinned WebAuthn credential
    owners: list[str] = Field(default_factory=list)  # the model's owners: never its approvers
    staged_by: dict[str, str] = Field(default_factory=dict)  # who staged the candidate -> how we know

    @property
    def roles(self) -> tuple[Role, ...]:
        """The business approvals this release needs, in order."""
        return (Role.pm, Role.risk, Role.compliance) if self.requires_compliance else (Role.pm, Role.risk)

    def given(self) -> list[Approval]:
        return [a for r in self.roles if (a := getattr(self, r.value)) is not None]


class ApprovalRefused(Refused):
    what = "approval refused"


def check_approval(h: Handshake, role: Role, a: ApprovalFields) -> None:
    """Raise ``ApprovalRefused`` when this approval may not be accepted now."""
    if not a.approver.strip():
        raise ApprovalRefused("approver", "required")
    if not a.reference.strip():
        raise ApprovalRefused("reference", "required: the ticket or document of your review")
    if role not in h.roles:
        raise ApprovalRefused("role", f"{h.model} needs no {role.value} approval (its risk_tier is not high)")
    if not (h.tech_pass and h.tech_report_ref):
        raise ApprovalRefused(
            "tech_gate_report_ref",
            f"no {role.value.upper()}_GATE_PASS without a valid tech gate report (TECH_GATE_PASS comes first)",
        )
    allowed = h.allow_lists.get(role, [])
    if a.approver not in allowed:
        raise ApprovalRefused("approver", f"{a.approver!r} is not on the {role.value} allow-list")
    if a.approver == h.requested_by:
        raise ApprovalRefused("approver", f"four eyes: {a.approver!r} requested this promotion and cannot approve it")
    if (why := not_independent(h, a.approver)) is not None:
        raise ApprovalRefused("approver", f"independence: {a.approver!r} {why} and cannot approve it")
    if getattr(h, role.value) is not None:
        raise ApprovalRefused("role", f"{role.value.upper()} has already decided")
    previous = {Role.risk: (Role.pm, "pm_gate_ref"), Role.compliance: (Role.risk, "risk_gate_ref")}.get(role)
    if previous is not None:
        before: Approval | None = getattr(h, previous[0].value)
        if before is None or before.decision != "approve":
            raise ApprovalRefused(
                previous[1], f"{role.value.upper()}_GATE_PASS needs {previous[0].value.upper()}_GATE_PASS first"
            )
    for other in h.given():
        if other.role is not role and other.approver == a.approver:
            raise ApprovalRefused(
                "approver",
                f"four eyes: {a.approver!r} gave the {other.role.value.upper()} approval and cannot also give "
                f"{role.value.upper()}'s",
            )


PLACEHOLDER_REQUESTERS = frozenset({"", "registry-event", "<missing>"})  # no one's identity


def not_independent(h: Handshake, name: str) -> str | None:
    """Why ``name`` may not approve this candidate (an owner, or who staged it); None when independent."""
    if name in h.owners:
        return f"is an owner of {h.model} (models[{h.model}].owners)"
    if name in h.staged_by:
        return f"staged the candidate ({h.staged_by[name]})"
    if name == h.requested_by and name not in PLACEHOLDER_REQUESTERS:
        return "requested this promotion"
    return None


def ineligible(h: Handshake, role: Role) -> dict[str, str]:
    """Every name on ``role``'s allow-list with why it cannot give this approval (empty: none can't)."""
    out: dict[str, str] = {}
    for name in h.allow_lists.get(role, []):
        if (why := not_independent(h, name)) is not None:
            out[name] = why
        elif not h.keys.get(name) and name not in h.passkeys:
            out[name] = "has no pinned key or passkey"
        elif any(o.role is not role and (o.approver == name or o.key_id == h.keys.get(name)) for o in h.given()):
            out[name] = "gave another approval of this release"
    return out


def no_eligible_approver(h: Handshake, role: Role) -> str | None:
    """The reason no one can give ``role``'s approval of this release, or None when someone can."""
    listed = h.allow_lists.get(role, [])
    bad = ineligible(h, role)
    if any(n not in bad for n in listed):
        return None
    why = "; ".join(f"{n} {w}" for n, w in bad.items()) or "the allow-list is empty"
    return f"no eligible {role.value.upper()} approver for {h.model} v{h.candidate_version}: {why}"


def approval_ref(a: Approval) -> str:
    return f"{a.role.value.upper()}_GATE_PASS:{a.approver}:{a.reference}"


class JointAck(BaseModel):
    model_config = ConfigDict(frozen=True)
    valid: bool
    ref: str | None
    reason: str
    expires_at: datetime | None = None


def joint_release_ack(h: Handshake, now: datetime, validity: timedelta = ACK_VALIDITY) -> JointAck:
    names = ", ".join(["TECH", *(r.value.upper() for r in h.roles)])
    given = h.given()
    if not h.tech_pass or len(given) != len(h.roles):
        return JointAck(valid=False, ref=None, reason=f"JOINT_RELEASE_ACK needs {names} passes")
    if any(a.decision != "approve" for a in given):
        return JointAck(valid=False, ref=None, reason="a business approver rejected the release")
    later = max(a.at for a in given)
    expires = later + validity
    if now > expires:
        return JointAck(
            valid=False,
            ref=None,
            expires_at=expires,
            reason=f"JOINT_RELEASE_ACK expired at {expires.isoformat()} (24 h after the later approval): re-check",
        )
    refs = "|".join(approval_ref(a) for a in given)
    digest = hashlib.sha256(f"{h.model}|{h.candidate_version}|{h.tech_report_ref}|{refs}".encode()).hexdigest()[:16]
    return JointAck(valid=True, ref=f"JOINT_RELEASE_ACK:{digest}", reason=f"{names} passed", expires_at=expires)


REFUSALS_PER_BURST = 5  # refused approvals in a row before a waiting run slows down
MAX_COOLDOWN_SECONDS = 900


def approval_cooldown(refused_in_a_row: int, base_seconds: int) -> int:
    """Seconds a run waiting for an approval pauses before it asks again, after ``refused_in_a_row``
    refused inputs: none inside a burst of ``REFUSALS_PER_BURST``; after each full burst ``base_seconds``,
    doubled per further burst, at most ``MAX_COOLDOWN_SECONDS``. Input never fails a run; a flood of
    garbage only slows down how often it is read (and recorded)."""
    if refused_in_a_row <= 0 or refused_in_a_row % REFUSALS_PER_BURST:
        return 0
    bursts = refused_in_a_row // REFUSALS_PER_BURST
    return int(min(base_seconds * 2 ** min(bursts - 1, 16), MAX_COOLDOWN_SECONDS))
