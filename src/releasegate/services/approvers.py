"""The governed approvers config: the config in force is the one the decision log holds.

Records (kind ``approvers_config``, subject ``approvers-config``, sealed by the service path):

* ``trusted_once``: the first config, trusted once (``releasegate infra up``, or the first reader of a
  log that holds none), with its digest;
* ``proposed``: an admin's signed proposal (``releasegate approvers propose``); ``approved``: another
  admin's signature on it (``releasegate approvers approve``);
* ``in_force``: the proposal with enough admin signatures (``policy.approvers``); it replaces the config
  in force;
* ``refused``: a proposal, an approval or a configured source (the Prefect block, the file) that was
  refused, naming the field and the rule (for a source: the fields where it differs).

Readers walk the sealed records in log order and re-check every change against the config it replaced
(``history``); nothing stored is taken on its word. The Prefect block (or the file) is no longer a trust
root: a source that differs from the config in force is refused (recorded once per difference) and the
governed config is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from releasegate import records
from releasegate.app import App
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRecord
from releasegate.policy.approvers import (
    ApproverConfig,
    ConfigRefused,
    ConfigStatement,
    canonical,
    change_problem,
    check_admin_signature,
    config_digest,
    differences,
    sign_config,
    unpinned_approval_problem,
)
from releasegate.policy.passkeys import Passkey
from releasegate.store.keys import key_path, load_key

SUBJECT = records.APPROVERS_CONFIG_SUBJECT
BUSINESS_ROLES = ("pm", "risk", "compliance")


@dataclass(frozen=True)
class Step:
    """One config in force: from ``at`` (its record's time) until the next step."""

    config: ApproverConfig
    digest: str
    at: datetime
    decision_id: str
    how: str  # "trusted once by <actor>" | "signed by a, b"


def _records(log: Any, reader: str) -> list[DecisionRecord]:
    good, forged = log.trusted(kind=DecisionKind.approvers_config, subject=SUBJECT)
    log.refuse_forged(forged, reader)
    return good


def _config(details: dict[str, Any]) -> ApproverConfig | None:
    try:
        config = ApproverConfig.model_validate(details.get("config"))
    except ValidationError:
        return None
    return config if config_digest(config) == details.get("digest") else None


def walk(records: list[DecisionRecord]) -> tuple[list[Step], list[str]]:
    """The configs in force, oldest first, and the sealed changes that do not verify (named)."""
    steps: list[Step] = []
    problems: list[str] = []
    signatures: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        d = rec.details
        status = d.get("status")
        if status == "proposed":
            signatures[rec.decision_id] = list(d.get("signatures") or [])
        elif status == "approved" and d.get("proposal_decision_id") in signatures:
            signatures[d["proposal_decision_id"]].append(d.get("signature") or {})
        elif status == "trusted_once" and not steps:
            config = _config(d)
            if config is None:
                problems.append(f"{rec.decision_id}: the trusted config does not match its digest")
                continue
            steps.append(
                Step(
                    config,
                    config_digest(config),
                    rec.decision_timestamp,
                    rec.decision_id,
                    f"trusted once by {rec.actor}",
                )
            )
        elif status == "in_force":
            config = _config(d)
            if not steps or config is None:
                problems.append(f"{rec.decision_id}: a change without a config in force, or not matching its digest")
                continue
            sigs = signatures.get(str(d.get("proposal_decision_id")), [])
            problem = change_problem(steps[-1].config, config, sigs)
            if problem is not None:
                problems.append(f"{rec.decision_id}: the change does not verify: {problem}")
                continue
            admins = sorted({str(s.get("statement", {}).get("admin")) for s in sigs})
            steps.append(
                Step(
                    config,
                    config_digest(config),
                    rec.decision_timestamp,
                    rec.decision_id,
                    f"signed by {', '.join(admins)}",
                )
            )
    return steps, problems


def history(app: App, reader: str = "approvers") -> list[Step]:
    return walk(_records(app.log, reader))[0]


def _append(
    app: App, status: str, digest: str, rationale: str, actor: str, outcome: DecisionOutcome, **details: Any
) -> str:
    rec = app.log.append(
        records.approvers_config(
            decision_outcome=outcome,
            decision_rationale=rationale,
            subject=SUBJECT,
            actor=actor,
            details={"status": status, "digest": digest, **details},
        )
    )
    return rec.decision_id


def trust_first(app: App, config: ApproverConfig, actor: str, source: str) -> tuple[Step, bool]:
    """The config in force; when the log holds none, ``config`` is trusted once (recorded with its digest).
    Returns (the config in force, whether it was trusted now)."""
    steps = history(app, actor)
    if steps:
        return steps[-1], False
    digest = config_digest(config)
    _append(
        app,
        "trusted_once",
        digest,
        f"approvers config {digest[:16]} trusted once from {source}: the trust root from now on; changes are "
        "signed by admins (`releasegate approvers propose`)",
        actor,
        DecisionOutcome.accept,
        config=canonical(config),
        source=source,
    )
    return history(app, actor)[-1], True


def _source() -> tuple[ApproverConfig | None, str, str | None]:
    """The configured approvers source (the Prefect block, else the file; the env override first)."""
    import os

    from releasegate.adapters.config import CONFIGS, ConfigError, config_file, load

    env = CONFIGS["approvers"][2]
    where = str(config_file("approvers")) if os.environ.get(env) else "block releasegate-config/approvers (or file)"
    try:
        return load("approvers"), where, None
    except ConfigError as exc:
        return None, exc.path, str(exc)


def governed_config(reader: str, app: App) -> ApproverConfig:
    """The approvers config in force. A configured source that differs is refused (recorded once per
    difference) and never used; with no governed config yet, the source is trusted once."""
    source, where, error = _source()
    steps = history(app, reader)
    if not steps:
        if source is None:
            from releasegate.adapters.config import ConfigError

            raise ConfigError(where, None, error or "cannot be read")
        return trust_first(app, source, f"releasegate:{reader}", where)[0].config
    current = steps[-1]
    if source is not None and config_digest(source) != current.digest:
        _refuse_source(app, current, source, where, reader)
    return current.config


def _refuse_source(app: App, current: Step, source: ApproverConfig, where: str, reader: str) -> None:
    digest = config_digest(source)
    for rec in _records(app.log, reader):
        d = rec.details
        if d.get("status") == "refused" and d.get("digest") == digest and d.get("governed_digest") == current.digest:
            return  # already recorded
    diff = differences(current.config, source)
    rule = (
        f"differs from the governed approvers config {current.digest[:16]} ({'; '.join(diff)}); not trusted: "
        "change it with `releasegate approvers propose`"
    )
    _append(
        app,
        "refused",
        digest,
        f"approvers config from {where} refused: {rule}",
        f"releasegate:{reader}",
        DecisionOutcome.reject,
        governed_digest=current.digest,
        source=where,
        differences=diff,
        field="approvers",
        rule=rule,
    )


def _refused(app: App, by: str, field: str, rule: str, digest: str = "") -> ConfigRefused:
    """A refused proposal or approval, recorded; the exception carries the record's ``decision_id``."""
    did = _append(
        app,
        "refused",
        digest or "(none)",  # a refusal before any config was read names none
        f"approvers config change refused: {field}: {rule}",
        by or "<missing>",
        DecisionOutcome.reject,
        field=field,
        rule=rule,
    )
    exc = ConfigRefused(field, rule)
    exc.decision_id = did  # type: ignore[attr-defined]
    return exc


def _signed(app: App, action: str, digest: str, previous: str, by: str, key_file: Path | None) -> dict[str, Any]:
    key = load_key(key_file or key_path(app.settings.key_dir.expanduser(), by))
    statement = ConfigStatement(
        action=action, digest=digest, previous_digest=previous, admin=by, signed_at=app.clock.now()
    )
    return sign_config(statement, key).record()


def _check(app: App, current: Step, digest: str, sig: dict[str, Any], by: str) -> None:
    from releasegate.policy.approvers import SignedConfig

    signed = SignedConfig.model_validate(
        {"statement": sig["statement"], "public_key": sig["public_key"], "signature": sig["signature"]}
    )
    try:
        check_admin_signature(signed, current.config, digest, current.digest)
    except ConfigRefused as exc:
        raise _refused(app, by, exc.field, exc.rule, digest) from None


def propose(
    app: App, proposed: ApproverConfig, by: str, key_file: Path | None = None
) -> tuple[str, str | None, list[str]]:
    """Record ``by``'s signed proposal; returns (proposal id, the in-force record id when one signature is
    enough, the changes). Raises ``ConfigRefused`` (recorded) or ``KeyRefused`` (nothing signed)."""
    steps = history(app, "approvers")
    if not steps:
        raise _refused(app, by, "approvers", "no governed config yet: `releasegate infra up` trusts the first one")
    current = steps[-1]
    digest = config_digest(proposed)
    changes = differences(current.config, proposed)
    if not changes:
        raise _refused(app, by, "config", f"identical to the config in force {current.digest[:16]}", digest)
    sig = _signed(app, "propose", digest, current.digest, by, key_file)
    _check(app, current, digest, sig, by)
    pid = _append(
        app,
        "proposed",
        digest,
        f"approvers config {digest[:16]} proposed by {by}: {'; '.join(changes)}",
        by,
        DecisionOutcome.accept,
        previous_digest=current.digest,
        config=canonical(proposed),
        signatures=[sig],
        changes=changes,
    )
    return pid, _in_force_if_enough(app, current, proposed, pid, [sig], by), changes


def _in_force_if_enough(
    app: App, current: Step, proposed: ApproverConfig, pid: str, sigs: list[dict[str, Any]], by: str
) -> str | None:
    if change_problem(current.config, proposed, sigs) is not None:
        return None
    digest = config_digest(proposed)
    return _append(
        app,
        "in_force",
        digest,
        f"approvers config {digest[:16]} in force (replaces {current.digest[:16]})",
        by,
        DecisionOutcome.accept,
        previous_digest=current.digest,
        proposal_decision_id=pid,
        config=canonical(proposed),
    )


def propose_enrolment(
    name: str, passkey: Passkey, actor: str, app: App, invitation: str | None = None
) -> tuple[str, list[str]]:
    """Record a passkey enrolment as a proposal of the config in force with ``passkeys[name]`` set, signed
    by no one: it takes effect when admins approve it (``releasegate approvers approve ID --by ADMIN``,
    two of them: a key change). ``invitation``: the enrolment invitation it uses (``services.invitations``).
    Returns (proposal id, the changes). ``ConfigRefused`` (recorded) for a name the config does not know."""
    steps = history(app, "console")
    if not steps:
        raise _refused(app, actor, "approvers", "no governed config yet: `releasegate infra up` trusts the first one")
    current = steps[-1]
    if name not in current.config.names():
        raise _refused(app, actor, "name", f"{name!r} is on no list of the governed approvers config: ask an admin")
    proposed = current.config.model_copy(update={"passkeys": {**current.config.passkeys, name: passkey}})
    digest = config_digest(proposed)
    changes = differences(current.config, proposed)
    if not changes:
        raise _refused(app, actor, "passkey", f"this passkey is already pinned for {name!r}", digest)
    pid = _append(
        app,
        "proposed",
        digest,
        f"passkey enrolment of {name} (credential {passkey.credential_id[:16]}) proposed: {'; '.join(changes)}",
        actor,
        DecisionOutcome.accept,
        previous_digest=current.digest,
        config=canonical(proposed),
        signatures=[],
        changes=changes,
        enrolment={"name": name, "credential_id": passkey.credential_id, "key_id": passkey.key_id},
        **({"invitation_decision_id": invitation} if invitation else {}),
    )
    return pid, changes


def approve(app: App, proposal_id: str, by: str, key_file: Path | None = None) -> str | None:
    """``by``'s signature on a pending proposal; returns the in-force record id when it is now enough."""
    records = _records(app.log, "approvers")
    steps, _ = walk(records)
    proposal = next(
        (r for r in records if r.decision_id == proposal_id and r.details.get("status") == "proposed"), None
    )
    if proposal is None or not steps:
        raise _refused(
            app, by, "proposal", f"{proposal_id!r} is not a proposal (`releasegate approvers show` lists them)"
        )
    current, d = steps[-1], proposal.details
    config = _config(d)
    if config is None or d.get("previous_digest") != current.digest:
        raise _refused(app, by, "proposal", f"{proposal_id} was made against another config than the one in force now")
    sigs = list(d.get("signatures") or []) + [
        r.details.get("signature") or {}
        for r in records
        if r.details.get("status") == "approved" and r.details.get("proposal_decision_id") == proposal_id
    ]
    if any(s.get("statement", {}).get("admin") == by for s in sigs):
        raise _refused(app, by, "by", f"{by!r} already signed proposal {proposal_id}: another admin must", d["digest"])
    sig = _signed(app, "approve", d["digest"], current.digest, by, key_file)
    _check(app, current, d["digest"], sig, by)
    _append(
        app,
        "approved",
        d["digest"],
        f"approvers config {d['digest'][:16]} approved by {by}",
        by,
        DecisionOutcome.accept,
        proposal_decision_id=proposal_id,
        signature=sig,
    )
    return _in_force_if_enough(app, current, config, proposal_id, [*sigs, sig], by)


def pending(records: list[DecisionRecord], steps: list[Step]) -> list[DecisionRecord]:
    """Proposals against the config in force that are not in force yet."""
    if not steps:
        return []
    done = {r.details.get("proposal_decision_id") for r in records if r.details.get("status") == "in_force"}
    return [
        r
        for r in records
        if r.details.get("status") == "proposed"
        and r.details.get("previous_digest") == steps[-1].digest
        and r.decision_id not in done
    ]


def in_force_at(steps: list[Step], when: datetime) -> Step | None:
    found = None
    for s in steps:
        if s.at <= when:
            found = s
    return found


def audit(log: Any) -> tuple[list[str], list[str]]:
    """For ``audit verify``: the config history (lines) and problems: a change that does not verify, an
    accepted signed approval whose key the config in force at its time did not pin for its approver."""
    records, _ = log.trusted(kind=DecisionKind.approvers_config, subject=SUBJECT)
    steps, problems = walk(records)
    lines = [f"approvers config {s.digest[:16]} in force from {s.at:%Y-%m-%d %H:%M} UTC ({s.how})" for s in steps]
    refused = sum(1 for r in records if r.details.get("status") == "refused")
    if refused:
        lines.append(f"{refused} approvers config changes or sources refused (`releasegate approvers show`)")
    problems = [f"approvers config change {p}" for p in problems]
    for rec in log.query(kind=DecisionKind.approval):
        d = rec.details
        if d.get("role") not in BUSINESS_ROLES or not d.get("signature") or d.get("refusal"):
            continue
        step = in_force_at(steps, rec.decision_timestamp)
        if step is None:
            continue  # given before the config was governed
        if unpinned_approval_problem(step.config, d) is not None:
            problems.append(
                f"approval {rec.decision_id} by {d.get('approver')!r}: signed with a key the governed approvers "
                f"config {step.digest[:16]} in force then did not pin for them"
            )
    return lines, problems
