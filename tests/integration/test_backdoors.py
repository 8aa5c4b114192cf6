"""Regression tests for the back doors and crash windows of issue 13 (reproduced on 2f66443).

Real Prefect (the session's test harness), a real MLflow registry (SQLite in a temp dir) and a real
decision log. Crashes are injected by making one of releasegate's own registry calls raise once (the
process "dies" there); nothing of Prefect or MLflow is mocked.
"""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from prefect import get_client
from prefect.exceptions import Pause
from prefect.flow_engine import run_flow
from prefect.states import Scheduled
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.bootstrap import use_clock
from releasegate.cli import app
from releasegate.clock import FixedClock
from releasegate.decisions import REF_FIELDS, DecisionKind, DecisionOutcome, NewDecision
from releasegate.store.decision_log import DecisionLog
from tests.conftest import ROOT, approve_prod_version, cancel_unfinished_pool_runs, fast_capacity_policy
from tests.support.promotion import (
    MODEL,
    PROD,
    STAGING,
    WEAKER_BY_3PCT,
    Promotion,
    approve,
    install_champion,
    pause_count,
    promote_with_approvals,
    register,
    wait_paused,
    wait_repaused,
)

pytestmark = pytest.mark.prefect
runner = CliRunner()


@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, prefect_harness):
    fast_capacity_policy(tmp_path, monkeypatch)
    monkeypatch.setenv("RELEASEGATE_APPROVAL_POLL_SECONDS", "1")
    return rg_home


@pytest.fixture
def clock(live_clock):
    return live_clock


def forge(new: NewDecision):
    """What someone with the library and the database can do: append without the service key."""
    return DecisionLog(bootstrap.settings().resolved_database_url).append(new)


def refusals_of(decision_id: str):
    return [
        r for r in bootstrap.decision_log().query(kind="refusal") if r.details.get("refused_decision_id") == decision_id
    ]


# ------------------------------------------------------------------------------ 1. forged approvals
def test_forged_approvals_are_refused_and_the_run_still_pauses_for_both(home, clock):
    from flows.promotion import promotion

    candidate = register()
    with get_client(sync_client=True) as c:
        fr = c.create_flow_run(
            promotion,
            parameters={
                "model_name": MODEL,
                "candidate_version": candidate,
                "requested_by": "ml-engineer",
                "approval_timeout_minutes": 10,
            },
        )
    subject = f"promotion:{fr.id}"
    # Through the CLI: refused, recorded, nothing written as an approval.
    details = {
        "role": "pm",
        "approver": "mallory",
        "model_name": MODEL,
        "candidate_version": candidate,
        "decision": "approve",
        "reference": "x",
        "at": "2099-01-01T00:00:00",
    }
    out = runner.invoke(
        app,
        [
            "decisions",
            "add",
            "--kind",
            "approval",
            "--outcome",
            "accept",
            "--rationale",
            "ok",
            "--subject",
            subject,
            "--by",
            "mallory",
            "--details",
            json.dumps(details),
        ],
    )
    assert out.exit_code == 1 and "approval records are written only by" in out.output
    assert "Traceback" not in out.output
    [cli_refusal] = bootstrap.decision_log().query(kind="refusal", subject=subject)
    assert cli_refusal.details["field"] == "decision_kind" and cli_refusal.actor == "mallory"
    assert bootstrap.decision_log().query(kind="approval", subject=subject) == []
    # Around the CLI, with the library and the database: PM and Risk "approvals" (one with a naive
    # time, one far in the future) and a "pending" promotion of another version.
    forged = [
        forge(
            NewDecision(
                decision_kind=DecisionKind.approval,
                decision_outcome=DecisionOutcome.accept,
                decision_rationale="PM ok",
                subject=subject,
                actor="mallory",
                details=details | {"role": role, "at": at},
            )
        )
        for role, at in (("pm", "2099-01-01T00:00:00"), ("risk", "2099-01-01T00:00:00+00:00"))
    ]
    forged.append(
        forge(
            NewDecision(
                decision_kind=DecisionKind.promotion,
                decision_outcome=DecisionOutcome.accept,
                decision_rationale="pending",
                subject=subject,
                actor="mallory",
                details={
                    "model_name": MODEL,
                    "candidate_version": "99",
                    "status": "pending",
                    "staging_model": STAGING,
                    "prod_model": PROD,
                },
                **{f: "x" for f in REF_FIELDS},
            )
        )
    )

    result = {}

    def execute():
        with use_clock(clock), get_client(sync_client=True) as c:
            result["state"] = run_flow(promotion, flow_run=c.read_flow_run(fr.id), return_type="state")

    t = threading.Thread(target=execute, daemon=True)
    t.start()
    assert wait_paused() == fr.id  # the forged PM approval did not count: it asks PM
    n = approve(fr.id, "pm", "pm-anna")
    wait_repaused(fr.id, n)  # ... and Risk
    approve(fr.id, "risk", "risk-carla")
    t.join(180)
    state = result["state"]
    assert state.is_completed(), state
    out = state.result()
    assert out["outcome"] == "promote" and pause_count(fr.id) == 2
    final = bootstrap.decision_log().get(out["decision_id"])
    assert final.pm_gate_ref.startswith("PM_GATE_PASS:pm-anna") and final.risk_gate_ref.startswith(
        "RISK_GATE_PASS:risk-carla"
    )
    assert final.details["candidate_version"] == candidate  # not the forged pending's "99"
    for f in forged:
        [note] = refusals_of(f.decision_id)
        assert note.decision_outcome is DecisionOutcome.reject and "no valid service seal" in note.decision_rationale
    audit = runner.invoke(app, ["audit", "verify"])
    assert audit.exit_code == 0 and "ignored, refusal" in audit.output


