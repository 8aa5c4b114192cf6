"""Promotion on a real MLflow registry (SQLite in a temp dir) and the Prefect test harness.

Models are really trained (scikit-learn on generated data); "3 % better" and "1 % better" are measured
AUCs: the champion is trained without one feature (a data source it did not have), checked as a
precondition. Approvals are supplied as
run input to the paused flow, as the Prefect UI's form or `releasegate approve` does.
"""

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from credit_example.training import train
from prefect import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.flow_runs import resume_flow_run
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.bootstrap import use_clock
from releasegate.cli import app
from releasegate.decisions import DecisionKind
from releasegate.policy.gates import GateReport, kpi_delta
from tests.conftest import fast_capacity_policy, govern, signed_approval
from tests.support.promotion import (
    MODEL,
    PROD,
    STAGING,
    WEAKER_BY_1PCT,
    WEAKER_BY_3PCT,
    Promotion,
    approve,
    auc,
    install_champion,
    paused_runs,
    promote_with_approvals,
    register,
    run_parameters,
    send_approval,
    signed_token,
    wait_paused,
    wait_repaused,
)

pytestmark = pytest.mark.prefect


@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, prefect_harness):
    fast_capacity_policy(tmp_path, monkeypatch)
    monkeypatch.setenv("RELEASEGATE_APPROVAL_POLL_SECONDS", "1")
    return rg_home


@pytest.fixture
def clock(live_clock):
    return live_clock


# ------------------------------------------------------------------------------------ outcomes
def test_3pct_better_candidate_is_promoted_as_the_same_binary(home, clock):
    v1 = register(WEAKER_BY_3PCT)
    run1, state1 = promote_with_approvals(v1)  # first release: no champion yet
    assert state1.is_completed(), state1.message
    first = state1.result()
    assert first["outcome"] == "promote" and registry.aliases(PROD) == {"champion": first["prod_version"]}

    v2 = register()
    delta = kpi_delta(auc(STAGING, v2), auc(STAGING, v1))
    assert 0.025 <= delta <= 0.045, f"precondition: candidate should be ~3 % better, is {delta:+.2%}"
    run2, state2 = promote_with_approvals(v2)
    assert state2.is_completed(), state2.message
    out = state2.result()
    assert out["outcome"] == "promote" and out["previous_champion"] == first["prod_version"]

    prod_v = out["prod_version"]
    assert registry.aliases(PROD) == {"champion": prod_v, "archive": first["prod_version"]}
    # Binary promotion: prod holds exactly the artifact tested in staging.
    assert registry.artifact_sha256(f"models:/{PROD}/{prod_v}") == registry.artifact_sha256(f"models:/{STAGING}/{v2}")
    tags = registry.client().get_model_version(PROD, prod_v).tags
    assert tags["source_version"] == v2 and tags["source_model"] == STAGING
    assert tags["decision_id"] == out["pending_decision_id"] and tags["git_sha"]

    log = bootstrap.decision_log()
    records = log.query(kind="promotion", subject=f"promotion:{run2}")
    assert [r.details["status"] for r in records] == ["pending", "final"]
    final = log.get(out["decision_id"])
    for ref in ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref", "rollback_plan_ref"):
        assert getattr(final, ref), ref
    assert final.pm_gate_ref.startswith("PM_GATE_PASS:pm-anna") and final.risk_gate_ref.startswith(
        "RISK_GATE_PASS:risk-carla"
    )
    assert final.rollback_plan_ref == f"archive:{PROD}@v{first['prod_version']}"
    assert final.details["tech_ready"] is True and final.details["business_approved"] is True
    assert final.details["prod_version"] == prod_v and final.details["pending_decision_id"] == records[0].decision_id
    roles = [r.details["role"] for r in log.query(kind="approval", subject=f"promotion:{run2}")]
    assert roles == ["tech", "pm", "risk"]
    assert log.verify().ok


