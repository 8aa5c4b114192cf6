"""``make demo``: the whole lifecycle on embedded defaults, in one process, unattended.

Ephemeral Prefect server (state under ``$RELEASEGATE_HOME/prefect``), SQLite MLflow registry and
SQLite decision log under ``$RELEASEGATE_HOME``. Approvals are given by the demo approver identities
(``demo-pm-approver``, ``demo-risk-approver``: see ``approval_driver``), runs are executed by an
in-process worker (``inprocess_worker``). Every step reports its outcome, reason code, decision id and
seconds; the decision log holds everything afterwards.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

MODEL = "credit"
V1_WITHOUT = ("exposure_musd", "collateral_ratio")  # the baseline lacks two data sources: v2 beats it by ~7 %


@dataclass
class StepResult:
    step: str
    what: str = ""
    outcome: str = ""
    reason_code: str = ""
    decision_id: str = ""
    seconds: float = 0.0
    detail: str = ""
    ok: bool = True


class DemoFailed(RuntimeError):
    pass


def prepare_environment(home: Path) -> None:
    """Embedded defaults only: never a configured server, nothing from the network."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ["RELEASEGATE_HOME"] = str(home)
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("RELEASEGATE_DATABASE_URL", None)
    os.environ.pop("RELEASEGATE_MLFLOW_TRACKING_URI", None)
    os.environ["PREFECT_HOME"] = str(home / "prefect")
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ["RELEASEGATE_APPROVAL_POLL_SECONDS"] = "1"
    os.environ.pop("RELEASEGATE_MARKET_DRIFT", None)
    # The shipped capacity policy with short backoffs and no windows, so the deferred backfill is
    # seen going again within seconds and a Sunday-night maintenance window cannot stall the demo.
    import yaml

    from releasegate.bootstrap import project_root
    from releasegate.yamlio import load_yaml

    policy = load_yaml(project_root() / "blocks" / "capacity_policy.yaml")
    policy |= {"windows": [], "backoff_seconds": [3, 5]}
    path = home / "capacity_policy.demo.yaml"
    path.write_text(yaml.safe_dump(policy))
    os.environ["RELEASEGATE_CAPACITY_POLICY"] = str(path)
    from releasegate.tools.approval_driver import demo_approvers_file

    os.environ["RELEASEGATE_APPROVERS"] = str(demo_approvers_file(home))  # demo identities: this home only