# ------------------------------------------------------------------- 2. forged final promotion
def test_forged_final_promotion_never_makes_a_rollback_target(home):
    for seed in (1, 2):
        registry.copy_to(STAGING, register(seed=seed), PROD)
    approve_prod_version(MODEL, "1")
    registry.set_alias(PROD, "champion", "1")
    registry.set_alias(PROD, "archive", "2")  # moved by hand to a version never promoted
    details = {"status": "final", "prod_version": "2", "model_name": MODEL, "candidate_version": "2"}
    refs = {f: "x" for f in REF_FIELDS}
    out = runner.invoke(
        app,
        [
            "decisions",
            "add",
            "--kind",
            "promotion",
            "--outcome",
            "accept",
            "--rationale",
            "ok",
            "--subject",
            f"model:{MODEL}",
            "--by",
            "mallory",
            "--details",
            json.dumps(details),
            *[f"--{f.replace('_', '-')}=x" for f in REF_FIELDS],
        ],
    )
    assert out.exit_code == 1 and "promotion records are written only by" in out.output
    pending = forge(
        NewDecision(
            decision_kind=DecisionKind.promotion,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="p",
            subject=f"model:{MODEL}",
            actor="mallory",
            details=details | {"status": "pending"},
            **refs,
        )
    )
    final = forge(
        NewDecision(
            decision_kind=DecisionKind.promotion,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="f",
            subject=f"model:{MODEL}",
            actor="mallory",
            details=details | {"pending_decision_id": pending.decision_id},
            **refs,
        )
    )
    from flows.rollback import rollback

    state = rollback(
        model_name=MODEL,
        reason="drift",
        requested_by="ops-olga",
        ticket_ref="INC-1",
        approved_at=datetime.now(UTC),
        return_state=True,
    )
    assert state.is_failed() and "has no final promotion decision" in state.message
    assert registry.aliases(PROD) == {"champion": "1", "archive": "2"}  # nothing moved
    assert refusals_of(pending.decision_id) and refusals_of(final.decision_id)


