"""``make demo``: the whole lifecycle on embedded defaults, in one process, unattended.

Ephemeral Prefect server (state under ``$RELEASEGATE_HOME/prefect``), SQLite MLflow registry and
SQLite decision log under ``$RELEASEGATE_HOME``. Approvals are given by the demo approver identities
(``demo-pm-approver``, ``demo-risk-approver``: see ``approval_driver``), runs are executed by an
in-process worker (``inprocess_worker``). Every step reports its outcome, reason code, decision id and
seconds; the decision log holds everything afterwards.

This module names no model: it brings the platform up, then runs the demo of every installed example
project (entry point group ``releasegate.demos``: ``name = "package.module:function"``, called with a
``Lifecycle``), in name order, then verifies the decision log. The examples' own steps live in their
projects (``examples/credit``, ``examples/diabetes``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from releasegate.errors import Failed

DEMO_GROUP = "releasegate.demos"
RELEASEGATE_FLOWS = {  # releasegate's own deployments (prefect.yaml) and their queues
    "eod-scoring": "critical",
    "backfill": "bulk",
    "promotion": "critical",
    "retrain": "bulk",
    "rollback": "critical",
}


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
    model: str = ""  # the example model the step belongs to ("" for the platform's own steps)


class DemoFailed(Failed):
    """A step of the demo did not end as the lifecycle expects."""


def prepare_environment(home: Path) -> None:
    """Embedded defaults only: never a configured server, nothing from the network."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ["RELEASEGATE_HOME"] = str(home)
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("RELEASEGATE_DATABASE_URL", None)
    os.environ.pop("RELEASEGATE_MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # MLflow's own: governed runs give it the home's store
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    os.environ["PREFECT_HOME"] = str(home / "prefect")
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
    # The ephemeral server starts in 12-20 s on 2 cores and later on a busy machine: Prefect's default
    # of 20 s made `make demo` fail there ("Timed out while attempting to connect to ephemeral Prefect API").
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ["RELEASEGATE_APPROVAL_POLL_SECONDS"] = "1"
    os.environ.pop("RELEASEGATE_MARKET_DRIFT", None)
    # The shipped capacity policy with short backoffs and no windows, so the deferred backfill is
    # seen going again within seconds and a Sunday-night maintenance window cannot stall the demo; and
    # each queue may use the whole pool, so that only the reservation rule keeps EOD's slots (the shipped
    # caps split the pool 2 + 2 between the queues, and then a backfill can never take an EOD run's slot).
    import yaml

    from releasegate.bootstrap import project_root
    from releasegate.yamlio import load_yaml

    policy = load_yaml(project_root() / "blocks" / "capacity_policy.yaml")
    pool = policy["pool_concurrency_limit"]
    queues = [q | {"concurrency_limit": pool} for q in policy["queues"]]
    policy |= {"windows": [], "backoff_seconds": [3, 5], "queues": queues}
    path = home / "capacity_policy.demo.yaml"
    path.write_text(yaml.safe_dump(policy))
    os.environ["RELEASEGATE_CAPACITY_POLICY"] = str(path)
    from releasegate.testing.approval_driver import demo_approvers_file

    os.environ["RELEASEGATE_APPROVERS"] = str(demo_approvers_file(home))  # demo identities: this home only


class Lifecycle:
    """What an example's demo gets: ``step`` (a decorator that runs, times and reports one step), the
    platform's flows and deployment ids, ``deploy`` for the example's own flows, ``newest`` record."""

    def __init__(self, progress: Callable[[StepResult], None] | None = None):
        from releasegate import bootstrap
        from releasegate.policy.calendar import WEEKDAYS_ONLY

        self.steps: list[StepResult] = []
        self.progress = progress
        self.model = ""
        self.flows: dict[str, Any] = {}
        self.ids: dict[str, Any] = {}
        self.log = bootstrap.decision_log()
        # the newest weekday: the example models keep the default business calendar (weekdays)
        self.today = WEEKDAYS_ONLY.on_or_before(bootstrap.clock().now().date()) or bootstrap.clock().now().date()

    def step(self, title: str, what: str = "") -> Callable[[Callable[[StepResult], None]], StepResult]:
        def wrap(fn: Callable[[StepResult], None]) -> StepResult:
            r = StepResult(title, what, model=self.model)
            t0 = time.perf_counter()
            try:
                fn(r)
            except Exception as exc:
                r.ok, r.outcome, r.detail = False, "error", f"{type(exc).__name__}: {exc}"[:300]
            r.seconds = round(time.perf_counter() - t0, 1)
            self.steps.append(r)
            if self.progress:
                self.progress(r)
            if not r.ok:
                raise DemoFailed(f"{title}: {r.detail}")
            return r

        return wrap

    def newest(self, kind: str, **match: Any):
        for rec in self.log.query(kind=kind, newest_first=True):
            if all(rec.details.get(k) == v for k, v in match.items()):
                return rec
        return None

    def deploy(self, name: str, flow: Any, queue: str) -> Any:
        self.flows[name] = flow
        self.ids[name] = flow.to_deployment(name=name, work_pool_name="releasegate", work_queue_name=queue).apply()
        return self.ids[name]

    def wait_final(self, run_id: Any, timeout: float = 120.0):
        from prefect import get_client

        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as c:
            while time.monotonic() < deadline:
                fr = c.read_flow_run(run_id)
                if fr.state and fr.state.is_final():
                    return fr
                time.sleep(0.3)
        raise DemoFailed(f"flow run {run_id} did not finish in {timeout:.0f} s")


def demos() -> list[tuple[str, Callable[[Lifecycle], None]]]:
    """The installed example demos, by name."""
    from importlib.metadata import entry_points

    return sorted(((ep.name, ep.load()) for ep in entry_points(group=DEMO_GROUP)), key=lambda x: x[0])


def run_lifecycle(progress: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    from releasegate import bootstrap
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_flows import load_deployment_flow
    from releasegate.adapters.prefect_infra import infra_up

    lc = Lifecycle(progress)
    try:
        found = demos()

        @lc.step("platform up", "ephemeral Prefect server, pool, queues, blocks, releasegate's deployments")
        def _(r):
            if not found:
                raise DemoFailed(f"no example demo is installed (entry point group {DEMO_GROUP}): make venv")
            changes = infra_up(load_gateway_config(use_block=False))
            for name, queue in RELEASEGATE_FLOWS.items():
                lc.deploy(name, load_deployment_flow(name, bootstrap.app().project_root), queue)
            r.outcome = (
                f"{len(lc.ids)} deployments, {len(changes)} infra changes; demos: {', '.join(n for n, _ in found)}"
            )

        for name, demo in found:
            lc.model = name
            demo(lc)
        lc.model = ""

        @lc.step("audit", "the decision log's hash chain verified")
        def _(r):
            v = lc.log.verify()
            r.outcome = "intact" if v.ok else "BROKEN"
            r.detail = f"{len(lc.log.query())} records"
            r.ok = v.ok
    except DemoFailed:
        pass
    return lc.steps


def where_next(home: Path) -> list[str]:
    return [
        f"decision log: RELEASEGATE_HOME={home} releasegate decisions --json",
        f"one record: RELEASEGATE_HOME={home} releasegate decisions --kind rollback",
        f"predictions: {home}/scoring/<model>/<business date>/predictions.csv",
        f"the runs in the Prefect UI: PREFECT_HOME={home}/prefect prefect server start, then http://127.0.0.1:4200",
        "for real: make up (server, MLflow, webhook receiver, worker), see docs/how-to/run-for-real.md",
    ]


def as_json(steps: list[StepResult], home: Path) -> dict[str, Any]:
    return {
        "ok": all(s.ok for s in steps),
        "steps": [asdict(s) for s in steps],
        "seconds": round(sum(s.seconds for s in steps), 1),
        "home": str(home),
        "next": where_next(home),
    }
