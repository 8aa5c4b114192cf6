"""One business approval of a promotion run: ask, read, check, record (``services.promotion_flow``).

Input never fails the run: whatever is refused (any ``Refused`` of the error tree, or a form that cannot
be read) is recorded and the run asks again. After every ``REFUSALS_PER_BURST`` refusals in a row the
run records a rate limit and waits (``approval_cooldown``) before it asks again, so garbage slows down
how often input is read and recorded and cannot end a pending release.
"""

from __future__ import annotations

import re
from typing import Any

from releasegate.errors import Refused
from releasegate.policy.handshake import (
    Approval,
    ApprovalFields,
    ApprovalRefused,
    Handshake,
    Role,
    approval_cooldown,
    check_approval,
)
from releasegate.policy.passkey_approvals import AnySigned, check_any, fields_from_any_token
from releasegate.promotion_ports import ApprovalForm, PromotionPorts
from releasegate.services.promotion_notices import notify_approvers

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
RECORDED_CHARS = 300  # how much of a refused field the record keeps (of the refusal's own text: 1000)


def wait_for(p: PromotionPorts, role: Role, h: Handshake, timeout_s: int) -> tuple[Handshake, Approval]:
    """Ask for ``role``'s approval until a valid one arrives; record it and return it with ``h``. The
    role's eligible approvers are notified once for this pause (``services.promotion_notices``)."""
    notify_approvers(p, role, h)
    refused = 0
    while True:
        raw: dict[str, Any] = {}
        try:
            form = p.approvals.ask(role, h, timeout_s)
            raw = dict(form.fields)
            h = p.records.current_rules(h)  # the governed config and the manifest's owners as they stand now
            fields, signed = read_approval(p, role, h, form, raw)
        except p.config_errors:  # the governed config cannot be read: the run fails, it is not the approver's input
            raise
        except (Refused, ValueError) as exc:  # ValueError: input the form let through, unreadable
            refused += 1
            field, rule = (exc.field, exc.rule) if isinstance(exc, Refused) else ("input", f"unreadable: {exc}")
            did = record_refusal(p, h, role, f"{field}: {rule}", raw)
            p.logger.warning("approval refused (%s), decision %s; waiting again", clip(f"{field}: {rule}", 1000), did)
            wait = approval_cooldown(refused, p.approval_cooldown_seconds)
            if wait:
                why = (
                    f"rate_limit: {refused} refused {role.value.upper()} approvals in a row; "
                    f"the next one is read in {wait} s"
                )
                did = record_refusal(p, h, role, why, {"approver": "releasegate"})
                p.logger.warning("%s (decision %s)", why, did)
                p.sleep(wait)
            continue
        a = Approval(**fields.model_dump(), role=role, at=p.clock.now(), key_id=signed.key_id)
        h = h.model_copy(update={role.value: a})
        p.records.record_approval(p.run_id, h, role, a, None, raw, signed)
        verdict = "PASS" if a.decision == "approve" else "REJECT"
        p.logger.info("%s_GATE_%s by %s", role.value.upper(), verdict, a.approver)
        return h, a


def read_approval(
    p: PromotionPorts, role: Role, h: Handshake, form: ApprovalForm, raw: dict[str, Any]
) -> tuple[ApprovalFields, AnySigned]:
    """The approval a submitted form states, checked and signed; ``Refused`` naming the field and rule.
    A token pasted alone states the other fields: they are added to ``raw`` (so a refusal records them)."""
    if form.token.strip() and not str(raw.get("approver") or "").strip():
        raw |= fields_from_any_token(form.token)
    fields = ApprovalFields.model_validate({k: v for k, v in raw.items() if k != "role"})
    for name, value in fields.model_dump().items():
        if isinstance(value, str) and _CONTROL.search(value):
            raise ApprovalRefused(name, "contains a control character (a NUL byte, say): type it again")
    if raw["role"] != role.value:
        raise ApprovalRefused("role", f"this run waits for {role.value.upper()} approval, not {raw['role']}")
    check_approval(h, role, fields)
    return fields, check_any(h, role, fields, form.token, p.run_id, p.clock.now())


def clip(value: Any, limit: int = RECORDED_CHARS) -> str:
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", str(value))
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def record_refusal(p: PromotionPorts, h: Handshake, role: Role, refusal: str, raw: dict[str, Any]) -> str:
    """Record a refused input as what can be recorded of it: each field clipped, control characters
    replaced, a blank approver as ``<missing>`` (garbage is recorded, never stored whole, never refused)."""
    kept = {k: (clip(v) if v is not None else None) for k, v in raw.items()}
    if not str(kept.get("approver") or "").strip():
        kept["approver"] = "<missing>"
    return p.records.record_approval(p.run_id, h, role, None, clip(refusal, 1000), kept)