def test_a_high_risk_model_is_released_only_after_compliance_signs_off_third(home, clock, tmp_path, monkeypatch):
    """risk_tier: high in the manifest adds COMPLIANCE_GATE_PASS after RISK: PM and Risk are not enough,
    a compliance approval by someone not on its list is refused and recorded, then a third person's
    sign-off releases it and the promotion record carries the compliance ref."""
    govern(monkeypatch, tmp_path, MODEL, risk_tier="high")
    p = Promotion(register())
    run_id = wait_paused()
    wait_repaused(run_id, approve(run_id, "pm", "pm-anna"))
    wait_repaused(run_id, approve(run_id, "risk", "risk-carla"))
    assert registry.aliases(PROD) == {}  # PM + Risk: not released
    wait_repaused(run_id, approve(run_id, "compliance", "risk-dan"))  # not on the compliance list
    approve(run_id, "compliance", "compliance-frank")
    state = p.result()
    assert state.is_completed(), state.message
    assert state.result()["outcome"] == "promote" and registry.alias_version(PROD, "champion")
    approvals = [r for r in bootstrap.decision_log().query(kind="approval") if r.details["role"] == "compliance"]
    assert [(r.details["approver"], r.decision_outcome.value) for r in approvals] == [
        ("risk-dan", "reject"),
        ("compliance-frank", "accept"),
    ]
    assert "approver" in approvals[0].details["refusal"] and "allow-list" in approvals[0].details["refusal"]
    final = [r for r in bootstrap.decision_log().query(kind="promotion") if r.details.get("status") == "final"][-1]
    assert final.details["compliance_gate_ref"] == "COMPLIANCE_GATE_PASS:compliance-frank:REV-1"


def test_1pct_better_candidate_is_held_with_a_measures_plan(home, clock):
    champion = register(WEAKER_BY_1PCT)
    install_champion(champion)
    candidate = register()
    delta = kpi_delta(auc(STAGING, candidate), auc(STAGING, champion))
    assert 0.005 <= delta < 0.02, f"precondition: candidate should be ~1 % better, is {delta:+.2%}"
    state = Promotion(candidate).result()
    assert state.is_completed()
    out = state.result()
    assert out["outcome"] == "hold" and any(m.startswith("kpi_delta:") for m in out["measures_plan"])
    rec = bootstrap.decision_log().get(out["decision_id"])
    assert rec.decision_outcome.value == "reject" and rec.details["promotion_outcome"] == "hold"
    assert rec.details["tech_ready"] is False and rec.details["business_approved"] is False
    assert rec.tech_gate_report_ref.startswith("artifact:")
    assert registry.aliases(PROD) == {"champion": "1"}  # nothing moved
    # Why it was held is in the hash-chained log itself: the TECH record holds the gate report.
    [tech] = [
        r for r in bootstrap.decision_log().query(kind="approval", subject=rec.subject) if r.details["role"] == "tech"
    ]
    report = GateReport.model_validate(tech.details["gate_report"])
    assert report.outcome.value == "hold" and report.gate("kpi_delta").status == "fail"
    assert tech.details["gate_report_sha256"] == report.sha256() == rec.details["gate_report_sha256"]


def test_the_model_manifest_sets_the_kpi_and_its_direction(home, clock, tmp_path, monkeypatch):
    """The promotion judges a model by its own KPI from blocks/models.yaml: declared lower-is-better, the
    higher-AUC candidate is the worse one and does not get through."""
    manifest = tmp_path / "models.yaml"
    manifest.write_text(
        yaml.safe_dump({"models": [{"name": MODEL, "primary_kpi": {"metric": "roc_auc", "direction": "lower"}}]})
    )
    monkeypatch.setenv("RELEASEGATE_MODELS", str(manifest))
    install_champion(register(WEAKER_BY_3PCT))
    out = Promotion(register()).result().result()
    assert out["outcome"] != "promote"
    [tech] = [
        r
        for r in bootstrap.decision_log().query(kind="approval")
        if r.details["role"] == "tech" and r.details["candidate_version"] == "2"
    ]
    kpi = GateReport.model_validate(tech.details["gate_report"]).gate("kpi_delta")
    assert kpi.status == "fail" and kpi.measured is not None and kpi.measured < 0  # judged the other way round
    assert registry.aliases(PROD) == {"champion": "1"}


def test_a_version_logged_without_an_input_example_is_held_with_what_to_log(home, clock):
    """The smoke test scores the model's own logged input_example (not releasegate's demo rows); a team's
    model logged without one is held, and the measure says what to log."""
    result = train(seed=11)
    mlflow = registry._mlflow()
    with mlflow.start_run(experiment_id=registry.experiment_id()):
        mlflow.log_metrics(result.metrics)
        info = mlflow.sklearn.log_model(
            result.model, name="model", registered_model_name=STAGING, skops_trusted_types=["numpy.dtype"]
        )
    out = Promotion(str(info.registered_model_version)).result().result()
    assert out["outcome"] == "hold"
    assert any(m.startswith("smoke_test:") and "input_example" in m for m in out["measures_plan"])
    assert registry.aliases(PROD) == {}  # nothing moved


