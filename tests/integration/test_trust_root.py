"""The trust root (issue "Trust root", items 6 and 7), on the real sealed decision log, a real MLflow
registry and, where a promotion or a block is needed, the session's real Prefect harness.

6. The approvers config is governed by the log: a Prefect block that pins other keys (or adds names) is
   refused, recorded naming the difference, and never used; changes are admin-signed decisions.
7. Approvers are independent: neither an owner of the model nor whoever staged the candidate (here the
   MLflow user who registered it) may approve an event-started promotion, and a role nobody eligible can
   give ends the run at once instead of waiting.
"""

import os
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.cli import app
from releasegate.decisions import DecisionKind, NewDecision
from tests.conftest import apply_deployments, govern
from tests.support.promotion import (
    WEAKER_BY_3PCT,
    Promotion,
    approve,
    install_champion,
    register,
    send_approval,
    signed_token,
    wait_paused,
    wait_repaused,
)

runner = CliRunner()


def governed_records(status: str | None = None):
    recs = bootstrap.decision_log().query(kind=DecisionKind.approvers_config)
    return [r for r in recs if status is None or r.details.get("status") == status]


def approval_refusals(run_id):
    recs = bootstrap.decision_log().query(kind="approval", subject=f"promotion:{run_id}")
    return [r.details["refusal"] for r in recs if r.details.get("refusal")]


def shipped_approvers() -> dict:
    return yaml.safe_load(Path(os.environ["RELEASEGATE_APPROVERS"]).read_text())


# ----------------------------------------------------------------- 6. governed config, no Prefect needed
def test_config_changes_are_admin_signed_decisions_and_audit_verify_checks_keys_against_them(rg_home, tmp_path):
    from releasegate.adapters.config import from_file
    from releasegate.policy.signatures import ApprovalStatement, sign
    from releasegate.services.approvers import trust_first
    from releasegate.services.promotion import approver_config
    from releasegate.store.keys import create_key, load_key

    out = runner.invoke(app, ["approvers", "show"])
    assert out.exit_code == 0 and "no governed approvers config yet" in out.output
    step, trusted_now = trust_first(
        bootstrap.app(), from_file("approvers"), "releasegate:infra-up", "file"
    )  # what `infra up` does
    assert trusted_now and [r.details["digest"] for r in governed_records("trusted_once")] == [step.digest]

    keys = bootstrap.settings().key_dir
    _, new_pub = create_key(tmp_path / "new", "pm-anna")  # pm-anna lost her laptop: a new key
    doc = shipped_approvers()
    old_pub = doc["keys"]["pm-anna"]
    doc["keys"]["pm-anna"] = new_pub
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(yaml.safe_dump(doc))

    # not an admin: refused, recorded, nothing in force
    out = runner.invoke(app, ["approvers", "propose", str(proposed), "--by", "pm-anna"])
    assert out.exit_code == 2 and "not an admin" in out.output and "Traceback" not in out.output
    assert "recorded as decision" in out.output
    # an admin proposes a key change: it waits for a second admin
    out = runner.invoke(app, ["approvers", "propose", str(proposed), "--by", "head-mrm-eva"])
    assert out.exit_code == 0, out.output
    assert "keys.pm-anna replaced" in out.output and "another admin" in out.output
    [proposal] = governed_records("proposed")
    assert approver_config(bootstrap.app()).keys["pm-anna"] == old_pub
    out = runner.invoke(app, ["approvers", "approve", proposal.decision_id, "--by", "head-mrm-eva"])
    assert out.exit_code == 2 and "already signed" in out.output
    assert f"pending proposal {proposal.decision_id}" in runner.invoke(app, ["approvers", "show"]).output
    out = runner.invoke(app, ["approvers", "approve", proposal.decision_id, "--by", "cro-omar"])
    assert out.exit_code == 0 and "in force now" in out.output, out.output
    assert approver_config(bootstrap.app()).keys["pm-anna"] == new_pub
    # an allow-list change by one admin is in force at once
    doc["risk"] = [*doc["risk"], "risk-erik"]
    proposed.write_text(yaml.safe_dump(doc))
    out = runner.invoke(app, ["approvers", "propose", str(proposed), "--by", "cro-omar"])
    assert out.exit_code == 0 and "in force now" in out.output and "risk +risk-erik" in out.output
    assert "risk-erik" in approver_config(bootstrap.app()).risk
    shown = runner.invoke(app, ["approvers", "show"]).output
    assert "trusted once by releasegate:infra-up" in shown and "signed by cro-omar, head-mrm-eva" in shown

    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "signed by cro-omar, head-mrm-eva" in verified.output

    # An approval signed with a key the governed config never pinned (what an edited block let the flow
    # accept before): sealed, its signature verifies, and `audit verify` names it.
    old_key = load_key(keys / "pm-anna.pem")  # pm-anna's old key, replaced above
    statement = ApprovalStatement(
        model="credit",
        candidate_version="7",
        role="pm",
        decision="approve",
        approver="pm-anna",
        reference="REV-1",
        gate_report_sha256="a" * 64,
        run_id="00000000-0000-0000-0000-000000000001",
        signed_at=bootstrap.clock().now(),
    )
    signed = sign(statement, old_key)
    bootstrap.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.approval,
            decision_outcome="accept",
            decision_rationale="PM_GATE_PASS by pm-anna",
            subject="promotion:00000000-0000-0000-0000-000000000001",
            actor="pm-anna",
            details={
                "role": "pm",
                "approver": "pm-anna",
                "model_name": "credit",
                "candidate_version": "7",
                "decision": "approve",
                "gate_report_sha256": "a" * 64,
                **signed.record(),
            },
        )
    )
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 1
    assert "did not pin for them" in verified.output and "'pm-anna'" in verified.output


