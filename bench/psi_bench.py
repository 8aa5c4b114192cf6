"""PSI on 1,000,000 rows x 20 features (goal: <= 1 s), and Evidently's PSI on the same data when installed.

Run by hand: ``.venv/bin/python bench/psi_bench.py`` (also part of ``make bench``); ``--smoke``: 20,000
rows, one run.

Fixed seed, one warm-up, median of 5 runs; reference and current differ by a mean shift in half the
features so the bins are not trivially empty. With Evidently importable (``pip install -e '.[bench]'``,
or any environment that has it: this script needs only numpy and ``releasegate.policy.psi``), its PSI
(``evidently.legacy.calculations.stattests.psi``) runs on the same columns: time ratio and the largest
value difference. The two bin differently - ours on the reference's deciles with a 1e-4 floor,
Evidently on equal-width Sturges bins over both samples - so values differ by design; the shifted and
unshifted features must still rank the same.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
from _common import Row, args, emit, med  # noqa: E402

from releasegate.policy.psi import psi  # noqa: E402


def evidently_psi():
    try:
        import pandas as pd
        from evidently.legacy.calculations.stattests.psi import _psi
        from evidently.legacy.core import ColumnType
    except Exception as exc:  # optional
        return None, f"{type(exc).__name__}: {exc}"[:120]

    def run(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        return np.array(
            [
                float(_psi(pd.Series(ref[:, j]), pd.Series(cur[:, j]), ColumnType.Numerical, 0.1)[0])
                for j in range(ref.shape[1])
            ]
        )

    import evidently

    return run, evidently.__version__


def main() -> None:
    a = args(__doc__.splitlines()[0])
    rows_n, features, repeats = (20_000, 20, a.repeats or 1) if a.smoke else (1_000_000, 20, a.repeats or 5)
    rng = np.random.default_rng(42)
    ref = rng.normal(size=(rows_n, features))
    cur = rng.normal(size=(rows_n, features)) + np.where(np.arange(features) % 2 == 0, 0.1, 0.0)
    psi(ref, cur)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours = psi(ref, cur)
        times.append(time.perf_counter() - t0)
    rows = [
        Row(
            "psi",
            f"{rows_n:,} x {features} features",
            med(times),
            "s",
            "<= 1 s",
            f"median of {repeats} (min {min(times):.3f})",
        ),
        Row("psi", "max PSI (shifted features)", float(ours.max()), "", "", "mean shift 0.1 sd"),
    ]
    ev, version = evidently_psi()
    if ev is None:
        rows.append(Row("psi", "Evidently PSI", float("nan"), "", "", f"not installed ({version})"))
    else:
        ev(ref[:1000], cur[:1000])  # warm-up
        ev_times = []
        for _ in range(max(1, repeats // 2)):
            t0 = time.perf_counter()
            theirs = ev(ref, cur)
            ev_times.append(time.perf_counter() - t0)
        shifted = np.arange(features) % 2 == 0
        same_ranking = bool(
            theirs[shifted].min() > theirs[~shifted].max() and ours[shifted].min() > ours[~shifted].max()
        )
        rows += [
            Row("psi", f"Evidently {version} PSI, same data", med(ev_times), "s", "", f"median of {len(ev_times)}"),
            Row("psi", "Evidently time / ours", med(ev_times) / med(times), "x", "", ""),
            Row(
                "psi",
                "largest |ours - Evidently|",
                float(np.abs(ours - theirs).max()),
                "",
                "",
                f"same ranking: {same_ranking}",
            ),
        ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()