# ------------------------------------------------------------------------------ 3. exceptions
def _grant(*extra):
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    args = ["exception", "grant", MODEL, "2", "--ticket", "EXC-1", "--rationale", "refresh", "--expires", expires]
    return runner.invoke(app, args + list(extra))


def test_exceptions_need_the_allow_list_four_eyes_their_gate_and_an_offset(home):
    from releasegate.store.keys import create_key

    mallorys_key, _ = create_key(bootstrap.settings().key_dir, "mallory")
    cases = [  # a rule broken: exit 1; bad input (a time without its offset): exit 2; both recorded
        (["--by", "mallory", "--requested-by", "olga"], "not on the exceptions allow-list", 1),
        (
            ["--by", "head-mrm-eva", "--requested-by", "olga", "--key", str(mallorys_key)],
            "not 'head-mrm-eva''s pinned key",
            1,
        ),
        (["--by", "head-mrm-eva", "--requested-by", "head-mrm-eva"], "four eyes", 1),
        (["--by", "head-mrm-eva", "--requested-by", "olga", "--gate", "drift"], "cannot be waived", 1),
        (["--by", "head-mrm-eva", "--requested-by", "olga", "--expires", "2027-11-30T18:00:00"], "no UTC offset", 2),
    ]
    for args, rule, code in cases:
        out = _grant(*args)
        said = " ".join(out.output.split())  # rich wraps long lines at the runner's width
        assert out.exit_code == code and rule in said and "Traceback" not in out.output, out.output
    refused = bootstrap.decision_log().query(kind="override")
    assert len(refused) == len(cases) and all(r.decision_outcome is DecisionOutcome.reject for r in refused)
    forged = runner.invoke(
        app,
        [
            "decisions",
            "add",
            "--kind",
            "override",
            "--outcome",
            "override",
            "--rationale",
            "x",
            "--subject",
            f"model:{MODEL}:v2",
            "--by",
            "mallory",
            "--exception-expiry",
            "2030-01-01T00:00:00+0000",
            "--details",
            '{"ticket_ref": "T", "gate": "kpi_delta"}',
        ],
    )
    assert forged.exit_code == 1 and "override records are written only by" in forged.output
    assert _grant("--by", "head-mrm-eva", "--requested-by", "olga").exit_code == 0


def test_an_exception_never_promotes_a_worse_candidate(home, clock):
    install_champion(register())
    worse = register(WEAKER_BY_3PCT)
    expires = (clock.now() + timedelta(days=2)).isoformat()
    ok = runner.invoke(
        app,
        [
            "exception",
            "grant",
            MODEL,
            worse,
            "--ticket",
            "EXC-2",
            "--rationale",
            "r",
            "--by",
            "head-mrm-eva",
            "--requested-by",
            "olga",
            "--expires",
            expires,
        ],
    )
    assert ok.exit_code == 0, ok.output
    out = Promotion(worse).result().result()
    assert out["outcome"] == "reject"
    assert registry.aliases(PROD) == {"champion": "1"}


# ----------------------------------------------------------------- 4. and 7. deferred backfills
@pytest.fixture
def backfill_deployed(prefect_harness, rg_home, tmp_path, monkeypatch):
    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up

    infra_up(capacity_from_file(ROOT / "blocks" / "capacity_policy.yaml"))
    cancel_unfinished_pool_runs()
    ids = {
        n: f.to_deployment(name=n, work_pool_name="releasegate", work_queue_name=q).apply()
        for f, n, q in ((eod_scoring, "eod-scoring", "critical"), (backfill, "backfill", "bulk"))
    }
    yield ids
    cancel_unfinished_pool_runs()


def _freeze(tmp_path, monkeypatch, start, end):
    policy = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
        "backoff_seconds": [1, 2],
        "windows": [
            {
                "name": "year-end",
                "kind": "change_freeze",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "deployments": ["backfill"],
            }
        ],
    }
    path = tmp_path / "freeze.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", str(path))