# --------------------------------------------------------------- with Prefect: the block and promotions
@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, prefect_harness):
    from tests.conftest import fast_capacity_policy

    fast_capacity_policy(tmp_path, monkeypatch)
    monkeypatch.setenv("RELEASEGATE_APPROVAL_POLL_SECONDS", "1")
    return rg_home


@pytest.fixture
def clock(live_clock):
    return live_clock


@pytest.fixture
def no_block_left(home):
    """The approvers block document is deleted afterwards (the harness is shared by the session)."""
    yield
    with get_client(sync_client=True) as c:
        block = c.read_block_document_by_name("approvers", "releasegate-config")
        c.delete_block_document(block.id)


def test_a_block_that_pins_other_keys_is_refused_and_never_trusted(home, clock, monkeypatch, no_block_left):
    """`infra up` saves the approvers block and trusts it once. Mallory, a Prefect API user, then edits the
    block: her key pinned for pm-anna and risk-carla, herself on the exceptions list. Her approvals as
    pm-anna and risk-carla and her exception grant are refused, the block is refused (recorded once,
    naming the difference) and the governed config is what the promotion uses."""
    from releasegate.adapters.blocks import ReleasegateConfig, load_config_block
    from releasegate.store.keys import create_key

    infra = runner.invoke(app, ["infra", "up"])
    assert infra.exit_code == 0, infra.output
    monkeypatch.delenv("RELEASEGATE_APPROVERS")  # from now on the flows read the block, as on a stack
    block = load_config_block("approvers").values
    _, mallory = create_key(bootstrap.settings().key_dir, "mallory")
    edited = block | {
        "keys": block["keys"] | {"pm-anna": mallory, "risk-carla": mallory, "mallory": mallory},
        "exceptions": [*block["exceptions"], "mallory"],
    }
    ReleasegateConfig(values=edited).save("approvers", overwrite=True)

    install_champion(register(WEAKER_BY_3PCT))
    p = Promotion(register())
    run_id = wait_paused()
    wait_repaused(
        run_id, send_approval(run_id, "pm", "pm-anna", signed_token(run_id, "pm", "pm-anna", key_of="mallory"))
    )
    assert "not 'pm-anna''s pinned key" in approval_refusals(run_id)[-1]

    [trusted] = governed_records("trusted_once")
    assert "approvers config" in infra.output and "trusted once" in infra.output
    shown = runner.invoke(app, ["approvers", "show"]).output
    assert f"in force: {trusted.details['digest']}" in shown and "trusted once by releasegate:infra-up" in shown
    [refused] = governed_records("refused")
    assert refused.details["differences"] == [
        "exceptions +mallory",
        "keys.mallory added",
        "keys.pm-anna replaced",
        "keys.risk-carla replaced",
    ]
    assert refused.details["field"] == "approvers" and "releasegate approvers propose" in refused.details["rule"]

    out = runner.invoke(
        app,
        ["exception", "grant", "credit", "2", "--ticket", "CHG-1", "--by", "mallory", "--requested-by", "dev-x",
         "--rationale", "because", "--expires", "2099-01-01T00:00:00+00:00"],
    )  # fmt: skip
    assert out.exit_code != 0 and "not on the exceptions allow-list" in out.output
    assert len(governed_records("refused")) == 1  # one difference, recorded once

    approve(run_id, "pm", "pm-ben", decision="reject")  # end the run
    assert p.result().type == StateType.COMPLETED


