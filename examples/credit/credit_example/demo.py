"""The credit example's part of ``make demo`` (entry point ``releasegate.demos: credit``).

Train v1 (without two data sources) and promote it, EOD scoring, a backfill deferred by EOD's reservations,
a registry event calling the team's retrain job (``retrain-job``) as a child run, the v2 candidate
gated, injected market drift and the rollback it triggers.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from releasegate.tools.lifecycle import DemoFailed, Lifecycle

MODEL = "credit"
V1_WITHOUT = ("exposure_musd", "collateral_ratio")  # the baseline lacks two data sources: v2 beats it by ~7 %


def run(lc: Lifecycle) -> None:
    from prefect import get_client
    from prefect.client.schemas.objects import State
    from prefect.exceptions import Pause
    from prefect.flow_engine import run_flow

    from credit_example.retrain_job import retrain_job
    from credit_example.training import log_and_register, train
    from releasegate import bootstrap
    from releasegate.adapters.registry_watch import watch_once
    from releasegate.testing.approval_driver import DemoApprover
    from releasegate.testing.inprocess_worker import InProcessWorker

    f, today, step = lc.flows, lc.today, lc.step
    mine: dict[str, Any] = {}

    @step("deploy", "the team's retrain job (retrain-job)")
    def _(r):
        lc.deploy("retrain-job", retrain_job, "bulk")
        r.outcome = "retrain-job deployed"

    @step("train v1", "baseline without two data sources, registered in staging.credit")
    def _(r):
        res = train(seed=101, rows=4000, without=V1_WITHOUT)
        v = log_and_register(res, MODEL, "staging", data_timestamp=today.isoformat())
        r.outcome = f"staging v{v}, roc_auc {res.metrics['roc_auc']:.3f}"
        mine["v1"] = v

    @step("promote v1", "gates, PM + risk approval by the demo approvers, binary copy to prod")
    def _(r):
        with DemoApprover(MODEL, mine["v1"]):
            state = f["promotion"](
                model_name=MODEL, candidate_version=mine["v1"], requested_by="demo-ml-engineer", return_state=True
            )
        out = state.result()
        r.outcome, r.decision_id = out["outcome"], out.get("decision_id", "")
        r.reason_code = "ALL_GATES_PASS" if out["outcome"] == "promote" else "GATES_FAILED"
        r.detail = f"prod v{out.get('prod_version')} is champion"
        if out["outcome"] != "promote":
            raise DemoFailed(f"v1 not promoted: {out}")

    @step("EOD scoring", "the business date scored by the champion, monitoring verdict")
    def _(r):
        out = f["eod-scoring"](business_date=today, model_name=MODEL)
        r.outcome, r.reason_code, r.decision_id = out["action"], out["reason_code"], out["decision_id"]
        lat = out["latency_ms"]
        r.detail = f"{out['rows']} rows, {out['failures']} failures, p95 {lat['p95']:.1f} ms, PSI {out['max_psi']:.3f}"

    @step(
        "backfill before EOD",
        "deferred: it would take a slot reserved for EOD runs due; woken by the sweeper once they ran",
    )
    def _(r):
        _backfill_before_eod(lc, r, get_client, run_flow, Pause, State)

    worker = InProcessWorker({"retrain-job": retrain_job, "promotion": f["promotion"], "rollback": f["rollback"]})
    approver = DemoApprover(MODEL)  # one approver for every later promotion run of the model
    with worker, approver:

        @step("registry event -> retrain", "new dev version -> watcher -> retrain gateway -> retrain-job child run")
        def _(r):
            log_and_register(train(seed=202, rows=3000), MODEL, "dev")
            results = watch_once(bootstrap.app())
            created = [x for x in results if x.status == "created" and x.deployment == "retrain"]
            if not created:
                raise DemoFailed(f"no retrain run from the registry event: {[x.as_dict() for x in results]}")
            run_id = created[0].flow_run_id
            assert run_id is not None  # a "created" intake result names the run it created
            with get_client(sync_client=True) as c:
                state = run_flow(f["retrain"], flow_run=c.read_flow_run(UUID(run_id)), return_type="state")
                assert isinstance(state, State)
                out = state.result()
                r.outcome, r.reason_code, r.decision_id = out["outcome"], out["reason_code"], out["decision_id"]
                mine["v2"] = (out.get("job") or {}).get("version")
                r.detail = f"retrain-job registered staging v{mine['v2']}"

        @step("v2 candidate gated", "promotion started by the staging-validated event, demo approvals")
        def _(r):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                rec = lc.newest("promotion", candidate_version=mine["v2"], status="final") or next(
                    (
                        x
                        for x in lc.log.query(kind="promotion", newest_first=True)
                        if x.details.get("model_name") == MODEL
                        and x.details.get("candidate_version") == mine["v2"]
                        and x.decision_outcome.value == "reject"
                    ),
                    None,
                )
                if rec is not None:
                    break
                time.sleep(0.5)
            else:
                raise DemoFailed("the v2 promotion did not finish in 120 s")
            final = rec.details.get("status") == "final"
            r.outcome = "promote" if final else "hold/reject"
            r.reason_code = "ALL_GATES_PASS" if final else (rec.details.get("reason_code") or "GATES_FAILED")
            r.decision_id = rec.decision_id
            r.detail = rec.decision_rationale[:120]

        @step("injected drift", "EOD with RELEASEGATE_MARKET_DRIFT=0.35 -> PSI > 0.3 -> rollback + retrain")
        def _(r):
            os.environ["RELEASEGATE_MARKET_DRIFT"] = "0.35"
            try:
                out = f["eod-scoring"](business_date=today, model_name=MODEL)
            finally:
                os.environ.pop("RELEASEGATE_MARKET_DRIFT", None)
            r.outcome, r.reason_code, r.decision_id = out["action"], out["reason_code"], out["decision_id"]
            r.detail = (
                f"PSI {out['max_psi']:.3f}; rollback run {out.get('rollback', {}).get('status')}, "
                f"retrain run {out.get('retrain', {}).get('status')}"
            )
            mine["rollback_run"] = (out.get("rollback") or {}).get("flow_run_id")

        @step("rollback", "champion back to the last approved version, verified on the day's data, documented")
        def _(r):
            run_id = mine.get("rollback_run")
            if not run_id:
                raise DemoFailed("no rollback run was requested")
            fr = lc.wait_final(run_id)
            rec = lc.newest("rollback", model_name=MODEL, status="final")
            if rec is None:
                raise DemoFailed(f"rollback run {run_id} ended {fr.state_type} without a record")
            r.decision_id = rec.decision_id
            r.outcome = "rolled back" if rec.decision_outcome.value == "accept" else "refused"
            r.reason_code = str(rec.details.get("trigger"))
            r.detail = (
                f"v{rec.details.get('previous_version')} -> v{rec.details.get('new_version')}, "
                f"verified={rec.details.get('verified')}, {rec.details.get('duration_seconds')} s "
                f"(registry {rec.details.get('registry_seconds')} s)"
            )


def _backfill_before_eod(lc: Lifecycle, r, get_client, run_flow, Pause, State) -> None:  # noqa: N803
    """The shipped rule (admission: reservation), with each queue allowed the whole pool (the demo's
    policy): as many EOD runs as the pool has slots are due in a few seconds, each holding a reservation;
    a backfill (no history yet: planned at its runtime policy's timeout) would still run then and take a
    reserved slot, so it is deferred to the end of EOD's reservation. The EOD runs start on time and
    finish long before that; the deferral sweeper then finds the slot free and wakes the backfill, which
    runs."""
    from prefect.states import Scheduled

    from releasegate import bootstrap
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_deferrals import sweep

    today, config = lc.today, load_gateway_config()
    due = datetime.now(UTC) + timedelta(seconds=15)
    with get_client(sync_client=True) as c:
        eods = [
            c.create_flow_run_from_deployment(
                lc.ids["eod-scoring"],
                parameters={"business_date": (today - timedelta(days=i)).isoformat(), "model_name": MODEL},
                state=Scheduled(scheduled_time=due),
            )
            for i in range(1, config.pool_concurrency_limit + 1)
        ]
        bf = c.create_flow_run_from_deployment(
            lc.ids["backfill"],
            parameters={"start_date": today.isoformat(), "end_date": today.isoformat(), "model_name": MODEL},
        )
        try:
            run_flow(lc.flows["backfill"], flow_run=c.read_flow_run(bf.id), return_type="state")
        except Pause:  # deferred: the run put itself back to Scheduled("Deferred")
            pass
        rec = lc.newest("deferral", deployment="backfill")
        if rec is None:
            raise DemoFailed("the backfill was admitted: it fits before the EOD runs' reservations")
        r.reason_code, r.decision_id = rec.details["deferral_reason_code"], rec.decision_id
        for eod in eods:  # the engine waits for each run's scheduled time, as a worker would
            state = run_flow(lc.flows["eod-scoring"], flow_run=c.read_flow_run(eod.id), return_type="state")
            if not state.is_completed():
                raise DemoFailed(f"EOD run {eod.id} ended {state.type.value}: {state.message}")
        woken = sweep(bootstrap.app(), config).woken
        if str(bf.id) not in woken:
            raise DemoFailed(f"the sweeper did not wake the backfill (woken: {woken})")
        state = run_flow(lc.flows["backfill"], flow_run=c.read_flow_run(bf.id), return_type="state")
        assert isinstance(state, State)  # a sync flow run with return_type="state": its final state
        r.outcome = "deferred, woken, then ran" if state.is_completed() else f"deferred, then {state.type.value}"
        planned = datetime.fromisoformat(rec.details["next_evaluation_at"])
        r.detail = (
            f"woken {max(0, round((planned - datetime.now(UTC)).total_seconds() / 60))} min before its planned "
            f"evaluation; {rec.decision_rationale[:100]}"
        )