def _execute(run_id):
    from flows.backfill import backfill

    with get_client(sync_client=True) as c:
        c.set_flow_run_state(run_id, Scheduled(scheduled_time=datetime.now(UTC)), force=True)  # "time has come"
        return run_flow(backfill, flow_run=c.read_flow_run(run_id), return_type="state")


def _new_backfill(ids):
    with get_client(sync_client=True) as c:
        return c.create_flow_run_from_deployment(
            ids["backfill"], parameters={"start_date": "2026-11-20", "end_date": "2026-11-20"}
        ).id


def test_a_run_deferred_by_a_long_freeze_is_not_skipped_as_late_when_it_ends(backfill_deployed, tmp_path, monkeypatch):
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))  # real now: Prefect schedules in real time
    with use_clock(clock):
        _freeze(tmp_path, monkeypatch, clock.now() - timedelta(hours=1), clock.now() + timedelta(days=12))
        run_id = _new_backfill(backfill_deployed)
        with pytest.raises(Pause):
            _execute(run_id)
        assert bootstrap.scheduling_store().get_deferral(str(run_id)).reason_code == "CHANGE_FREEZE"
        clock.advance(days=12, seconds=1)  # the freeze is over; Prefect's expected start is 12 days ago
        state = _execute(run_id)
        assert state.is_completed(), state
    assert bootstrap.decision_log().query(kind="late_run") == []


def test_an_override_holds_until_its_expiry_and_admits_once(backfill_deployed, tmp_path, monkeypatch):
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))  # real now: Prefect schedules in real time
    with use_clock(clock):
        _freeze(tmp_path, monkeypatch, clock.now() - timedelta(hours=1), clock.now() + timedelta(days=3))
        run_id = _new_backfill(backfill_deployed)
        with pytest.raises(Pause):
            _execute(run_id)
        grant = [
            "deferrals",
            "override",
            str(run_id),
            "--ticket",
            "CHG-1",
            "--by",
            "ops-bob",
            "--reason",
            "r",
            "--expires-in-minutes",
            "240",
        ]
        assert runner.invoke(app, grant).exit_code == 0
        clock.advance(hours=5)  # the override expired an hour ago; the freeze still holds
        with pytest.raises(Pause):
            _execute(run_id)
        with get_client(sync_client=True) as c:
            assert c.read_flow_run(run_id).state.message == "CHANGE_FREEZE"
        [expired] = [r for r in bootstrap.decision_log().query(kind="override") if r.details.get("refusal")]
        assert "expired" in expired.decision_rationale

        assert runner.invoke(app, grant).exit_code == 0  # a fresh override admits the run once
        assert _execute(run_id).is_completed()
        with pytest.raises(Pause):  # started again (e.g. a retry): the gateway decides, the freeze holds
            _execute(run_id)
        used = [r for r in bootstrap.decision_log().query(kind="override") if r.details.get("used")]
        assert len(used) == 1


# ------------------------------------------------------------------- 5. crash-safe rollback
def _crash_once(monkeypatch, module, name, when=lambda *a, **k: True, error=None):
    real = getattr(module, name)
    calls = {"n": 0}

    def crashing(*args, **kwargs):
        if calls["n"] == 0 and when(*args, **kwargs):
            calls["n"] += 1
            raise error or SystemExit(f"killed in {name}")  # the process dies here
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, crashing)


