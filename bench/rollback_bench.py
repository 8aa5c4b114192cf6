"""Rollback started by an EOD monitoring verdict, trigger to verified: through a real worker and in-process.

Run by hand: ``.venv/bin/python bench/rollback_bench.py`` (also part of ``make bench``); ``--smoke``: one
in-process rollback and one library rollback, no worker (``make test``).

What is measured is the rollback the product runs without a person: the one an EOD verdict asks for
(docs/rollback-requests.md). Setup (not timed): a Prefect test server, ``infra up``, the ``rollback``
deployment, a SQLite MLflow registry with prod v1 and v2 of a governed model (the shipped ``credit``
entry under the bench's name: the restored version is verified on the business date's inputs), both
approved by sealed promotion records. Each repetition puts the champion back on v2 (archive v1) and
writes the sealed ``monitoring`` verdict asking for a full rollback of v2 (what EOD records before it
acts); then the clock starts at the trigger, what ``services.eod.record_and_act`` does next:

* the ``monitoring.rollback.requested@v1`` event with the verdict's own event id goes through intake
  (validation, dedupe, decision record, run created with its idempotency key), and the sealed
  ``rollback_request`` binding the verdict to that run is written (``record_request``). EOD's
  idempotency key is one per model, business date and method; each repetition adds its number to it,
  so the repetitions of one day are not answered "duplicate";
* **through a worker**: ``prefect worker start --pool releasegate --type process`` (its own process,
  polling every ``--worker-poll`` seconds, 1 by default; Prefect's default is 10) picks the run up and
  runs it in a new process; the clock stops when the run is Completed, then the bench checks that the
  champion alias is on v1 (the last approved version) and that the run's sealed final rollback record is
  verified and names the request. "pickup" is the server's created -> Running of the run (worker poll,
  process start, ``import``), "in the run" its Running -> Completed;
* **in-process**: the same run executed by Prefect's engine in this process (``run_flow``, what the
  worker's process runs), the clock stopping when it returns, verified the same way;
* CPU: of the worker and its run processes (their ended children's usage, per rollback, the worker's
  start included), and of this process for the in-process rollback (the server's not included): what a
  rollback costs whatever else the machine runs;
* **library only**: ``execute_rollback`` without Prefect or a request (plan, alias moves,
  verification, records), and its registry part (the alias moves and tag).

Seeds' manual reference: 2-5 min for an alias flip, 15-30 min for a full emergency rollback.
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import ROOT, Row, args, emit, govern, isolated_home, med, pct  # noqa: E402

MODEL = "benchrb"
DEADLINE_S = 300  # the give-up time of one worker rollback, not a goal


def options(p) -> None:
    p.add_argument("--worker-repeats", type=int, default=None, help="rollbacks through the worker (smoke: 0)")
    p.add_argument("--worker-poll", type=float, default=1.0, help="the worker's PREFECT_WORKER_QUERY_SECONDS")


def approved_prod_versions(model: str) -> str:
    """prod v1 and v2 of ``model``, each approved by the sealed promotion records the flow writes."""
    from credit_example.training import log_and_register, train

    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision

    prod = f"prod.{model}"
    refs = {f: "bench" for f in ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref")}
    for seed in (1, 2):
        pv = registry.copy_to(f"staging.{model}", log_and_register(train(seed=seed, rows=800), model, "staging"), prod)
        done = None
        for status in ("pending", "final"):
            done = bootstrap.decision_log().append(
                NewDecision(
                    decision_kind=DecisionKind.promotion,
                    decision_outcome=DecisionOutcome.accept,
                    decision_rationale=f"bench setup: approved version ({status})",
                    subject=f"model:{model}",
                    actor="bench",
                    details={"model_name": model, "candidate_version": pv, "prod_version": pv, "status": status}
                    | ({"pending_decision_id": done.decision_id} if done is not None else {}),
                    rollback_plan_ref="bench",
                    **refs,
                )
            )
    return prod


def verdict(model: str, day: str):
    """The sealed monitoring decision an EOD run records when its verdict asks for a full rollback of v2."""
    from releasegate import bootstrap
    from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision

    return bootstrap.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.monitoring,
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=f"EOD {day} {model}: rollback (DRIFT_URGENT) - bench: injected drift",
            subject=f"model:{model}",
            actor="releasegate:eod-monitoring",
            details={
                "model_name": model,
                "business_date": day,
                "action": "rollback",
                "reason_code": "DRIFT_URGENT",
                "rollback_method": "full",
                "retrain": False,
                "urgent": True,
                "champion": {"version": "2"},
                "flow_run_id": None,
            },
        )
    )


def trigger(model: str, day: str, rep: int, judged) -> str:
    """What EOD does once its verdict is recorded: the event through intake, then the sealed request."""
    from releasegate import bootstrap
    from releasegate.adapters.prefect_runs import send_event
    from releasegate.services.rollback_requests import record_request

    sent = send_event(
        bootstrap.app(),
        {
            "event_id": f"{judged.decision_id}:rollback",
            "event_type": "monitoring.rollback.requested@v1",
            "occurred_at": datetime.now(UTC).isoformat(),
            "producer": "releasegate:eod-monitoring",
            "idempotency_key": f"monitoring:{model}:{day}:rollback:full:{rep}",
            "payload": {
                "model_name": model,
                "business_date": day,
                "method": "full",
                "version": "2",
                "reason_code": "DRIFT_URGENT",
                "reason": "bench: injected drift",
            },
        },
    )
    assert sent.status == "created" and sent.flow_run_id, sent
    request = record_request(
        judged, method="full", champion="2", version="2", flow_run_id=sent.flow_run_id, ports=bootstrap.ports()
    )
    assert request is not None
    return sent.flow_run_id


def check_verified(prod: str, run_id: str) -> dict:
    """The champion back on v1 and the run's sealed final rollback record verified, naming its request."""
    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.decisions import DecisionKind
    from releasegate.services.rollback_requests import request_for_run

    assert registry.alias_version(prod, registry.CHAMPION) == "1", registry.aliases(prod)
    request = request_for_run(run_id, bootstrap.ports())
    assert request is not None
    good, _ = bootstrap.decision_log().trusted(kind=DecisionKind.rollback, subject=f"model:{MODEL}")
    [final] = [
        r
        for r in good
        if r.details.get("status") == "final" and r.details.get("rollback_request_id") == request.decision_id
    ]
    assert final.details["verified"] and final.details["trigger"] == "DRIFT_URGENT", final.details
    return final.details