def test_approved_exception_waives_the_kpi_gate_until_it_expires(home, clock):
    champion = register(WEAKER_BY_1PCT)
    install_champion(champion)
    candidate = register()
    runner = CliRunner()
    no_expiry = runner.invoke(
        app,
        [
            "exception",
            "grant",
            MODEL,
            candidate,
            "--ticket",
            "EXC-7",
            "--by",
            "head-mrm-eva",
            "--requested-by",
            "model-owner-olga",
            "--rationale",
            "regulatory model refresh",
        ],
    )
    assert no_expiry.exit_code == 1 and "exception_expiry: required" in no_expiry.output
    [refused] = bootstrap.decision_log().query(kind="override")
    assert refused.decision_outcome.value == "reject" and "exception_expiry" in refused.decision_rationale

    expires = (clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S%z")
    ok = runner.invoke(
        app,
        [
            "exception",
            "grant",
            MODEL,
            candidate,
            "--ticket",
            "EXC-7",
            "--by",
            "head-mrm-eva",
            "--requested-by",
            "model-owner-olga",
            "--rationale",
            "regulatory model refresh",
            "--expires",
            expires,
        ],
    )
    assert ok.exit_code == 0, ok.output
    p = Promotion(candidate)
    run_id = wait_paused()  # the KPI gate is waived: the run now waits for PM
    from releasegate.policy.gates import GateReport  # noqa: F401  (documenting the type of the artifact)

    tech = [r for r in bootstrap.decision_log().query(kind="approval", subject=f"promotion:{run_id}")]
    assert tech[0].details["outcome"] == "promote"
    resume_flow_run(run_id, run_input=signed_approval(run_id, "pm", "pm-anna", "R", "reject"))
    assert p.result().is_completed()


def _work_slots() -> tuple[int, int]:
    with get_client(sync_client=True) as c:
        gcl = c.read_global_concurrency_limit_by_name("deployment-promotion")
    return gcl.limit, gcl.active_slots


def test_the_promotions_concurrency_limit_holds_its_work_and_not_its_approval_wait(home, clock):
    """prefect.yaml declares the promotion's concurrency_limit in runtime_policy (Prefect 3.8 would cancel a
    run paused on a deployment slot within 225 s): releasegate holds it as the global concurrency limit
    deployment-promotion around the dossier and gates, and not while the run waits for an approval."""
    from prefect.concurrency.sync import concurrency

    from releasegate.adapters.prefect_locks import ensure_limit

    with get_client(sync_client=True) as c:
        ensure_limit(c, "deployment-promotion", 4)
    v = register()
    with concurrency("deployment-promotion", occupy=4, strict=True):  # four promotions at work elsewhere
        p = Promotion(v)
        time.sleep(5)
        assert not paused_runs(datetime.now(UTC))
        assert bootstrap.decision_log().query(kind="approval") == []  # no TECH record: the gates wait
    run_id = wait_paused()  # a slot freed: dossier, gates, TECH, then the pause for PM
    assert _work_slots() == (4, 0)  # a run waiting for people holds no slot
    n = approve(run_id, "pm", "pm-anna")
    wait_repaused(run_id, n)
    approve(run_id, "risk", "risk-carla")
    state = p.result()
    assert state.is_completed(), state.message
    assert state.result()["outcome"] == "promote" and _work_slots() == (4, 0)
    # `releasegate watch` ends with the artifacts of the run's subflows: the dossier and the gate report
    res = CliRunner().invoke(app, ["watch", str(run_id)])
    assert res.exit_code == 0, res.output
    assert "artifact dossier-credit: Promotion dossier" in res.output
    assert "artifact gate-report-credit: Promotion gate report" in res.output


def test_a_candidate_version_the_registry_does_not_have_fails_saying_where_it_looked(home, clock):
    from flows.promotion import promotion

    register()
    state = promotion(model_name=MODEL, candidate_version="99", return_state=True)
    assert state.is_failed()
    assert f"candidate_version: staging.{MODEL} has no version '99' in the MLflow registry at" in state.message
    assert "source ~/.releasegate/stack/stack.env" in state.message


# ------------------------------------------------------------------------------------- refusals
def test_bad_approvals_are_refused_recorded_and_asked_again(home, clock):
    candidate = register()
    p = Promotion(candidate, requested_by="pm-anna")
    run_id = wait_paused()
    log = bootstrap.decision_log()

    n = approve(run_id, "pm", "pm-anna")  # the requester approving their own promotion
    wait_repaused(run_id, n)
    n = approve(run_id, "pm", "mallory")  # not on the PM allow-list
    wait_repaused(run_id, n)
    n = approve(run_id, "risk", "risk-carla")  # Risk before PM
    wait_repaused(run_id, n)
    refusals = [r for r in log.query(kind="approval", subject=f"promotion:{run_id}") if r.details.get("refusal")]
    assert [r.details["refusal"].split(":")[0] for r in refusals] == ["approver", "approver", "role"]
    assert "four eyes" in refusals[0].details["refusal"] and "allow-list" in refusals[1].details["refusal"]
    assert all(r.decision_outcome.value == "reject" for r in refusals)

    # The same rules from the terminal: Risk with the PM's identity is refused by the CLI itself.
    n = approve(run_id, "pm", "pm-ben")
    wait_repaused(run_id, n)
    runner = CliRunner()
    same = runner.invoke(app, ["approve", str(run_id), "--role", "risk", "--by", "pm-ben", "--ref", "R-2"])
    assert same.exit_code == 1 and "not on the risk allow-list" in same.output
    ok = runner.invoke(app, ["approve", str(run_id), "--role", "risk", "--by", "risk-dan", "--ref", "R-3"])
    assert ok.exit_code == 0, ok.output
    state = p.result()
    assert state.is_completed() and state.result()["outcome"] == "promote"
    assert registry.aliases(PROD)["champion"] == state.result()["prod_version"]


def test_risk_approval_before_a_tech_report_is_refused(home, clock):
    champion = register(WEAKER_BY_1PCT)
    install_champion(champion)
    held = Promotion(register()).result()  # held: no TECH_GATE_PASS
    assert held.result()["outcome"] == "hold"
    with get_client(sync_client=True) as c:
        [run] = c.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["promotion"])), limit=1, sort="START_TIME_DESC"
        )
    result = CliRunner().invoke(app, ["approve", str(run.id), "--role", "risk", "--by", "risk-carla", "--ref", "R"])
    assert (
        result.exit_code == 1
        and "tech_gate_report_ref" in result.output
        and "TECH_GATE_PASS comes first" in result.output
    )
    [rec] = [
        r
        for r in bootstrap.decision_log().query(kind="approval", subject=f"promotion:{run.id}")
        if r.details.get("role") == "risk"
    ]
    assert rec.decision_outcome.value == "reject" and "tech gate report" in rec.details["refusal"]