def test_a_rollback_killed_during_verification_is_finished_by_the_rerun(home, monkeypatch):
    from releasegate.services.rollback import execute_rollback

    for seed in (1, 2):
        registry.copy_to(STAGING, register(seed=seed), PROD)
    approve_prod_version(MODEL, "1")
    approve_prod_version(MODEL, "2")
    registry.set_alias(PROD, "champion", "2")
    registry.set_alias(PROD, "archive", "1")
    _crash_once(monkeypatch, registry.default(), "smoke_test")
    with pytest.raises(SystemExit):
        execute_rollback(MODEL, trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga", ports=bootstrap.ports())
    [pending] = bootstrap.decision_log().query(kind="rollback")
    assert pending.details["status"] == "pending" and registry.aliases(PROD) == {"champion": "1"}
    rec = execute_rollback(
        MODEL, trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga", ports=bootstrap.ports()
    )
    assert rec.verified and (rec.previous_version, rec.new_version) == ("2", "1")
    final = bootstrap.decision_log().query(kind="rollback")[-1]
    assert final.details["status"] == "final" and final.details["pending_decision_id"] == pending.decision_id
    assert final.details["converged"] is True and final.decision_outcome is DecisionOutcome.accept


# ------------------------------------------------------------- 6. crash-safe binary promotion
@pytest.mark.parametrize("crash_in", ["decision_tag", "champion_move", "registry_error"])
def test_a_promotion_killed_mid_registry_is_finished_once(home, clock, monkeypatch, crash_in):
    from mlflow.exceptions import MlflowException

    v1 = register()
    if crash_in == "decision_tag":  # between copy_model_version and the decision_id tag
        _crash_once(monkeypatch, registry.default(), "set_tags", lambda name, v, tags: set(tags) == {"decision_id"})
    elif crash_in == "champion_move":  # after the champion moved, before the final record
        _crash_once(monkeypatch, registry.default(), "set_alias", lambda name, alias, v: alias == "champion")
    else:  # MLflow fails once while the binary step looks for an earlier copy: never read as "no copy"
        _crash_once(monkeypatch, registry.default(), "_search_versions", error=MlflowException("database is locked"))
    run_id, state = promote_with_approvals(v1)
    if crash_in == "registry_error":
        assert state.is_failed() and "database is locked" in state.message
        assert registry.aliases(PROD) == {}  # nothing copied, nothing moved
    else:
        assert state is None  # the run's process died (SystemExit) mid-way
    log = bootstrap.decision_log()
    assert [r.details["status"] for r in log.query(kind="promotion", subject=f"promotion:{run_id}")] == ["pending"]

    # The next promotion of the model finishes the interrupted one first, under the same lock.
    out = Promotion(v1).result().result()
    assert out["outcome"] == "hold"  # the same binary cannot beat itself by +2 %
    [copy] = registry.client().search_model_versions(f"name='{PROD}'")  # copied exactly once
    assert registry.aliases(PROD) == {"champion": str(copy.version)}
    records = log.query(kind="promotion", subject=f"promotion:{run_id}")
    assert [r.details["status"] for r in records] == ["pending", "final"]
    assert records[1].details["converged"] is True and records[1].details["prod_version"] == str(copy.version)


# ----------------------------------------------------------------- 9. rollback under the rules
def test_rollback_is_governed_takes_the_alias_lock_and_a_manual_one_needs_a_ticket(home):
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.concurrency.sync import concurrency

    from flows.rollback import rollback
    from releasegate.adapters.prefect_locks import ensure_alias_lock

    assert (rollback.retries, rollback.timeout_seconds) == (1, 600)  # the policy of prefect.yaml applies
    for seed in (1, 2):
        registry.copy_to(STAGING, register(seed=seed), PROD)
    approve_prod_version(MODEL, "1")
    approve_prod_version(MODEL, "2")
    registry.set_alias(PROD, "champion", "2")
    registry.set_alias(PROD, "archive", "1")

    state = rollback(model_name=MODEL, reason="looks off", requested_by="ops-olga", trigger="drift", return_state=True)
    assert state.is_failed() and "ticket_ref and approved_at" in state.message
    manual = bootstrap.decision_log().query(kind="manual_run")
    assert manual and all(r.decision_outcome is DecisionOutcome.reject for r in manual)
    assert registry.aliases(PROD) == {"champion": "2", "archive": "1"}  # nothing moved

    lock = ensure_alias_lock(MODEL)
    with get_client(sync_client=True) as c:  # deactivated in the UI: releasegate re-activates it
        c.update_global_concurrency_limit(lock, GlobalConcurrencyLimitUpdate(active=False))
    assert ensure_alias_lock(MODEL) == lock
    with get_client(sync_client=True) as c:
        assert c.read_global_concurrency_limit_by_name(lock).active
    done = {}
    with concurrency(lock, occupy=1, strict=True):  # a promotion is moving aliases
        t = threading.Thread(
            target=lambda: done.update(
                out=rollback(
                    model_name=MODEL,
                    reason="drift",
                    requested_by="ops-olga",
                    ticket_ref="INC-2",
                    approved_at=datetime.now(UTC),
                )
            ),
            daemon=True,
        )
        t.start()
        t.join(8)
        assert t.is_alive() and registry.aliases(PROD)["champion"] == "2"  # waits for the lock
    t.join(120)
    assert done["out"]["new_version"] == "1" and registry.aliases(PROD) == {"champion": "1"}


# ----------------------------------------------------------------------- found in review
def _tech_pass(run: str, report_sha: str, report: dict | None = None) -> None:
    """The run's sealed TECH_GATE_PASS: the report (and its hash) signed approvals of the run sign over."""
    bootstrap.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.approval,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="TECH_GATE_PASS: gate report promote",
            subject=f"promotion:{run}",
            actor="releasegate:gates",
            tech_gate_report_ref="artifact:r",
            details={
                "role": "tech",
                "approver": "releasegate:gates",
                "model_name": MODEL,
                "candidate_version": "3",
                "candidate_sha256": "a" * 64,
                "gate_report_sha256": report_sha,
                **({"gate_report": report} if report is not None else {}),
            },
        )
    )


