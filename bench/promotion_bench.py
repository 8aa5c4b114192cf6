"""Promotion end to end without human wait, on the ephemeral Prefect server and a SQLite registry.

Run by hand: ``.venv/bin/python bench/promotion_bench.py`` (also part of ``make bench``); ``--smoke``:
one promotion, no warm-up (``make test``).

Each repetition: a fresh model, governed with the shipped ``credit`` entry under its own name (its
``current_inputs`` feed the drift gate, which holds a model that declares none), whose champion lacks
one data source (~3 % lower AUC) and a full candidate in staging (setup, not timed, all models while the
server starts); then the ``promotion`` flow runs in this process: dossier from MLflow, gates (the drift
gate on the business date's inputs), TECH_GATE_PASS, pause for PM and risk approval (given at once by
the demo approver, ``testing.approval_driver``; the paused run polls for input every second,
``RELEASEGATE_APPROVAL_POLL_SECONDS=1``), joint ack, binary copy to prod, aliases, decision records.
Seeds' manual reference: a release handshake by e-mail and checklist takes days.
"""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, govern, isolated_home, med, pct  # noqa: E402


def main() -> None:
    a = args(__doc__.splitlines()[0])
    repeats = a.repeats or (1 if a.smoke else 5)
    warmup = 0 if a.smoke else 1
    home = isolated_home()
    models = [f"benchpromo{i}" for i in range(warmup + repeats)]
    govern(home, *models)  # the shipped credit entry: current_inputs for the drift gate, KPI, task
    os.environ["RELEASEGATE_APPROVAL_POLL_SECONDS"] = "1"
    from releasegate.testing.approval_driver import demo_approvers_file

    os.environ["RELEASEGATE_APPROVERS"] = str(demo_approvers_file(home))
    from credit_example.training import log_and_register, train
    from prefect.testing.utilities import prefect_test_harness

    from flows.promotion import promotion
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.testing.approval_driver import DemoApprover

    def prepare(model: str) -> str:
        """MLflow only: a weaker champion in prod, the full candidate in staging (its version)."""
        weak = log_and_register(train(seed=11, without=("collateral_ratio",)), model, "staging")
        champ = registry.copy_to(f"staging.{model}", weak, f"prod.{model}")
        registry.set_alias(f"prod.{model}", "champion", champ)
        return log_and_register(train(seed=11), model, "staging")

    times = []
    setup = ThreadPoolExecutor(1)  # trains and registers while the server starts; done before any timing
    prepared = setup.submit(lambda: [prepare(m) for m in models])
    with prefect_test_harness(server_startup_timeout=120):
        candidates = prepared.result()
        setup.shutdown()
        for i, (model, cand) in enumerate(zip(models, candidates, strict=True)):  # the first is the warm-up
            with DemoApprover(model, cand) as approver:
                t0 = time.perf_counter()
                state = promotion(model_name=model, candidate_version=cand, requested_by="bench", return_state=True)
                dt = time.perf_counter() - t0
            out = state.result()
            assert out["outcome"] == "promote", out
            assert [r for r, _ in approver.given] == ["pm", "risk"]
            if i >= warmup:
                times.append(dt)
    rows = [
        Row("promotion", "end to end, no human wait (p50)", med(times), "s", "", f"median of {repeats}; polls 1 s"),
        Row("promotion", "end to end, no human wait (max)", pct(times, 100), "s", "", f"{repeats} runs"),
    ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()
