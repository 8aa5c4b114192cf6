"""`releasegate demo --json` end to end in its own process (ephemeral Prefect, SQLite MLflow and log)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.prefect


def test_demo_runs_the_whole_lifecycle_and_prints_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "RELEASEGATE_"))}
    env |= {"RELEASEGATE_HOME": str(tmp_path / "demo"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "releasegate", "demo", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["ok"]  # (how long it took is a figure for bench/, not an assertion on a busy CI machine)
    assert [s["step"] for s in doc["steps"] if not s["model"]] == ["platform up", "audit"]
    assert list(dict.fromkeys(s["model"] for s in doc["steps"] if s["model"])) == ["credit", "diabetes"]
    by = {s["step"]: s for s in doc["steps"] if s["model"] in ("", "credit")}
    assert by["promote v1"]["outcome"] == "promote" and by["promote v1"]["decision_id"]
    assert by["EOD scoring"]["reason_code"] == "WITHIN_LIMITS"
    assert by["backfill before EOD"]["reason_code"] == "PRIORITY_CONFLICT"
    assert by["backfill before EOD"]["outcome"] == "deferred, woken, then ran"
    assert by["registry event -> retrain"]["reason_code"] == "NEW_DEV_VERSION"
    assert by["v2 candidate gated"]["outcome"] in ("promote", "hold/reject")
    assert by["injected drift"]["reason_code"] == "DRIFT_URGENT"
    assert by["rollback"]["outcome"] == "rolled back" and "verified=True" in by["rollback"]["detail"]
    assert by["audit"]["outcome"] == "intact"
    # The regression example: its own KPI (rmse, lower is better), its own retrain deployment, its Parquet data.
    dia = {s["step"]: s for s in doc["steps"] if s["model"] == "diabetes"}
    assert dia["promote v1"]["outcome"] == dia["promote v2"]["outcome"] == "promote"
    assert dia["registry event -> own retrain"]["reason_code"] == "NEW_DEV_VERSION"
    assert "diabetes-retrain/diabetes-retrain child run" in dia["registry event -> own retrain"]["detail"]
    assert dia["worse candidate"]["outcome"] in ("hold", "reject")
    assert dia["EOD scoring"]["reason_code"] == "WITHIN_LIMITS" and "142 rows" in dia["EOD scoring"]["detail"]
    assert dia["injected drift"]["reason_code"] == "DRIFT_URGENT"
    assert dia["rollback"]["outcome"] == "rolled back" and "verified=True on 142 rows" in dia["rollback"]["detail"]
    assert dia["backfill"]["outcome"] == "5 scored, then 5 already done"
    # Every reported decision id is in the demo's decision log.
    from releasegate.store.decision_log import DecisionLog

    log = DecisionLog(f"sqlite:///{tmp_path / 'demo' / 'releasegate.db'}")
    for s in doc["steps"]:
        if s["decision_id"]:
            assert log.get(s["decision_id"]) is not None, s