def _handshake(report_sha: str, **keys):
    from releasegate.policy.handshake import Handshake, Role

    return Handshake(
        model=MODEL,
        candidate_version="3",
        requested_by="ml-engineer",
        tech_report_ref="artifact:r",
        tech_pass=True,
        candidate_sha256="a" * 64,
        gate_report_sha256=report_sha,
        allow_lists={Role.pm: ["pm-anna"], Role.risk: ["risk-carla"]},
        **keys,
    )


def _approve_signed(run: str, base):
    """PM and Risk approve ``base``'s report, signed with their keys, recorded as the flow records them."""
    from releasegate.policy.handshake import Approval, ApprovalFields, Role
    from releasegate.policy.signatures import sign, statement_for
    from releasegate.services.promotion import record_approval
    from releasegate.store.keys import key_path, load_key

    now, h = datetime.now(UTC), base
    for role, who in ((Role.pm, "pm-anna"), (Role.risk, "risk-carla")):
        raw = {"approver": who, "reference": "R", "decision": "approve", "statement": "", "comment": ""}
        signed = sign(
            statement_for(h, role, ApprovalFields(**raw), run, now),
            load_key(key_path(bootstrap.settings().key_dir, who)),
        )
        a = Approval(**raw, role=role, at=now, key_id=signed.key_id)
        h = h.model_copy(update={role.value: a})
        record_approval(run, h, role, a, None, raw, signed, app=bootstrap.app())


def test_approvals_count_only_for_the_model_version_and_binary_they_were_given_for(home):
    from releasegate.services.promotion import approver_config, restore_handshake

    _tech_pass("run-1", "c" * 64)
    base = _handshake("c" * 64, keys=approver_config(bootstrap.app()).keys)
    _approve_signed("run-1", base)
    assert restore_handshake("run-1", base, app=bootstrap.app()).risk is not None  # the same run, version and binary
    # The run's parameters edited through the Prefect API to another version, or the staging binary swapped:
    assert (
        restore_handshake("run-1", base.model_copy(update={"candidate_version": "5"}), app=bootstrap.app()).pm is None
    )
    assert (
        restore_handshake("run-1", base.model_copy(update={"candidate_sha256": "b" * 64}), app=bootstrap.app()).pm
        is None
    )
    # A pinned key replaced since (the approver's key was revoked): the stored approval no longer counts.
    assert (
        restore_handshake(
            "run-1", base.model_copy(update={"keys": {**base.keys, "pm-anna": "00" * 32}}), app=bootstrap.app()
        ).pm
        is None
    )


