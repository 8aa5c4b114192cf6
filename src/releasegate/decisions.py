"""Decision records: the fixed field set, the rules each kind must satisfy, and the record hash.

Every decision releasegate takes (promotion, deferral, override, retrain, rollback, manual run, event
intake, late-run skip, monitoring verdict) is one record with the seed's field set:

``decision_id``, ``decision_timestamp`` (UTC), ``decision_outcome`` (accept | reject | override),
``decision_rationale``, ``tech_gate_report_ref``, ``pm_gate_ref``, ``risk_gate_ref``,
``joint_release_ack_ref``, ``rollback_plan_ref``, ``exception_expiry``; plus ``decision_kind``,
``subject`` (what it is about: a deployment, a flow run, a model), ``actor`` (who or what decided)
and a JSON ``details`` object.

Rules (``validate_decision``), each refusal naming the field:

* every record: a non-empty rationale, subject and actor;
* an override being granted (``decision_outcome == override``, or kind ``override`` not rejected):
  ``exception_expiry`` later than the decision's timestamp, and ``details.ticket_ref``; a refused
  override request (kind ``override``, outcome ``reject``) is recorded without them;
* per kind, the refs and ``details`` keys in ``KIND_RULES``. A promotion that is accepted or overridden
  needs every ref; a rejected promotion needs the tech gate report that justifies it.

This module is pure: the timestamp comes from the caller's clock.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from releasegate.details import DETAILS, required_fields
from releasegate.errors import Refused
from releasegate.kinds import DecisionKind as DecisionKind

GENESIS_HASH = "0" * 64


class DecisionOutcome(StrEnum):
    accept = "accept"
    reject = "reject"
    override = "override"


REF_FIELDS = (
    "tech_gate_report_ref",
    "pm_gate_ref",
    "risk_gate_ref",
    "joint_release_ack_ref",
    "rollback_plan_ref",
)


@dataclass(frozen=True)
class KindRule:
    """The refs a kind needs; its ``details`` are typed by the kind's model in ``releasegate.details``."""

    refs: tuple[str, ...] = ()
    refs_on_reject: tuple[str, ...] | None = None  # None: same refs as on accept


KIND_RULES: dict[DecisionKind, KindRule] = {
    DecisionKind.promotion: KindRule(refs=REF_FIELDS, refs_on_reject=("tech_gate_report_ref",)),
    DecisionKind.rollback: KindRule(refs=("rollback_plan_ref",), refs_on_reject=()),
}


class DecisionRefused(Refused):
    """A decision that breaks a rule; ``field`` and ``rule`` say which."""

    what = "decision refused"


class NewDecision(BaseModel):
    """What a caller submits; id and timestamp are assigned by ``make_record``."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    decision_kind: DecisionKind
    decision_outcome: DecisionOutcome
    decision_rationale: str
    subject: str
    actor: str
    tech_gate_report_ref: str | None = None
    pm_gate_ref: str | None = None
    risk_gate_ref: str | None = None
    joint_release_ack_ref: str | None = None
    rollback_plan_ref: str | None = None
    exception_expiry: datetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("exception_expiry")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and (v.tzinfo is None or v.utcoffset() is None):
            raise ValueError("exception_expiry must be timezone-aware")
        return v.astimezone(UTC) if v is not None else None


class DecisionRecord(NewDecision):
    decision_id: str
    decision_timestamp: datetime

    def content(self) -> dict[str, Any]:
        """The canonical, JSON-safe content that the hash chain covers."""
        content: dict[str, Any] = _canonical(self.model_dump(mode="json"))
        return content


def validate_decision(new: NewDecision, now: datetime) -> None:
    """Raise ``DecisionRefused`` naming the first field that breaks a rule."""
    for name in ("decision_rationale", "subject", "actor"):
        if not str(getattr(new, name)).strip():
            raise DecisionRefused(name, "required and must not be blank")
    rule = KIND_RULES.get(new.decision_kind, KindRule())
    refs = rule.refs
    if new.decision_outcome is DecisionOutcome.reject and rule.refs_on_reject is not None:
        refs = rule.refs_on_reject
    for ref in refs:
        if not (getattr(new, ref) or "").strip():
            raise DecisionRefused(
                ref, f"required for a {new.decision_kind.value} decision with outcome {new.decision_outcome.value}"
            )
    _validate_details(new)
    granted_override = new.decision_outcome is DecisionOutcome.override or (
        new.decision_kind is DecisionKind.override and new.decision_outcome is not DecisionOutcome.reject
    )
    if granted_override:
        if new.exception_expiry is None:
            raise DecisionRefused("exception_expiry", "required for an override")
        if new.exception_expiry <= now:
            raise DecisionRefused(
                "exception_expiry",
                f"must lie in the future (got {new.exception_expiry.isoformat()}, now {now.isoformat()})",
            )
        if not str(new.details.get("ticket_ref") or "").strip():
            raise DecisionRefused("details.ticket_ref", "an override needs a ticket")


def _validate_details(new: NewDecision) -> None:
    for key in required_fields(new.decision_kind):
        if new.details.get(key) in (None, ""):
            raise DecisionRefused(f"details.{key}", f"required for a {new.decision_kind.value} decision")
    try:
        DETAILS[new.decision_kind].model_validate(new.details)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise DecisionRefused(f"details.{where}", f"{err['msg']} (a {new.decision_kind.value} decision)") from None


def make_record(new: NewDecision, now: datetime, decision_id: str | None = None) -> DecisionRecord:
    """Validate ``new`` against the rules and stamp it with an id and the UTC timestamp ``now``."""
    if now.tzinfo is None:
        raise DecisionRefused("decision_timestamp", "must be timezone-aware")
    now = now.astimezone(UTC)
    validate_decision(new, now)
    return DecisionRecord(
        **new.model_dump(),
        decision_id=decision_id or str(uuid.uuid4()),
        decision_timestamp=now,
    )


def _canonical(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def record_hash(seq: int, prev_hash: str, content: dict[str, Any]) -> str:
    """SHA-256 over the position, the predecessor's hash and the canonical content."""
    payload = json.dumps(
        {"seq": seq, "prev_hash": prev_hash, "content": content}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()