def start_worker(home: Path, poll: float) -> subprocess.Popen:
    from prefect.settings import PREFECT_API_URL

    env = os.environ | {
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_WORKER_QUERY_SECONDS": str(poll),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    log = (home / "worker.log").open("w")
    exe = Path(sys.executable).with_name("prefect")
    return subprocess.Popen(
        [str(exe), "worker", "start", "--pool", "releasegate", "--type", "process", "--name", "bench"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(worker: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(worker.pid, signal.SIGKILL)


def wait_final(client, run_id: str, worker: subprocess.Popen, home: Path):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        if worker.poll() is not None:
            break
        time.sleep(0.05)
    tail = (home / "worker.log").read_text()[-3000:]
    raise AssertionError(f"rollback run {run_id} not final (worker rc {worker.poll()}):\n{tail}")


def children_cpu() -> float:
    """CPU seconds of this process's ended children and theirs (the worker and its run processes)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> None:
    a = args(__doc__.splitlines()[0], options)
    repeats = a.repeats or (1 if a.smoke else 7)
    warmup = 0 if a.smoke else 1
    worker_repeats = a.worker_repeats if a.worker_repeats is not None else (0 if a.smoke else 7)
    home = isolated_home()
    govern(home, MODEL)
    os.chdir(ROOT)  # the deployment's entrypoint is relative to the project, where the worker runs
    from prefect import get_client
    from prefect.flow_engine import run_flow
    from prefect.testing.utilities import prefect_test_harness

    from flows.rollback import rollback
    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up
    from releasegate.policy.triggers import local_business_date
    from releasegate.services.rollback import execute_rollback

    t_start = time.perf_counter()
    setup = ThreadPoolExecutor(1)  # MLflow and the decision log only: registers while the server starts
    registered = setup.submit(approved_prod_versions, MODEL)
    with prefect_test_harness(server_startup_timeout=120):
        say(f"ephemeral Prefect server up in {time.perf_counter() - t_start:.1f} s")
        infra_up(capacity_from_file())
        rollback.to_deployment(
            name="rollback",
            work_pool_name="releasegate",
            work_queue_name="critical",
            job_variables={"working_dir": str(ROOT)},  # the worker runs the flow from the project
        ).apply()
        say(f"deployment applied at {time.perf_counter() - t_start:.1f} s")
        prod = registered.result()
        setup.shutdown()
        say(f"prod v1, v2 registered at {time.perf_counter() - t_start:.1f} s")
        day = local_business_date(datetime.now(UTC)).isoformat()
        rep = 0

        def reset():
            registry.set_alias(prod, registry.CHAMPION, "2")
            registry.set_alias(prod, registry.ARCHIVE, "1")

        inproc, inproc_cpu, intake, registry_part, lib, lib_registry = [], [], [], [], [], []
        with get_client(sync_client=True) as c:
            for i in range(warmup + repeats):
                reset()
                judged, rep = verdict(MODEL, day), rep + 1
                t0, cpu0 = time.perf_counter(), time.process_time()
                run_id = trigger(MODEL, day, rep, judged)
                t1 = time.perf_counter()
                state = run_flow(rollback, flow_run=c.read_flow_run(run_id), return_type="state")
                t2, cpu2 = time.perf_counter(), time.process_time()
                assert state.is_completed(), state.message
                final = check_verified(prod, run_id)
                if i >= warmup:
                    intake.append(t1 - t0)
                    inproc.append(t2 - t0)
                    inproc_cpu.append(cpu2 - cpu0)
                    registry_part.append(final["registry_seconds"])
            for i in range(warmup + repeats):
                reset()
                t0 = time.perf_counter()
                rec = execute_rollback(
                    MODEL, trigger="bench", root_cause="bench", requested_by="bench", ports=bootstrap.ports()
                )
                assert rec.verified and registry.alias_version(prod, registry.CHAMPION) == "1"
                if i >= warmup:
                    lib.append(time.perf_counter() - t0)
                    lib_registry.append(rec.registry_seconds)

            say(f"in-process and library rollbacks done at {time.perf_counter() - t_start:.1f} s")
            worked, pickup, in_run = [], [], []
            worker_cpu = 0.0
            if worker_repeats:
                cpu0 = children_cpu()
                worker = start_worker(home, a.worker_poll)
                try:
                    for i in range(warmup + worker_repeats):  # the warm-up also waits for the worker to start
                        reset()
                        judged, rep = verdict(MODEL, day), rep + 1
                        t0 = time.perf_counter()
                        run_id = trigger(MODEL, day, rep, judged)
                        run = wait_final(c, run_id, worker, home)
                        t1 = time.perf_counter()
                        assert run.state.is_completed(), f"{run.state.name}: {run.state.message}"
                        check_verified(prod, run_id)
                        if i >= warmup:
                            worked.append(t1 - t0)
                            pickup.append((run.start_time - run.created).total_seconds())
                            in_run.append((run.end_time - run.start_time).total_seconds())
                finally:
                    stop_worker(worker)
                worker_cpu = (children_cpu() - cpu0) / (warmup + worker_repeats)

    note = f"{repeats} runs" + (f", warm-up {warmup}" if warmup else "")
    wnote = f"{worker_repeats} runs, warm-up {warmup}, worker polls every {a.worker_poll:g} s"
    rows = []
    if worked:
        rows += [
            Row("rollback", "trigger -> verified, worker (p50)", med(worked), "s", "seconds, not minutes", wnote),
            Row("rollback", "trigger -> verified, worker (p95)", pct(worked, 95), "s", "", wnote),
            Row("rollback", "  of which pickup (created -> Running, p50)", med(pickup), "s", "", wnote),
            Row("rollback", "  of which in the run (Running -> Completed, p50)", med(in_run), "s", "", wnote),
            Row(
                "rollback",
                "  CPU per rollback, worker + run process",
                worker_cpu,
                "s",
                "",
                "mean, worker start included",
            ),
        ]
    rows += [
        Row("rollback", "trigger -> verified, in-process (p50)", med(inproc), "s", "", note),
        Row("rollback", "trigger -> verified, in-process (p95)", pct(inproc, 95), "s", "", note),
        Row("rollback", "  CPU in this process (p50)", med(inproc_cpu), "s", "", note + ", server not included"),
        Row("rollback", "  of which event intake + request (p50)", med(intake) * 1000, "ms", "", note),
        Row("rollback", "  registry part (alias moves + tag, p50)", med(registry_part) * 1000, "ms", "", note),
        Row("rollback", "library only, no Prefect (p50)", med(lib) * 1000, "ms", "", note),
        Row("rollback", "  its registry part (p50)", med(lib_registry) * 1000, "ms", "", note),
        Row("rollback", "seeds' manual reference", 2 * 60, "s", "", "2-5 min alias flip, 15-30 min full"),
    ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()