def test_expired_joint_ack_is_refused_and_the_run_rechecks(home, clock, tmp_path, monkeypatch):
    """Approvals at T, then a change freeze defers the release by 30 h: the ack (24 h) has expired."""
    from prefect.exceptions import Pause
    from prefect.flow_engine import run_flow

    from flows.promotion import promotion

    start = datetime.now(UTC) - timedelta(hours=31)  # in the past, so Prefect need not wait for the freeze end
    clock.set(start)
    policy = yaml.safe_load(open(bootstrap.project_root() / "blocks" / "capacity_policy.yaml")) | {
        "backoff_seconds": [1, 2],
        "windows": [
            {
                "name": "release-freeze",
                "kind": "change_freeze",
                "deployments": ["promotion"],
                "start": (start + timedelta(minutes=5)).isoformat(),
                "end": (start + timedelta(hours=30)).isoformat(),
            }
        ],
    }
    path = tmp_path / "freeze.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", str(path))
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up

    infra_up(capacity_from_file(path))
    candidate = register()
    with get_client(sync_client=True) as c:
        dep = promotion.to_deployment(
            name="promotion", work_pool_name="releasegate", work_queue_name="critical"
        ).apply()
        fr = c.create_flow_run_from_deployment(
            dep,
            parameters={
                "model_name": MODEL,
                "candidate_version": candidate,
                "requested_by": "ml-engineer",
                "approval_timeout_minutes": 10,
            },
        )
    outcome = {}

    def execute():
        with use_clock(clock):
            try:
                with get_client(sync_client=True) as c:
                    outcome["state"] = run_flow(promotion, flow_run=c.read_flow_run(fr.id), return_type="state")
            except Pause:
                outcome["paused"] = True

    t = threading.Thread(target=execute, daemon=True)
    t.start()
    wait_paused()
    n = approve(fr.id, "pm", "pm-anna")
    wait_repaused(fr.id, n)
    clock.advance(minutes=10)  # the Risk approval comes inside the freeze
    approve(fr.id, "risk", "risk-carla")
    t.join(120)
    assert outcome.get("paused"), outcome  # deferred by the freeze, approvals recorded
    with get_client(sync_client=True) as c:
        assert c.read_flow_run(fr.id).state.message == "CHANGE_FREEZE"

    clock.set(start + timedelta(hours=30, seconds=1))  # the freeze is over: 29 h 50 min after the approvals
    t = threading.Thread(target=execute, daemon=True)
    t.start()
    run_id = wait_paused()  # re-checked the gates, now asks for fresh approvals
    assert run_id == fr.id
    expired = [
        r
        for r in bootstrap.decision_log().query(kind="promotion", subject=f"promotion:{fr.id}")
        if r.details.get("reason_code") == "ACK_EXPIRED"
    ]
    assert (
        len(expired) == 1 and "expired" in expired[0].decision_rationale and "re-check" in expired[0].decision_rationale
    )
    n = approve(fr.id, "pm", "pm-ben")
    wait_repaused(fr.id, n)
    approve(fr.id, "risk", "risk-dan")
    t.join(120)
    assert outcome["state"].is_completed(), outcome["state"]
    assert registry.aliases(PROD)["champion"]