def test_an_unsigned_approval_record_never_counts(home):
    """An approval record written through the service path without a signature (as every approval was
    before signed approvals) is not restored into a promotion's handshake."""
    from releasegate.policy.handshake import Approval, Role
    from releasegate.services.promotion import record_approval, restore_handshake

    base = _handshake("c" * 64)
    raw = {"approver": "pm-anna", "reference": "R", "decision": "approve", "statement": "", "comment": ""}
    a = Approval(**raw, role=Role.pm, at=datetime.now(UTC))
    record_approval("run-2", base.model_copy(update={"pm": a}), Role.pm, a, None, raw, app=bootstrap.app())
    assert restore_handshake("run-2", base, app=bootstrap.app()).pm is None


def test_a_rollback_event_sent_by_hand_is_a_manual_run(home, tmp_path):
    from flows.rollback import rollback
    from tests.conftest import apply_deployments

    ids = apply_deployments({"rollback": (rollback, "critical")})
    for seed in (1, 2):
        registry.copy_to(STAGING, register(seed=seed), PROD)
    approve_prod_version(MODEL, "1")
    approve_prod_version(MODEL, "2", previous_champion="1")
    registry.set_alias(PROD, "champion", "2")
    registry.set_alias(PROD, "archive", "1")
    event = {
        "event_id": "fake:rollback",
        "event_type": "monitoring.rollback.requested@v1",
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "mallory",
        "idempotency_key": f"monitoring:{MODEL}:2026-11-23:rollback:full",
        "payload": {
            "model_name": MODEL,
            "business_date": "2026-11-23",
            "method": "full",
            "version": "2",
            "reason_code": "DRIFT_URGENT",
            "reason": "trust me",
        },
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    sent = runner.invoke(app, ["events", "send", str(path), "--json"])
    assert sent.exit_code == 0, sent.output
    run_id = json.loads(sent.stdout)["flow_run_id"]
    assert ids["rollback"]
    with get_client(sync_client=True) as c:
        state = run_flow(rollback, flow_run=c.read_flow_run(run_id), return_type="state")
    assert state.is_failed() and "ticket_ref and approved_at" in state.message  # no monitoring verdict behind it
    assert registry.aliases(PROD) == {"champion": "2", "archive": "1"}


def test_an_archive_moved_by_hand_to_an_older_approved_version_is_not_a_target(home):
    from releasegate.policy.rollback import RollbackRefused
    from releasegate.services.rollback import execute_rollback

    for seed in (1, 2, 3):
        registry.copy_to(STAGING, register(seed=seed), PROD)
    approve_prod_version(MODEL, "1")
    approve_prod_version(MODEL, "2", previous_champion="1")
    approve_prod_version(MODEL, "3", previous_champion="2")
    registry.set_alias(PROD, "champion", "3")
    registry.set_alias(PROD, "archive", "1")  # by hand: v3 replaced v2, not v1
    with pytest.raises(RollbackRefused, match="archive"):
        execute_rollback(MODEL, trigger="drift", root_cause="r", requested_by="ops-olga", ports=bootstrap.ports())
    assert registry.aliases(PROD) == {"champion": "3", "archive": "1"}
    registry.set_alias(PROD, "archive", "2")
    assert (
        execute_rollback(
            MODEL, trigger="drift", root_cause="r", requested_by="ops-olga", ports=bootstrap.ports()
        ).new_version
        == "2"
    )


def test_an_interrupted_rollback_that_no_longer_fits_is_abandoned_not_finished(home, monkeypatch):
    from releasegate.services.rollback import execute_rollback

    for seed in (1, 2, 3):
        registry.copy_to(STAGING, register(seed=seed), PROD)
    approve_prod_version(MODEL, "1")
    approve_prod_version(MODEL, "2")
    registry.set_alias(PROD, "champion", "2")
    registry.set_alias(PROD, "archive", "1")
    registry.set_alias(PROD, "challenger", "3")
    _crash_once(monkeypatch, registry.default(), "set_alias", lambda name, alias, v: alias == "champion")
    with pytest.raises(SystemExit):  # a full rollback killed before the champion moved
        execute_rollback(MODEL, trigger="drift", root_cause="r", requested_by="alice", ports=bootstrap.ports())
    # Later, a canary rollback of the challenger is asked for: it must not finish alice's full rollback.
    rec = execute_rollback(
        MODEL,
        method="canary",
        trigger="kpi",
        root_cause="canary drop",
        requested_by="bob",
        expected_version="3",
        ports=bootstrap.ports(),
    )
    assert rec.method == "canary" and rec.requested_by == "bob"
    assert registry.aliases(PROD) == {"champion": "2", "archive": "1"}  # champion untouched, challenger dropped
    statuses = [r.details["status"] for r in bootstrap.decision_log().query(kind="rollback")]
    assert statuses == ["pending", "abandoned", "pending", "final"]


def test_a_later_rollback_makes_an_interrupted_promotion_abandoned(home, clock, monkeypatch):
    from releasegate.services.rollback import execute_rollback

    champion = install_champion(register(WEAKER_BY_3PCT))
    approve_prod_version(MODEL, champion)
    real, calls = registry.default().set_alias, []

    def move_then_die(name, alias, version):  # the champion moves, then the process dies
        real(name, alias, version)
        if alias == "champion" and not calls:
            calls.append(version)
            raise SystemExit("killed after the champion moved")

    monkeypatch.setattr(registry.default(), "set_alias", move_then_die)  # the instance the app uses
    v2 = register()
    run_id, state = promote_with_approvals(v2)
    assert state is None and registry.aliases(PROD) == {"champion": calls[0], "archive": champion}
    # Monitoring rolls the unrecorded champion back to the approved one.
    execute_rollback(
        MODEL, trigger="drift", root_cause="PSI 0.4", requested_by="releasegate:monitoring", ports=bootstrap.ports()
    )
    assert registry.aliases(PROD) == {"champion": champion}
    # The next promotion must not finish the interrupted one (that would put the rolled-back copy back).
    run2, state2 = promote_with_approvals(v2)
    assert state2.is_completed() and state2.result()["outcome"] == "promote"
    first = [
        r.details["status"] for r in bootstrap.decision_log().query(kind="promotion", subject=f"promotion:{run_id}")
    ]
    assert first == ["pending", "abandoned"]
    assert registry.aliases(PROD) == {"champion": state2.result()["prod_version"], "archive": champion}


def test_a_service_key_that_did_not_write_the_log_is_refused(home, monkeypatch):
    from releasegate.store.trust import ServiceKeyError, load_or_create_key

    note = NewDecision(
        decision_kind=DecisionKind.deferral,
        decision_outcome="reject",
        decision_rationale="r",
        subject="s",
        actor="a",
        details={"deferral_reason_code": "X", "next_evaluation_at": "t"},
    )
    bootstrap.decision_log().append(note)
    monkeypatch.setenv("RELEASEGATE_SERVICE_KEY", "ab" * 32)  # another home's key, say
    with pytest.raises(ServiceKeyError, match="does not match the decision log"):
        bootstrap.decision_log().append(note)
    empty = home / "empty.key"
    empty.write_text("")
    with pytest.raises(ServiceKeyError, match="32 bytes"):
        load_or_create_key(empty)
