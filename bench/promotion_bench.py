"""Promotion end to end without human wait, on the ephemeral Prefect server and a SQLite registry.

Run by hand: ``.venv/bin/python bench/promotion_bench.py`` (also part of ``make bench``).

Each repetition: a fresh model whose champion lacks one data source (~3 % lower AUC) and a full
candidate in staging (setup, not timed); then the ``promotion`` flow runs in this process: dossier from
MLflow, gates, TECH_GATE_PASS, pause for PM and risk approval (given at once by the demo approver,
``adapters.approval_driver``; the paused run polls for input every second,
``RELEASEGATE_APPROVAL_POLL_SECONDS=1``), joint ack, binary copy to prod, aliases, decision records.
Seeds' manual reference: a release handshake by e-mail and checklist takes days.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, isolated_home, med, pct  # noqa: E402


def main() -> None:
    a = args(__doc__.splitlines()[0])
    repeats = a.repeats or 5
    home = isolated_home()
    os.environ["RELEASEGATE_APPROVAL_POLL_SECONDS"] = "1"
    from releasegate.tools.approval_driver import demo_approvers_file

    os.environ["RELEASEGATE_APPROVERS"] = str(demo_approvers_file(home))
    from credit_example.training import log_and_register, train
    from prefect.testing.utilities import prefect_test_harness

    from flows.promotion import promotion
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.tools.approval_driver import DemoApprover

    times = []
    with prefect_test_harness(server_startup_timeout=120):
        for i in range(repeats + 1):  # the first is the warm-up
            model = f"benchpromo{i}"
            weak = log_and_register(train(seed=11, without=("collateral_ratio",)), model, "staging")
            champ = registry.copy_to(f"staging.{model}", weak, f"prod.{model}")
            registry.set_alias(f"prod.{model}", "champion", champ)
            cand = log_and_register(train(seed=11), model, "staging")
            with DemoApprover(model, cand) as approver:
                t0 = time.perf_counter()
                state = promotion(model_name=model, candidate_version=cand, requested_by="bench", return_state=True)
                dt = time.perf_counter() - t0
            out = state.result()
            assert out["outcome"] == "promote", out
            assert [r for r, _ in approver.given] == ["pm", "risk"]
            if i:
                times.append(dt)
    rows = [
        Row("promotion", "end to end, no human wait (p50)", med(times), "s", "", f"median of {repeats}; polls 1 s"),
        Row("promotion", "end to end, no human wait (max)", pct(times, 100), "s", "", f"{repeats} runs"),
    ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()