def run_lifecycle(progress: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    from prefect import get_client
    from prefect.client.schemas.objects import State, StateType
    from prefect.exceptions import Pause
    from prefect.flow_engine import run_flow

    from releasegate.adapters.prefect_flows import load_deployment_flow
    from releasegate.tools.training import train

    # The project's flows, by the entrypoints in its prefect.yaml (as a worker loads them).
    backfill, eod_scoring, promotion, retrain, retrain_job, rollback = (
        load_deployment_flow(n) for n in ("backfill", "eod-scoring", "promotion", "retrain", "retrain-job", "rollback")
    )

    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_infra import infra_up
    from releasegate.adapters.registry_watch import watch_once
    from releasegate.tools.approval_driver import DemoApprover
    from releasegate.tools.inprocess_worker import InProcessWorker

    steps: list[StepResult] = []
    log = bootstrap.decision_log()
    today = bootstrap.clock().now().date()

    def step(title: str, what: str = ""):
        def wrap(fn):
            r = StepResult(title, what)
            t0 = time.perf_counter()
            try:
                fn(r)
            except Exception as exc:
                r.ok, r.outcome, r.detail = False, "error", f"{type(exc).__name__}: {exc}"[:300]
            r.seconds = round(time.perf_counter() - t0, 1)
            steps.append(r)
            if progress:
                progress(r)
            if not r.ok:
                raise DemoFailed(f"{title}: {r.detail}")
            return r

        return wrap

    def newest(kind: str, **match: Any):
        for rec in log.query(kind=kind, newest_first=True):
            if all(rec.details.get(k) == v for k, v in match.items()):
                return rec
        return None

    deployments = {
        "eod-scoring": (eod_scoring, "critical"),
        "backfill": (backfill, "bulk"),
        "promotion": (promotion, "critical"),
        "retrain": (retrain, "bulk"),
        "retrain-job": (retrain_job, "bulk"),
        "rollback": (rollback, "critical"),
    }
    ids: dict[str, Any] = {}

    try:

        @step("platform up", "ephemeral Prefect server, pool, queues, blocks, deployments")
        def _(r):
            changes = infra_up(load_gateway_config(use_block=False))
            for name, (f, q) in deployments.items():
                ids[name] = f.to_deployment(name=name, work_pool_name="releasegate", work_queue_name=q).apply()
            r.outcome = f"{len(ids)} deployments, {len(changes)} infra changes"

        @step("train v1", "baseline without two data sources, registered in staging.credit")
        def _(r):
            res = train(seed=101, rows=4000, without=V1_WITHOUT)
            v = registry.log_and_register(res, MODEL, "staging", data_timestamp=today.isoformat())
            r.outcome = f"staging v{v}, roc_auc {res.metrics['roc_auc']:.3f}"
            ids["v1"] = v

        @step("promote v1", "gates, PM + risk approval by the demo approvers, binary copy to prod")
        def _(r):
            with DemoApprover(MODEL, ids["v1"]):
                state = promotion(
                    model_name=MODEL, candidate_version=ids["v1"], requested_by="demo-ml-engineer", return_state=True
                )
            out = state.result()
            r.outcome, r.decision_id = out["outcome"], out.get("decision_id", "")
            r.reason_code = "ALL_GATES_PASS" if out["outcome"] == "promote" else "GATES_FAILED"
            r.detail = f"prod v{out.get('prod_version')} is champion"
            if out["outcome"] != "promote":
                raise DemoFailed(f"v1 not promoted: {out}")

        @step("EOD scoring", "the business date scored by the champion, monitoring verdict")
        def _(r):
            out = eod_scoring(business_date=today, model_name=MODEL, rows=5000)
            r.outcome, r.reason_code, r.decision_id = out["action"], out["reason_code"], out["decision_id"]
            lat = out["latency_ms"]
            r.detail = (
                f"{out['rows']} rows, {out['failures']} failures, p95 {lat['p95']:.1f} ms, PSI {out['max_psi']:.3f}"
            )

        @step("backfill during EOD", "deferred by the capacity gateway while EOD runs, then runs")
        def _(r):
            with get_client(sync_client=True) as c:
                eod = c.create_flow_run_from_deployment(
                    ids["eod-scoring"],
                    parameters={"business_date": (today - timedelta(days=1)).isoformat(), "rows": 400_000},
                )
                bf = c.create_flow_run_from_deployment(
                    ids["backfill"], parameters={"start_date": today.isoformat(), "end_date": today.isoformat()}
                )
                t = threading.Thread(
                    target=lambda: run_flow(eod_scoring, flow_run=c.read_flow_run(eod.id), return_type="state"),
                    daemon=True,
                )
                t.start()
                deadline = time.monotonic() + 60
                while c.read_flow_run(eod.id).state_type != StateType.RUNNING and time.monotonic() < deadline:
                    time.sleep(0.1)
                try:
                    run_flow(backfill, flow_run=c.read_flow_run(bf.id), return_type="state")
                except Pause:  # deferred: the run put itself back to Scheduled("Deferred")
                    pass
                rec = newest("deferral", deployment="backfill")
                if rec is None:
                    raise DemoFailed("the backfill was admitted: the EOD run had already finished")
                r.reason_code, r.decision_id = rec.details["deferral_reason_code"], rec.decision_id
                t.join(120)
                due = c.read_flow_run(bf.id).next_scheduled_start_time
                while due and due.timestamp() > time.time():
                    time.sleep(0.2)
                state = run_flow(backfill, flow_run=c.read_flow_run(bf.id), return_type="state")
                assert isinstance(state, State)  # a sync flow run with return_type="state": its final state
                r.outcome = "deferred, then ran" if state.is_completed() else f"deferred, then {state.type.value}"
                r.detail = rec.decision_rationale[:120]

        worker = InProcessWorker({n: deployments[n][0] for n in ("retrain-job", "promotion", "rollback")})
        approver = DemoApprover(MODEL)  # one approver for every later promotion run of the model
        try:
            worker.__enter__()
            approver.__enter__()

            @step("registry event -> retrain", "new dev version -> watcher -> retrain gateway -> retrain-job sub-run")
            def _(r):
                registry.log_and_register(train(seed=202, rows=3000), MODEL, "dev")
                results = watch_once()
                created = [x for x in results if x.status == "created" and x.deployment == "retrain"]
                if not created:
                    raise DemoFailed(f"no retrain run from the registry event: {[x.as_dict() for x in results]}")
                run_id = created[0].flow_run_id
                assert run_id is not None  # a "created" intake result names the run it created
                with get_client(sync_client=True) as c:
                    state = run_flow(retrain, flow_run=c.read_flow_run(UUID(run_id)), return_type="state")
                    assert isinstance(state, State)
                    out = state.result()
                    r.outcome, r.reason_code, r.decision_id = out["outcome"], out["reason_code"], out["decision_id"]
                    ids["v2"] = (out.get("job") or {}).get("version")
                    r.detail = f"retrain-job registered staging v{ids['v2']}"

            @step("v2 candidate gated", "promotion started by the staging-validated event, demo approvals")
            def _(r):
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    rec = newest("promotion", candidate_version=ids["v2"], status="final") or next(
                        (
                            x
                            for x in log.query(kind="promotion", newest_first=True)
                            if x.details.get("candidate_version") == ids["v2"] and x.decision_outcome.value == "reject"
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
                ids["v2_promoted"] = final

            @step("injected drift", "EOD with RELEASEGATE_MARKET_DRIFT=0.35 -> PSI > 0.3 -> rollback + retrain")
            def _(r):
                os.environ["RELEASEGATE_MARKET_DRIFT"] = "0.35"
                try:
                    out = eod_scoring(business_date=today, model_name=MODEL, rows=5000)
                finally:
                    os.environ.pop("RELEASEGATE_MARKET_DRIFT", None)
                r.outcome, r.reason_code, r.decision_id = out["action"], out["reason_code"], out["decision_id"]
                r.detail = (
                    f"PSI {out['max_psi']:.3f}; rollback run {out.get('rollback', {}).get('status')}, "
                    f"retrain run {out.get('retrain', {}).get('status')}"
                )
                ids["rollback_run"] = (out.get("rollback") or {}).get("flow_run_id")

            @step("rollback", "champion back to the last approved version, verified, documented")
            def _(r):
                run_id = ids.get("rollback_run")
                if not run_id:
                    raise DemoFailed("no rollback run was requested")
                deadline = time.monotonic() + 120
                with get_client(sync_client=True) as c:
                    while time.monotonic() < deadline:
                        fr = c.read_flow_run(run_id)
                        if fr.state and fr.state.is_final():
                            break
                        time.sleep(0.3)
                rec = newest("rollback")
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
        finally:
            approver.__exit__(None, None, None)
            worker.__exit__(None, None, None)

        @step("audit", "the decision log's hash chain verified")
        def _(r):
            v = log.verify()
            r.outcome = "intact" if v.ok else "BROKEN"
            r.detail = f"{len(log.query())} records"
            r.ok = v.ok
    except DemoFailed:
        pass
    return steps


def where_next(home: Path) -> list[str]:
    return [
        f"decision log: RELEASEGATE_HOME={home} releasegate decisions --json",
        f"one record: RELEASEGATE_HOME={home} releasegate decisions --kind rollback",
        f"predictions: {home}/scoring/{MODEL}/{date.today().isoformat()}/predictions.csv",
        f"the runs in the Prefect UI: PREFECT_HOME={home}/prefect prefect server start, then http://127.0.0.1:4200",
        "for real: make up (server, MLflow, webhook receiver, worker), see README 'Running it for real'",
    ]


def as_json(steps: list[StepResult], home: Path) -> dict[str, Any]:
    return {
        "ok": all(s.ok for s in steps),
        "steps": [asdict(s) for s in steps],
        "seconds": round(sum(s.seconds for s in steps), 1),
        "home": str(home),
        "next": where_next(home),
    }
