"""Population stability index, per feature, vectorised (numpy).

Bins come from the reference sample's quantiles (``bins`` equal-mass bins; the outer edges open to
±inf), empty bins get a small ``floor`` share so the log stays finite:

    PSI = Σ_bins (cur% − ref%) · ln(cur% / ref%)

Missing values are left out of both samples. Rule of thumb (the seeds'): < 0.1 stable, 0.1–0.2
moderate, > 0.2 significant shift, > 0.3 urgent. Pure module.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

DEFAULT_BINS = 10
DEFAULT_FLOOR = 1e-4


def _bin_index(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bin of each value: the number of edges <= value (``searchsorted(side="right")``).

    With few edges, one vectorised comparison per edge is ~10x faster than ``searchsorted`` on 1 M
    unsorted values (measured: 1.5 ms vs 19 ms per column); ``bench/psi_bench.py`` times the whole."""
    if edges.size > 64:
        return np.searchsorted(edges, x, side="right")
    idx = np.zeros(x.size, dtype=np.int8)
    for e in edges:
        idx += x >= e
    return idx


def psi(
    reference: np.ndarray, current: np.ndarray, bins: int = DEFAULT_BINS, floor: float = DEFAULT_FLOOR
) -> np.ndarray:
    """PSI for each column of ``reference`` vs ``current`` (2-D arrays with the same columns)."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.ndim == 1:
        ref, cur = ref[:, None], cur[:, None]
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference has {ref.shape[1]} features, current has {cur.shape[1]}")
    if bins < 2:
        raise ValueError("bins must be at least 2")
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    n = ref.shape[1]

    def column(j: int) -> float:
        # One contiguous copy per feature: column slices of a C-ordered array are strided and slow.
        return _psi_1d(np.ascontiguousarray(ref[:, j]), np.ascontiguousarray(cur[:, j]), qs, floor)

    workers = min(n, os.cpu_count() or 1)
    if workers > 1 and ref.size + cur.size >= _PARALLEL_MIN_VALUES:
        # numpy releases the GIL in the copies, the partition, the comparisons and the arithmetic, so
        # columns run in threads (1 M x 20 on 2 cores: 1.04 s serial -> bench/psi_bench.py). Same
        # arithmetic per column, same results.
        with ThreadPoolExecutor(workers) as pool:
            return np.array(list(pool.map(column, range(n))))
    return np.array([column(j) for j in range(n)])


_PARALLEL_MIN_VALUES = 2_000_000


def _psi_1d(r: np.ndarray, c: np.ndarray, qs: np.ndarray, floor: float) -> float:
    if np.isnan(r).any():
        r = r[~np.isnan(r)]
    if np.isnan(c).any():
        c = c[~np.isnan(c)]
    if r.size == 0 or c.size == 0:
        return float("nan")
    e = np.unique(np.quantile(r, qs))
    nb = e.size + 1
    rc = np.maximum(np.bincount(_bin_index(e, r), minlength=nb) / r.size, floor)
    cc = np.maximum(np.bincount(_bin_index(e, c), minlength=nb) / c.size, floor)
    return float(np.sum((cc - rc) * np.log(cc / rc)))
