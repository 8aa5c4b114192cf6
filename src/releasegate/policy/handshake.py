"""The release handshake: TECH_GATE_PASS → PM_GATE_PASS → RISK_GATE_PASS → JOINT_RELEASE_ACK (pure).

Technical promotion and business approval are separate facts. ``TECH_GATE_PASS`` comes from the gate
report; PM and Risk approvals come from people (the Prefect UI's approval form or
``releasegate approve``). ``check_approval`` refuses, naming the field and the rule:

* an approval needs a non-blank approver and reference;
* the approver must be on the role's allow-list (the ``releasegate-approvers`` block);
* four eyes: the approver is not the requester, and the PM approver is not the Risk approver;
* order: no PM or Risk pass without a valid tech gate report, no Risk pass before the PM pass;
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

ACK_VALIDITY = timedelta(hours=24)


class Role(StrEnum):
    pm = "pm"
    risk = "risk"


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


class Handshake(BaseModel):
    model_config = ConfigDict(frozen=True)
    model: str
    candidate_version: str
    requested_by: str
    tech_report_ref: str | None = None
    tech_pass: bool = False
    candidate_sha256: str | None = None  # the artifact the approvals are about (binds them to the binary)
    pm: Approval | None = None
    risk: Approval | None = None
    allow_lists: dict[Role, list[str]] = Field(default_factory=dict)


class ApprovalRefused(Refused):
    what = "approval refused"


def check_approval(h: Handshake, role: Role, a: ApprovalFields) -> None:
    """Raise ``ApprovalRefused`` when this approval may not be accepted now."""
    if not a.approver.strip():
        raise ApprovalRefused("approver", "required")
    if not a.reference.strip():
        raise ApprovalRefused("reference", "required: the ticket or document of your review")
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
    if role is Role.risk:
        if h.pm is None or h.pm.decision != "approve":
            raise ApprovalRefused("pm_gate_ref", "RISK_GATE_PASS needs PM_GATE_PASS first")
        if h.pm.approver == a.approver:
            raise ApprovalRefused(
                "approver", f"four eyes: {a.approver!r} gave the PM approval and cannot also give Risk's"
            )
        if h.risk is not None:
            raise ApprovalRefused("role", "Risk has already decided")
    if role is Role.pm:
        if h.pm is not None:
            raise ApprovalRefused("role", "PM has already decided")
        if h.risk is not None and h.risk.approver == a.approver:
            raise ApprovalRefused("approver", f"four eyes: {a.approver!r} gave the Risk approval")


def approval_ref(a: Approval) -> str:
    return f"{a.role.value.upper()}_GATE_PASS:{a.approver}:{a.reference}"


class JointAck(BaseModel):
    model_config = ConfigDict(frozen=True)
    valid: bool
    ref: str | None
    reason: str
    expires_at: datetime | None = None


def joint_release_ack(h: Handshake, now: datetime, validity: timedelta = ACK_VALIDITY) -> JointAck:
    if not (h.tech_pass and h.pm and h.risk):
        return JointAck(valid=False, ref=None, reason="JOINT_RELEASE_ACK needs TECH, PM and RISK passes")
    if h.pm.decision != "approve" or h.risk.decision != "approve":
        return JointAck(valid=False, ref=None, reason="PM or Risk rejected the release")
    later = max(h.pm.at, h.risk.at)
    expires = later + validity
    if now > expires:
        return JointAck(
            valid=False,
            ref=None,
            expires_at=expires,
            reason=f"JOINT_RELEASE_ACK expired at {expires.isoformat()} (24 h after the later approval): re-check",
        )
    digest = hashlib.sha256(
        f"{h.model}|{h.candidate_version}|{h.tech_report_ref}|{approval_ref(h.pm)}|{approval_ref(h.risk)}".encode()
    ).hexdigest()[:16]
    return JointAck(
        valid=True, ref=f"JOINT_RELEASE_ACK:{digest}", reason="TECH, PM and RISK passed", expires_at=expires
    )
