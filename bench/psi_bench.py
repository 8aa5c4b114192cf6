"""PSI on 1,000,000 rows x 20 features (goal: <= 1 s). Run by hand: .venv/bin/python bench/psi_bench.py

Fixed seed, one warm-up, median of 5 runs; reference and current differ by a mean shift in half the
features so the bins are not trivially empty.
"""

import statistics
import time

import numpy as np

from releasegate.psi import psi


def main(rows: int = 1_000_000, features: int = 20, repeats: int = 5) -> None:
    rng = np.random.default_rng(42)
    ref = rng.normal(size=(rows, features))
    cur = rng.normal(size=(rows, features)) + np.where(np.arange(features) % 2 == 0, 0.1, 0.0)
    psi(ref, cur)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        values = psi(ref, cur)
        times.append(time.perf_counter() - t0)
    print(
        f"psi {rows:,} x {features}: median {statistics.median(times):.3f} s over {repeats} runs "
        f"(min {min(times):.3f}, max {max(times):.3f}); goal <= 1 s"
    )
    print(f"max PSI {values.max():.4f} (shifted features), min {values.min():.6f} (unshifted)")


if __name__ == "__main__":
    main()