def test_two_promotions_of_one_model_run_one_after_the_other(home, clock):
    a_version, b_version = register(), register(seed=12)
    a = Promotion(a_version)
    first = wait_paused()
    b = Promotion(b_version)
    time.sleep(5)  # b has had time to start: it must be waiting on the model's lock, not at an approval
    assert [r.id for r in paused_runs(datetime.now(UTC))] == [first]
    assert bootstrap.decision_log().query(kind="approval", subject_prefix="promotion:") and all(
        r.subject == f"promotion:{first}" for r in bootstrap.decision_log().query(kind="approval")
    )
    n = approve(first, "pm", "pm-anna")
    wait_repaused(first, n)
    approve(first, "risk", "risk-carla")
    assert a.result().is_completed()
    second = wait_paused(known={first})  # only now does b reach its approvals
    n = approve(second, "pm", "pm-anna")
    wait_repaused(second, n)
    approve(second, "risk", "risk-carla")
    assert b.result().is_completed()
    finals = [
        r for r in bootstrap.decision_log().query(kind="promotion") if r.details.get("status") in ("pending", "final")
    ]
    assert [(r.subject, r.details["status"]) for r in finals] == [
        (f"promotion:{first}", "pending"),
        (f"promotion:{first}", "final"),
        (f"promotion:{second}", "pending"),
        (f"promotion:{second}", "final"),
    ]


def test_a_crash_after_the_pending_record_converges_without_copying_twice(home, clock):
    from releasegate.policy.gates import GatePolicy, execute_gates
    from releasegate.policy.handshake import Approval, Handshake, Role
    from releasegate.services import promotion as promotion_ops
    from releasegate.services import release

    version = register()
    dossier = promotion_ops.build_dossier(bootstrap.app(), MODEL, version, GatePolicy())
    report = execute_gates(dossier, GatePolicy(), clock.now())
    assert report.tech_gate_pass
    h = Handshake(
        model=MODEL,
        candidate_version=version,
        requested_by="ml-eng",
        tech_report_ref="artifact:r",
        tech_pass=True,
        pm=Approval(role=Role.pm, approver="pm-anna", reference="P", at=clock.now()),
        risk=Approval(role=Role.risk, approver="risk-carla", reference="R", at=clock.now()),
    )
    sha = dossier.candidate.artifact_sha256
    args = ("crash-run", report, "artifact:r", h, "JOINT_RELEASE_ACK:t", sha, bootstrap.ports())

    # The process died after the pending record and the copy, before the aliases and the final record.
    pending = release.write_pending(*args)
    copied = registry.copy_to(STAGING, version, PROD)
    registry.set_tags(PROD, copied, {"decision_id": pending.decision_id})
    assert registry.aliases(PROD) == {}

    out = release.binary_promotion(*args)
    assert out["converged"] and out["prod_version"] == copied and out["pending_decision_id"] == pending.decision_id
    assert [str(mv.version) for mv in registry.client().search_model_versions(f"name='{PROD}'")] == [copied]
    assert registry.aliases(PROD) == {"champion": copied}
    final = bootstrap.decision_log().get(out["decision_id"])
    assert final.details["status"] == "final" and final.details["converged"] is True

    again = release.binary_promotion(*args)  # a further rerun changes nothing
    assert again["decision_id"] == out["decision_id"]
    assert len(bootstrap.decision_log().query(kind="promotion", subject="promotion:crash-run")) == 2


