"""Pinned passkeys in the governed approvers config: an enrolment is a proposal, in force only after two
admins sign it; a passkey approval is audited against the passkey pinned when it was given. On the real
sealed decision log (SQLite), no Prefect."""

import hashlib
import json
from datetime import UTC, datetime

import pytest

from releasegate import bootstrap, records
from releasegate.decisions import DecisionOutcome
from releasegate.policy.approvers import ApproverConfig, ConfigRefused, admins_needed, config_digest, differences
from releasegate.policy.handshake import ApprovalFields, Role
from releasegate.policy.passkey_approvals import PasskeyApproval, challenge
from releasegate.policy.signatures import ApprovalStatement
from tests.support.passkeys import SoftAuthenticator


def test_configs_without_passkeys_keep_the_digest_they_were_recorded_with():
    config = ApproverConfig(pm=["pm-anna"], admins=["eva"])
    old = config.model_dump(mode="json")
    del old["passkeys"], old["auditors"], old["oidc_groups"], old["emails"], old["oncall"]  # the form before them
    assert (
        config_digest(config)
        == hashlib.sha256(json.dumps(old, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    )
    with_key = config.model_copy(update={"passkeys": {"pm-anna": SoftAuthenticator().passkey()}})
    assert config_digest(with_key) != config_digest(config)
    assert differences(config, with_key) == ["passkeys.pm-anna added"]
    assert admins_needed(config, with_key) == 2  # a key change takes two admins
    with pytest.raises(ValueError, match="COSE"):
        ApproverConfig(passkeys={"x": {"credential_id": "AA", "public_key": "AAAA", "rp_id": "l", "origin": "o"}})


def test_an_enrolment_is_a_proposal_in_force_after_two_admins(rg_home):
    from releasegate.adapters.config import from_file
    from releasegate.services.approvers import approve, audit, pending, propose_enrolment, trust_first, walk
    from releasegate.services.promotion import approver_config

    trust_first(bootstrap.app(), from_file("approvers"), "releasegate:infra-up", "file")
    key = SoftAuthenticator()
    with pytest.raises(ConfigRefused) as e:
        propose_enrolment("mallory", key.passkey(), "console:mallory", bootstrap.app())
    assert e.value.field == "name" and "on no list" in e.value.rule
    pid, changes = propose_enrolment("risk-carla", key.passkey(), "console:risk-carla", bootstrap.app())
    assert changes == ["passkeys.risk-carla added"]
    assert approver_config(bootstrap.app()).passkeys == {}  # a proposal, not in force
    log = bootstrap.decision_log()
    recs, _ = log.trusted(kind="approvers_config", subject="approvers-config")
    assert [p.decision_id for p in pending(recs, walk(recs)[0])] == [pid]
    assert approve(bootstrap.app(), pid, "head-mrm-eva") is None  # one admin is not enough for a key
    assert approve(bootstrap.app(), pid, "cro-omar") is not None
    assert approver_config(bootstrap.app()).passkeys["risk-carla"] == key.passkey()

    # a passkey approval is audited against the passkey the config pinned when it was given
    recorded(log, key, "run-1")
    assert audit(log)[1] == []
    recorded(log, SoftAuthenticator(), "run-2")  # a passkey nobody pinned for her
    [problem] = audit(log)[1]
    assert "risk-carla" in problem and "did not pin" in problem


def test_the_console_journal_records_sign_ins_and_refusals_in_the_sealed_log(rg_home):
    from releasegate.services.approval_desk import DecisionJournal

    j = DecisionJournal(bootstrap.decision_log())
    ok = j.record("signin", "risk-carla", True, "risk-carla signed in to the console with a passkey")
    no = j.record("refusal", "<anonymous>", False, "console refused POST /approvals/x: no CSRF", field="csrf_token")
    log = bootstrap.decision_log()
    recs = {r.decision_id: r for r in log.query()}
    assert recs[ok].decision_kind.value == "event" and recs[ok].subject == "console:signin"
    assert recs[no].decision_kind.value == "refusal" and recs[no].details["field"] == "csrf_token"
    assert all(log.is_trusted(recs[d]) for d in (ok, no))


def recorded(log, signer: SoftAuthenticator, run: str, **tamper) -> None:
    """A sealed RISK approval by risk-carla signed with ``signer``'s passkey; ``tamper`` alters the
    statement after signing."""
    stmt = ApprovalStatement(
        model="credit",
        candidate_version="7",
        role=Role.risk,
        decision="approve",
        approver="risk-carla",
        reference="REV-2",
        gate_report_sha256="c" * 64,
        run_id=run,
        signed_at=datetime.now(UTC),
    )
    a = PasskeyApproval(statement=stmt, assertion=signer.get(challenge(stmt)), passkey=signer.passkey())
    a = a.model_copy(update={"statement": stmt.model_copy(update=tamper)})
    fields = ApprovalFields(approver="risk-carla", reference=str(tamper.get("reference", "REV-2")))
    log.append(
        records.approval(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="RISK_GATE_PASS by risk-carla",
            subject=f"promotion:{run}",
            actor="risk-carla",
            details={"role": "risk", "model_name": "credit", "candidate_version": "7"}
            | fields.model_dump()
            | {"gate_report_sha256": "c" * 64}
            | a.record(),
        )
    )


def test_audit_verify_re_verifies_passkey_approvals_offline(rg_home, wide):
    from typer.testing import CliRunner

    from releasegate.adapters.config import from_file
    from releasegate.cli import app
    from releasegate.services.approvers import approve, propose_enrolment, trust_first

    trust_first(bootstrap.app(), from_file("approvers"), "releasegate:infra-up", "file")
    key = SoftAuthenticator()
    pid, _ = propose_enrolment("risk-carla", key.passkey(), "console:risk-carla", bootstrap.app())
    approve(bootstrap.app(), pid, "head-mrm-eva")
    approve(bootstrap.app(), pid, "cro-omar")
    log = bootstrap.decision_log()
    recorded(log, key, "run-1")
    done = CliRunner().invoke(app, ["audit", "verify"])
    assert done.exit_code == 0, done.output
    assert "1 signed approvals and 0 signed exceptions/overrides re-verified" in done.output
    recorded(log, key, "run-2", reference="REV-9")  # the statement altered after the passkey signed it
    done = CliRunner().invoke(app, ["audit", "verify"])
    assert done.exit_code == 1, done.output
    assert "approval signature broken" in done.output and "altered after signing" in done.output
