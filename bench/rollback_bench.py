"""Rollback end to end on the ephemeral Prefect server (trigger to verified) and its registry part.

Run by hand: ``.venv/bin/python bench/rollback_bench.py`` (also part of ``make bench``).

Setup (not timed): a Prefect test server, the ``rollback`` deployment, a SQLite MLflow registry with
prod v1 (archived, approved) and v2 (champion, approved). Each repetition resets the aliases, then:

* **trigger → verified**: the monitoring event ``monitoring.rollback.requested@v1`` goes through event
  intake (validation, dedupe, decision record, run created by the API with its idempotency key), the
  run is executed by Prefect's engine in this process, as a worker's subprocess would, and the clock
  stops when the run is final with its rollback record written (champion moved, verified through
  pyfunc). A real worker adds its polling interval (``prefect worker start``, 10 s by default) and a
  process start on top; that is configuration, not rollback work, and is left out.
* **registry part**: the alias moves and tag (``RollbackRecord.registry_seconds``).
* **library only**: ``execute_rollback`` without Prefect (plan, alias moves, verification, record).

Seeds' manual reference: 2-5 min for an alias flip, 15-30 min for a full emergency rollback.
"""

import sys
import time
import uuid
from datetime import UTC, date, datetime

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, isolated_home, med, pct  # noqa: E402


def main() -> None:
    a = args(__doc__.splitlines()[0])
    repeats = a.repeats or 7
    isolated_home()
    from credit_example.training import log_and_register, train
    from prefect import get_client
    from prefect.flow_engine import run_flow
    from prefect.testing.utilities import prefect_test_harness

    from flows.rollback import rollback
    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up
    from releasegate.adapters.prefect_runs import send_event
    from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
    from releasegate.services.rollback import execute_rollback

    t_start = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=120):
        print(f"ephemeral Prefect server up in {time.perf_counter() - t_start:.1f} s", flush=True)
        infra_up(capacity_from_file())
        rollback.to_deployment(name="rollback", work_pool_name="releasegate", work_queue_name="critical").apply()
        model, prod = "benchrb", "prod.benchrb"
        for seed in (1, 2):
            v = log_and_register(train(seed=seed, rows=800), model, "staging")
            pv = registry.copy_to(f"staging.{model}", v, prod)
            refs = {
                f: "bench" for f in ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref")
            }
            facts = {"model_name": model, "candidate_version": pv, "prod_version": pv}
            done = None
            for status in ("pending", "final"):  # what the promotion flow writes, sealed by the service path
                done = bootstrap.decision_log().append(
                    NewDecision(
                        decision_kind=DecisionKind.promotion,
                        decision_outcome=DecisionOutcome.accept,
                        decision_rationale=f"bench setup: approved version ({status})",
                        subject=f"model:{model}",
                        actor="bench",
                        details=facts
                        | {"status": status}
                        | ({"pending_decision_id": done.decision_id} if done is not None else {}),
                        rollback_plan_ref="bench",
                        **refs,
                    )
                )

        def reset():
            registry.set_alias(prod, "champion", "2")
            registry.set_alias(prod, "archive", "1")

        end_to_end, intake, registry_part, lib, lib_registry = [], [], [], [], []
        with get_client(sync_client=True) as c:
            for i in range(repeats + 1):  # the first is the warm-up
                reset()
                key = uuid.uuid4().hex
                t0 = time.perf_counter()
                res = send_event(
                    {
                        "event_id": f"bench-{key}",
                        "event_type": "monitoring.rollback.requested@v1",
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "producer": "bench",
                        "idempotency_key": f"bench:{key}",
                        "payload": {
                            "model_name": model,
                            "business_date": date.today().isoformat(),
                            "method": "full",
                            "version": "2",
                            "reason_code": "DRIFT_URGENT",
                            "reason": "bench: injected drift",
                        },
                    }
                )
                t1 = time.perf_counter()
                state = run_flow(rollback, flow_run=c.read_flow_run(res.flow_run_id), return_type="state")
                t2 = time.perf_counter()
                out = state.result()
                assert state.is_completed() and out["verified"] and registry.alias_version(prod, "champion") == "1"
                if i:
                    intake.append(t1 - t0)
                    end_to_end.append(t2 - t0)
                    registry_part.append(out["registry_seconds"])
            for i in range(repeats + 1):
                reset()
                t0 = time.perf_counter()
                rec = execute_rollback(model, trigger="bench", root_cause="bench", requested_by="bench")
                if i:
                    lib.append(time.perf_counter() - t0)
                    lib_registry.append(rec.registry_seconds)

    note = f"median of {repeats}, warm-up 1"
    rows = [
        Row("rollback", "trigger -> verified (Prefect run)", med(end_to_end), "s", "seconds, not minutes", note),
        Row("rollback", "  of which event intake + run created", med(intake) * 1000, "ms", "", note),
        Row("rollback", "  p95 trigger -> verified", pct(end_to_end, 95), "s", "", note),
        Row("rollback", "registry part (alias moves + tag)", med(registry_part) * 1000, "ms", "", note),
        Row("rollback", "library only (no Prefect)", med(lib) * 1000, "ms", "", note),
        Row("rollback", "  its registry part", med(lib_registry) * 1000, "ms", "", note),
        Row("rollback", "seeds' manual reference", 2 * 60, "s", "", "2-5 min alias flip, 15-30 min full"),
    ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()