def test_unacknowledged_gate_failure_opens_a_p1_incident_after_30_minutes(home, clock):
    from releasegate.services.gate_failures import escalate_unacknowledged

    champion = register(WEAKER_BY_1PCT)
    install_champion(champion)
    held = Promotion(register()).result().result()
    other = Promotion(register(WEAKER_BY_1PCT)).result().result()  # no better than the champion: held too
    assert held["outcome"] == other["outcome"] == "hold"
    runner = CliRunner()
    ack = runner.invoke(app, ["gate-failures", "ack", other["decision_id"], "--by", "ml-lead", "--note", "retrain"])
    assert ack.exit_code == 0, ack.output

    clock.advance(minutes=29)
    assert escalate_unacknowledged(bootstrap.app()) == []
    clock.advance(minutes=1)
    [incident] = escalate_unacknowledged(bootstrap.app())
    assert incident["gate_failure"] == held["decision_id"] and incident["waited_minutes"] == 30
    assert escalate_unacknowledged(bootstrap.app()) == []  # once
    rec = bootstrap.decision_log().get(incident["incident_decision"])
    assert rec.details["severity"] == "P1" and rec.details["incident_for"] == held["decision_id"]
    assert rec.decision_kind is DecisionKind.incident  # its own kind, no longer a "promotion"
    [ack_rec] = bootstrap.decision_log().query(kind="gate_failure_ack")
    assert ack_rec.details["acknowledged_decision_id"] == other["decision_id"] and ack_rec.actor == "ml-lead"
    listed = json.loads(runner.invoke(app, ["gate-failures", "--json"]).stdout)
    assert {(r["decision_id"], r["acknowledged"], r["incident"]) for r in listed} == {
        (held["decision_id"], False, True),
        (other["decision_id"], True, False),
    }


