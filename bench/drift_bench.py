"""EOD drift at users' scale: 1,000,000 rows x 500 features against a stored reference profile (goal:
<= 10 s on this 2-core machine), with Evidently's PSI on a smaller slice as the reference point.

Run by hand: ``.venv/bin/python bench/drift_bench.py`` (also part of ``make bench``).

The profile (``releasegate.policy.psi.reference_profile``: per-feature decile edges and shares) is
computed once per model version and logged with it (``releasegate.evidence.log_reference_profile``),
so EOD only bins the day's inputs: ``psi_against(profile, current)``. Current rows are float32 (2 GB
for 1 M x 500), read one column at a time. Fixed seed, one warm-up on a slice, median of 3 runs; every
tenth feature is shifted by 0.2 sd so the result can be checked. Evidently (``pip install -e '.[bench]'``)
runs its PSI (``evidently.legacy.calculations.stattests.psi``) on 100,000 rows x 20 features; a user
report puts Evidently at ~23 min for 356 k rows x 100 columns.

Drift rule rates (``--rates-only`` skips the timing; ``--smoke`` runs the rates on 20 seeds): over
``--seeds`` seeded samples (default 2,000) of a 30-feature population fitted to scikit-learn's
breast-cancer data (log-normal with the mean and covariance of its log features: skewed, correlated,
unlimited rows), each seed a fresh reference of m = 426 rows (a 75 % training split of the 569 rows)
and a fresh current sample, how often the fixed rule (max PSI > 0.2) and the sample-size rule
(``releasegate.policy.drift.judge``: PSI above both 0.2 and the critical value at a 1 % false-alarm
rate, Šidák over 30 features) flag drift: clean samples of n = 100 / 120 / 500 / 2,000 rows (false
alarms) and samples with 3 of the 30 features shifted by one population standard deviation (detection);
plus the issue's own case, 120 rows drawn from the held-out 143 rows of a seeded split of the real data.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
from _common import Row, args, emit, med  # noqa: E402

from releasegate.policy.drift import DriftSample, judge, sample_of  # noqa: E402
from releasegate.policy.psi import critical_psi, per_feature_level, psi_against, reference_profile  # noqa: E402

REFERENCE_ROWS, FIXED_LIMIT, ALPHA = 426, 0.2, 0.01


def _options(p) -> None:
    p.add_argument("--seeds", type=int, default=2000, help="seeded samples per case of the rate bench")
    p.add_argument("--rates-only", action="store_true", help="only the drift rule's false-alarm/detection rates")
    p.add_argument("--smoke", action="store_true", help="the rates on 20 seeds (a quick check that it runs)")


def main() -> None:
    a = args(__doc__.splitlines()[0], _options)
    if a.smoke:
        a.seeds, a.rates_only = 20, True
    rows = [] if a.rates_only else timing(a)
    rows += rates(a.seeds)
    emit(rows, a.json)


def timing(a) -> list[Row]:
    rows_n, features, repeats = 1_000_000, 500, a.repeats or 3
    rng = np.random.default_rng(42)
    names = [f"f{j}" for j in range(features)]
    t0 = time.perf_counter()
    profile = reference_profile(rng.standard_normal((200_000, features), dtype=np.float32), names)
    profile_s = time.perf_counter() - t0
    cur = rng.standard_normal((rows_n, features), dtype=np.float32)
    shifted = np.arange(features) % 10 == 0
    cur[:, shifted] += np.float32(0.2)
    psi_against(profile, cur[:10_000])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        values = psi_against(profile, cur)
        times.append(time.perf_counter() - t0)
    ranks_right = bool(values[shifted].min() > values[~shifted].max())
    rows = [
        Row(
            "drift",
            "1 M x 500 vs stored profile",
            med(times),
            "s",
            "<= 10 s",
            f"median of {repeats} (min {min(times):.2f})",
        ),
        Row("drift", "profile of 200 k x 500 (once per version)", profile_s, "s", "", "at training time"),
        Row("drift", "shifted features rank first", float(ranks_right), "", "1", "0.2 sd on every 10th feature"),
    ]
    try:
        import evidently
        import pandas as pd
        from evidently.legacy.calculations.stattests.psi import _psi
        from evidently.legacy.core import ColumnType
    except Exception as exc:  # optional
        rows.append(Row("drift", "Evidently PSI", float("nan"), "", "", f"not installed ({type(exc).__name__})"))
    else:
        ref_s = rng.standard_normal((100_000, 20))
        cur_s = cur[:100_000, :20].astype(np.float64)
        t0 = time.perf_counter()
        for j in range(20):
            _psi(pd.Series(ref_s[:, j]), pd.Series(cur_s[:, j]), ColumnType.Numerical, 0.1)
        ev = time.perf_counter() - t0
        small = reference_profile(ref_s, names[:20])
        t0 = time.perf_counter()
        psi_against(small, cur_s)
        ours = time.perf_counter() - t0
        rows += [
            Row("drift", f"Evidently {evidently.__version__} PSI, 100 k x 20", ev, "s", "", "same slice"),
            Row("drift", "ours on the same slice", ours, "s", "", f"Evidently / ours = {ev / ours:.0f}x"),
        ]
    return rows


def _population():
    """A sampler of the breast-cancer population (log-normal fit) and its per-feature standard deviation."""
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data
    logs = np.log(X + 1e-3 * X.mean(axis=0))  # some features hold zeros
    mu, cov = logs.mean(axis=0), np.cov(logs, rowvar=False)
    offset = 1e-3 * X.mean(axis=0)

    def draw(rng, n: int) -> np.ndarray:
        return np.exp(rng.multivariate_normal(mu, cov, size=n)) - offset

    sd = draw(np.random.default_rng(0), 200_000).std(axis=0)
    return X, draw, sd


def _rate(hits: int, seeds: int) -> str:
    p = hits / seeds
    return f"{p:.4f} ± {1.96 * (p * (1 - p) / seeds) ** 0.5:.4f}"


def rates(seeds: int) -> list[Row]:
    X, draw, sd = _population()
    names = [f"f{j}" for j in range(X.shape[1])]
    cases = [(n, 0.0) for n in (100, 120, 500, 2000)] + [(120, 1.0), (100, 1.0), (120, 0.5), (500, 0.5)]
    out: list[Row] = []
    t0 = time.perf_counter()
    for n, shift in cases:
        old = new = insufficient = 0
        crit = []
        for seed in range(seeds):
            rng = np.random.default_rng([seed, n, int(shift * 10)])
            profile = reference_profile(draw(rng, REFERENCE_ROWS), names)
            cur = draw(rng, n)
            if shift:
                cols = rng.choice(len(names), size=3, replace=False)
                cur[:, cols] += shift * sd[cols]
            j, psi = _judge(profile, cur)
            old += bool(psi.max() > FIXED_LIMIT)
            new += j.outcome == "drift"
            insufficient += j.outcome == "insufficient"
            crit.append(j.critical or 0.0)
        what = "clean: false alarms" if not shift else f"{shift:g} sd on 3 of 30: detected"
        note = f"{seeds} seeds, m={REFERENCE_ROWS}, critical ~{np.median(crit):.3f}"
        out += [
            Row("drift-rule", f"n={n} {what}, fixed 0.2", old / seeds, "", "", _rate(old, seeds)),
            Row("drift-rule", f"n={n} {what}, sample-size rule", new / seeds, "", "", f"{_rate(new, seeds)}; {note}"),
        ]
        if insufficient:
            out.append(Row("drift-rule", f"n={n} insufficient", insufficient / seeds, "", "", ""))
    # the issue's own case: real rows, a seeded 426/143 split, 120 clean rows of the held-out part
    old = new = 0
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 7])
        order = rng.permutation(len(X))
        profile = reference_profile(X[order[:REFERENCE_ROWS]], names)
        held = X[order[REFERENCE_ROWS:]]
        j, psi = _judge(profile, held[rng.choice(len(held), size=120, replace=False)])
        old += bool(psi.max() > FIXED_LIMIT)
        new += j.outcome == "drift"
    out += [
        Row("drift-rule", "real held-out, 120 of 143 rows, fixed 0.2", old / seeds, "", "", _rate(old, seeds)),
        Row("drift-rule", "real held-out, 120 of 143 rows, sample-size rule", new / seeds, "", "", _rate(new, seeds)),
        Row("drift-rule", "rate bench wall time", time.perf_counter() - t0, "s", "", f"{seeds} seeds x 9 cases"),
    ]
    level = per_feature_level(ALPHA, len(names))
    out += [
        Row(
            "drift-rule",
            f"critical PSI, n={n}, m={REFERENCE_ROWS}, deciles",
            critical_psi(n, REFERENCE_ROWS, [0.1] * 10, level),
            "",
            "",
            f"false-alarm {ALPHA}, 30 features",
        )
        for n in (100, 120, 500, 2000, 100_000)
    ]
    return out


def _judge(profile, cur: np.ndarray):
    psi = psi_against(profile, cur)
    names = profile.features
    sample: DriftSample = sample_of(cur.shape[0], profile.rows, names, profile.shares)
    values = {f: float(v) for f, v in zip(names, psi, strict=True)}
    return judge(values, sample, FIXED_LIMIT, ALPHA), psi


if __name__ == "__main__":
    main()
