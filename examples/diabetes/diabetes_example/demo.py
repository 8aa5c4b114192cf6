"""The diabetes example's part of ``make demo`` (entry point ``releasegate.demos: diabetes``).

A regression model judged by ``rmse`` (lower is better) on Parquet files per business date: the data
step, a weak v1 promoted as first release, a registry event that calls the team's own retrain
deployment (``diabetes-retrain``) as a child run, the better candidate promoted, a worse one refused,
EOD on the day's Parquet data, a population shift that triggers a rollback verified on that day's data,
and a backfill of five business dates re-run without scoring any date twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from uuid import UUID

from diabetes_example import MODEL
from releasegate.tools.lifecycle import DemoFailed, Lifecycle


def _newest_staging() -> str:
    from releasegate.adapters import mlflow_registry as registry

    versions = registry.client().search_model_versions(f"name='staging.{MODEL}'")
    return str(max(int(v.version) for v in versions))


def run(lc: Lifecycle) -> None:
    from prefect import get_client
    from prefect.client.schemas.objects import State
    from prefect.flow_engine import run_flow

    from diabetes_example.data import write_day
    from diabetes_example.retrain_job import retrain as team_retrain
    from diabetes_example.training import train_and_log
    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.adapters.registry_watch import watch_once
    from releasegate.policy.calendar import WEEKDAYS_ONLY
    from releasegate.testing.approval_driver import DemoApprover
    from releasegate.testing.inprocess_worker import InProcessWorker

    f, today, step = lc.flows, lc.today, lc.step
    days = WEEKDAYS_ONLY.looking_back(today, 8)[::-1]  # nine business dates (the default calendar), oldest first
    mine: dict[str, Any] = {}

    def promote(version: str) -> dict:
        state = f["promotion"](
            model_name=MODEL, candidate_version=version, requested_by="demo-ml-engineer", return_state=True
        )
        return state.result()

    @step("data", "the team's data step: inputs and labels per business date as Parquet")
    def _(r):
        root = Path(os.environ.setdefault("DIABETES_DATA", str(bootstrap.settings().home_dir / "data" / MODEL)))
        for d in days:
            write_day(d, root=root)
        r.outcome = f"{len(days)} business dates in {root}"

    @step("deploy", "the team's own retrain deployment (diabetes-retrain, governed)")
    def _(r):
        lc.deploy("diabetes-retrain", team_retrain, "bulk")
        r.outcome = "diabetes-retrain deployed"

    @step("train v1", "a weaker first version (more regularised), registered in staging.diabetes")
    def _(r):
        mine["v1"], rmse = train_and_log(alpha=1.0)
        r.outcome = f"staging v{mine['v1']}, rmse {rmse:.2f}"

    worker = InProcessWorker({"diabetes-retrain": team_retrain, "rollback": f["rollback"]})
    with worker, DemoApprover(MODEL):

        @step("promote v1", "first release: gates, demo approvals, binary copy to prod")
        def _(r):
            out = promote(mine["v1"])
            r.outcome, r.decision_id = out["outcome"], out.get("decision_id", "")
            r.reason_code = "ALL_GATES_PASS" if out["outcome"] == "promote" else "GATES_FAILED"
            if out["outcome"] != "promote":
                raise DemoFailed(f"v1 not promoted: {out}")

        @step("registry event -> own retrain", "new dev version -> retrain gateway -> diabetes-retrain child run")
        def _(r):
            train_and_log(env="dev")
            # the watcher's cursor per registered model: the only new version now is dev.diabetes's
            created = [x for x in watch_once(bootstrap.app()) if x.status == "created" and x.deployment == "retrain"]
            if not created:
                raise DemoFailed("no retrain run from the registry event")
            with get_client(sync_client=True) as c:
                run_id = UUID(str(created[0].flow_run_id))
                state = run_flow(f["retrain"], flow_run=c.read_flow_run(run_id), return_type="state")
                assert isinstance(state, State)
                out = state.result()
            r.outcome, r.reason_code, r.decision_id = out["outcome"], out["reason_code"], out["decision_id"]
            mine["v2"] = _newest_staging()
            r.detail = f"{out.get('retrain_deployment')} child run registered staging v{mine['v2']}"

        @step("promote v2", "the retrained candidate: rmse at least 2 % lower than the champion's")
        def _(r):
            out = promote(mine["v2"])
            r.outcome, r.decision_id = out["outcome"], out.get("decision_id", "")
            r.reason_code = "ALL_GATES_PASS" if out["outcome"] == "promote" else "GATES_FAILED"
            if out["outcome"] != "promote":
                raise DemoFailed(f"v2 not promoted: {out}")

        @step("worse candidate", "a heavily regularised version: higher rmse, refused by the KPI gate")
        def _(r):
            worse, rmse = train_and_log(alpha=10.0)
            out = promote(worse)
            r.outcome, r.decision_id = out["outcome"], out.get("decision_id", "")
            r.reason_code = "KPI_WORSE" if out["outcome"] != "promote" else "PROMOTED?"
            champion = registry.alias_version(f"prod.{MODEL}", "champion")
            r.detail = f"staging v{worse} rmse {rmse:.2f}; champion stays prod v{champion}"
            if out["outcome"] == "promote":
                raise DemoFailed("a worse-rmse candidate was promoted")

        @step("EOD scoring", "yesterday's Parquet inputs scored by the champion, rmse on its labels")
        def _(r):
            out = f["eod-scoring"](business_date=days[-2], model_name=MODEL)
            r.outcome, r.reason_code, r.decision_id = out["action"], out["reason_code"], out["decision_id"]
            r.detail = f"{out['rows']} rows, rmse {out['champion_metric']:.2f}, PSI {out['max_psi']:.3f}"

        @step("injected drift", "today's population shifted by 3 standard deviations -> rollback")
        def _(r):
            write_day(today, shift=3.0, root=Path(os.environ["DIABETES_DATA"]))
            out = f["eod-scoring"](business_date=today, model_name=MODEL)
            r.outcome, r.reason_code, r.decision_id = out["action"], out["reason_code"], out["decision_id"]
            r.detail = f"PSI {out['max_psi']:.3f}; rollback run {out.get('rollback', {}).get('status')}"
            mine["rollback_run"] = (out.get("rollback") or {}).get("flow_run_id")

        @step("rollback", "back to v1, verified on today's Parquet rows, documented")
        def _(r):
            if not mine.get("rollback_run"):
                raise DemoFailed("no rollback run was requested")
            lc.wait_final(mine["rollback_run"])
            rec = lc.newest("rollback", model_name=MODEL, status="final")
            if rec is None:
                raise DemoFailed("the rollback run ended without a record")
            on_day = rec.details["verification"].get("business_date") or {}
            r.outcome = "rolled back" if rec.details.get("verified") else "not verified"
            r.reason_code, r.decision_id = str(rec.details.get("trigger")), rec.decision_id
            r.detail = (
                f"v{rec.details.get('previous_version')} -> v{rec.details.get('new_version')}, "
                f"verified={rec.details.get('verified')} on {on_day.get('rows')} rows of {on_day.get('business_date')}"
            )

    @step("backfill", "five past business dates re-scored, then the same range again: nothing twice")
    def _(r):
        first = f["backfill"](start_date=days[2], end_date=days[6], model_name=MODEL)
        again = f["backfill"](start_date=days[2], end_date=days[6], model_name=MODEL)
        r.outcome = f"{first['scored']} scored, then {again['already_done']} already done"
        r.reason_code = "RESUMABLE"
        r.detail = ", ".join(f"{x['business_date']}: v{x['version']}" for x in first["rows"] if x["version"])
        if first["scored"] + first["already_done"] != 5 or again["scored"] != 0:
            raise DemoFailed(f"backfill: {first['rows']}")