# ------------------------------------------------------------------------------- signed approvals
def test_unsigned_forged_replayed_and_shared_key_approvals_are_refused_and_recorded(home, clock, tmp_path, monkeypatch):
    """Signed approvals on the real flow: the Prefect form's input is checked against the key pinned for
    the approver. Unsigned, signed with someone else's key, over another gate report, altered, replayed
    from another run, and one key for PM and Risk (under two names) are each refused naming the field and
    rule and recorded; the champion does not move until a valid signed PM and Risk approval arrive. The
    token alone, pasted into the form, is enough. `audit verify` re-verifies the signatures."""
    import shutil

    from releasegate.store.keys import create_key

    approvers = yaml.safe_load(Path(os.environ["RELEASEGATE_APPROVERS"]).read_text())  # rg_home's pinned keys
    keys = bootstrap.settings().key_dir
    approvers["keys"]["risk-dan"] = approvers["keys"]["pm-ben"]  # one person, two names, one key
    (keys / "risk-dan.pem").unlink()
    shutil.copy(keys / "pm-ben.pem", keys / "risk-dan.pem")
    (tmp_path / "approvers-shared.yaml").write_text(yaml.safe_dump(approvers))
    monkeypatch.setenv("RELEASEGATE_APPROVERS", str(tmp_path / "approvers-shared.yaml"))
    create_key(keys, "mallory")

    champion = install_champion(register(WEAKER_BY_3PCT))
    p = Promotion(register())
    run_id = wait_paused()
    log = bootstrap.decision_log()
    from releasegate.services.promotion import tech_pass

    _, _, tech_report = tech_pass(bootstrap.app(), str(run_id))
    good = signed_token(run_id, "pm", "pm-ben")
    attempts = [
        ("", "token"),  # unsigned: a typed name proves nothing
        (signed_token(run_id, "pm", "pm-ben", key_of="mallory"), "token"),  # not pm-ben's pinned key
        (signed_token(run_id, "pm", "pm-ben", gate_report_sha256="0" * 64), "gate_report_sha256"),  # another report
        (good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"), "token"),  # altered
    ]
    for token, _ in attempts:
        wait_repaused(run_id, send_approval(run_id, "pm", "pm-ben", token))
    refusals = [r for r in log.query(kind="approval", subject=f"promotion:{run_id}") if r.details.get("refusal")]
    assert [r.details["refusal"].split(":")[0] for r in refusals] == [f for _, f in attempts]
    assert "required" in refusals[0].details["refusal"] and "releasegate approve" in refusals[0].details["refusal"]
    assert "not 'pm-ben''s pinned key" in refusals[1].details["refusal"]
    assert tech_report[:16] in refusals[2].details["refusal"]
    assert all(r.decision_outcome.value == "reject" for r in refusals)
    assert registry.alias_version(PROD, "champion") == champion

    # The UI path: `approve --token-only` prints the token; pasted alone into the form, it is the approval.
    runner = CliRunner()
    printed = runner.invoke(
        app, ["approve", str(run_id), "--role", "pm", "--by", "pm-ben", "--ref", "REV-1", "--token-only"]
    )
    assert printed.exit_code == 0, printed.output
    token = "".join(printed.output.split())
    assert token.startswith("rg-approval-v1.")
    wait_repaused(run_id, send_approval(run_id, "pm", "", token, reference=""))
    [pm] = [
        r
        for r in log.query(kind="approval", subject=f"promotion:{run_id}")
        if r.details.get("role") == "pm" and not r.details.get("refusal")
    ]
    assert pm.details["approver"] == "pm-ben" and pm.details["signed_statement"]["run_id"] == str(run_id)
    assert pm.details["signed_statement"]["gate_report_sha256"] == tech_report

    other_run = "5b1f0c39-0000-4000-8000-000000000000"
    replayed = signed_token(run_id, "risk", "risk-carla", run_id=other_run)  # signed for another run
    wait_repaused(run_id, send_approval(run_id, "risk", "risk-carla", replayed))
    shared = signed_token(run_id, "risk", "risk-dan")  # the key that gave PM's approval
    wait_repaused(run_id, send_approval(run_id, "risk", "risk-dan", shared))
    risk_refusals = [
        r.details["refusal"]
        for r in log.query(kind="approval", subject=f"promotion:{run_id}")
        if r.details.get("refusal") and r.details.get("role") == "risk"
    ]
    assert risk_refusals[0].startswith("run_id:") and "a replay" in risk_refusals[0]
    assert risk_refusals[1].startswith("token:") and "four eyes: the key" in risk_refusals[1]
    assert registry.alias_version(PROD, "champion") == champion

    ok = runner.invoke(app, ["approve", str(run_id), "--role", "risk", "--by", "risk-carla", "--ref", "R-3"])
    assert ok.exit_code == 0, ok.output
    state = p.result()
    assert state.is_completed() and state.result()["outcome"] == "promote"
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "2 signed approvals and 0 signed exceptions/overrides re-verified" in " ".join(verified.output.split())


def test_garbage_approvals_never_fail_a_promotion_they_are_recorded_and_rate_limited(home, clock, monkeypatch):
    """Any Prefect UI user can resume a paused run with anything. Before, five refused inputs failed the
    promotion, a signed token whose signed_at had no UTC offset crashed it (TypeError), and a blank
    approver crashed it too (its refusal record was itself refused: a blank actor). Now every refusal
    is recorded, the run pauses again, and after five refusals in a row it records a rate limit and
    waits before it asks again; the release still goes through on valid approvals."""
    from releasegate.policy.handshake import Role
    from releasegate.policy.signatures import ApprovalStatement, sign
    from releasegate.services.promotion import tech_pass
    from releasegate.store.keys import key_path, load_key

    monkeypatch.setenv("RELEASEGATE_APPROVAL_COOLDOWN_SECONDS", "1")
    champion = install_champion(register(WEAKER_BY_3PCT))
    p = Promotion(register())
    run_id = wait_paused()
    naive = ApprovalStatement.model_construct(
        model=MODEL,
        candidate_version=str(run_parameters(run_id)["candidate_version"]),
        role=Role.pm,
        decision="approve",
        approver="pm-anna",
        reference="REV-1",
        gate_report_sha256=tech_pass(bootstrap.app(), str(run_id))[2],
        run_id=str(run_id),
        signed_at=datetime.now(UTC).replace(tzinfo=None),  # no UTC offset
    )
    naive_token = sign(naive, load_key(key_path(bootstrap.settings().key_dir, "pm-anna"))).token()
    garbage = [
        ("pm", "   ", "garbage"),  # a blank approver: the refusal record itself was refused
        ("pm", "pm-anna", naive_token),  # crashed the run with a TypeError
        ("pm", "pm-anna\x00", "rg-approval-v1.not-base64!"),
        ("risk", "risk-carla", ""),
        ("pm", "x" * 5000, ""),  # the fifth: the promotion failed here
        ("pm", "", "rg-approval-v1."),  # after the rate limit, still read and recorded
    ]
    for role, approver, token in garbage:
        wait_repaused(run_id, send_approval(run_id, role, approver, token))
    assert registry.alias_version(PROD, "champion") == champion

    log = bootstrap.decision_log()
    refusals = [r for r in log.query(kind="approval", subject=f"promotion:{run_id}") if r.details.get("refusal")]
    fields = [r.details["refusal"].split(":")[0] for r in refusals]
    assert fields == ["token", "signed_at", "approver", "role", "approver", "rate_limit", "token"], fields
    assert all(r.decision_outcome.value == "reject" for r in refusals)
    assert refusals[0].details["approver"] == "<missing>" and refusals[0].actor == "<missing>"
    assert "UTC offset" in refusals[1].details["refusal"]
    assert "control character" in refusals[2].details["refusal"] and "\x00" not in refusals[2].actor
    assert len(refusals[4].details["approver"]) < 400 and "5000 characters" in refusals[4].details["approver"]
    limit = refusals[5]
    assert "5 refused PM approvals in a row" in limit.details["refusal"] and "read in 1 s" in limit.details["refusal"]

    n = approve(run_id, "pm", "pm-anna")
    wait_repaused(run_id, n)
    approve(run_id, "risk", "risk-carla")
    state = p.result()
    assert state.is_completed(), state.message
    assert state.result()["outcome"] == "promote" and registry.alias_version(PROD, "champion") != champion
    assert log.verify().ok


def test_a_killed_promotion_frees_the_models_promotion_lock_promptly(home, clock, tmp_path):
    """A promotion process killed while it waits for approval held ``promotion-<model>`` on Prefect's
    default 300 s lease: the next promotion of the model waited about five minutes. The lock's lease is
    now short and renewed while its holder lives (``prefect_locks.LOCK_LEASE_SECONDS``): once the holder
    is gone the server frees the slot at the lease's end. On a real ``prefect server start``: the
    session's harness is an ephemeral server, which does not run Prefect's lease sweep (repossessor)."""
    import signal
    import subprocess
    import sys
    from contextlib import ExitStack

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from releasegate.tools.stack import base_env, free_port, start_prefect_server

    v1, v2 = register(), register(seed=12)
    prefect_home = tmp_path / "prefect-server"
    server, api = start_prefect_server(prefect_home, free_port(), env=base_env(prefect_home))
    env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(bootstrap.project_root())}

    def promotion_process(version: str) -> subprocess.Popen:
        script = (
            "from flows.promotion import promotion\n"
            f"promotion(model_name={MODEL!r}, candidate_version={version!r}, requested_by='ml-engineer',"
            " approval_timeout_minutes=10)\n"
        )
        return subprocess.Popen([sys.executable, "-c", script], cwd=bootstrap.project_root(), env=env)

    with ExitStack() as cleanup, temporary_settings(updates={PREFECT_API_URL: api}):
        cleanup.callback(server.stop)
        first = promotion_process(v1)
        cleanup.callback(first.kill)
        killed = wait_paused(timeout=240)  # holding promotion-credit, waiting for PM
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        rerun = promotion_process(v2)
        cleanup.callback(rerun.kill)
        wait_paused(known={killed}, timeout=200)  # before: the lock was free only after 300 s and more