def _register_as(monkeypatch, user: str, **kw) -> str:
    """A candidate registered by ``user`` (MLflow records the OS user as the run's and version's user)."""
    with monkeypatch.context() as m:
        m.setenv("LOGNAME", user)
        return register(**kw)


def test_who_staged_the_candidate_cannot_approve_an_event_started_promotion(home, clock, monkeypatch, tmp_path):
    from flows.promotion import promotion

    # first: `infra up` saves the config blocks from the files, and the session's harness keeps them
    deployed = apply_deployments({"promotion": (promotion, "critical")})
    install_champion(register(WEAKER_BY_3PCT))
    candidate = _register_as(monkeypatch, "pm-anna")
    p = Promotion(candidate, requested_by="registry-event")  # started by the registry event
    run_id = wait_paused()
    wait_repaused(run_id, approve(run_id, "pm", "pm-anna"))
    assert "independence: 'pm-anna' staged the candidate (MLflow user of the version)" in approval_refusals(run_id)[-1]

    # The manifest names pm-ben an owner of credit: he may not approve either.
    govern(monkeypatch, tmp_path, "credit", owners=["pm-ben"])
    wait_repaused(run_id, approve(run_id, "pm", "pm-ben", decision="reject"))
    assert "is an owner of credit (models[credit].owners)" in approval_refusals(run_id)[-1]

    # `releasegate awaiting` says at once that nobody can give the PM approval of such a run (a run of the
    # promotion deployment, paused for PM as the flow leaves it).
    from prefect.states import Cancelled, Paused

    monkeypatch.setenv("COLUMNS", "250")
    with get_client(sync_client=True) as c:
        fr = c.create_flow_run_from_deployment(
            deployed["promotion"], parameters={"model_name": "credit", "candidate_version": candidate}
        )
        c.set_flow_run_state(fr.id, Paused(timeout_seconds=600, pause_key="pm-approval-0123abcd"), force=True)
    try:
        out = runner.invoke(app, ["awaiting"])
        assert out.exit_code == 0, out.output
        assert f"NOT APPROVABLE: no eligible PM approver for credit v{candidate}: " in out.output
        assert "pm-anna staged the candidate" in out.output and "pm-ben is an owner of credit" in out.output
        assert f"releasegate approve {fr.id}" not in out.output
    finally:
        with get_client(sync_client=True) as c:
            c.set_flow_run_state(fr.id, Cancelled(), force=True)

    monkeypatch.delenv("RELEASEGATE_MODELS")
    approve(run_id, "pm", "pm-ben", decision="reject")  # end the run
    assert p.result().type == StateType.COMPLETED


def test_a_promotion_nobody_eligible_can_approve_ends_at_once_saying_why(home, clock, monkeypatch, tmp_path):
    govern(monkeypatch, tmp_path, "credit", owners=["pm-ben"])
    install_champion(register(WEAKER_BY_3PCT))
    candidate = _register_as(monkeypatch, "pm-anna")
    state = Promotion(candidate, requested_by="registry-event").result(timeout=240)
    assert state.type == StateType.FAILED
    assert state.message.startswith("no eligible PM approver for credit v")
    assert "pm-anna staged the candidate" in state.message and "pm-ben is an owner of credit" in state.message
    [outcome] = [r for r in bootstrap.decision_log().query(kind="promotion") if r.details.get("reason_code")]
    assert outcome.details["reason_code"] == "NO_ELIGIBLE_APPROVER" and outcome.decision_outcome.value == "reject"
