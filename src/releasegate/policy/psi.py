"""Population stability index, per feature, vectorised (numpy).

Bins come from the reference sample's quantiles (``bins`` equal-mass bins; the outer edges open to
±inf), empty bins get a small ``floor`` share so the log stays finite:

    PSI = Σ_bins (cur% − ref%) · ln(cur% / ref%)

Missing values are left out of both samples. Rule of thumb (the seeds'): < 0.1 stable, 0.1–0.2
moderate, > 0.2 significant shift, > 0.3 urgent. Pure module.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict

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
    qs = _quantiles(bins)

    def column(j: int) -> float:
        # One contiguous copy per feature: column slices of a C-ordered array are strided and slow.
        r, c = _present(np.ascontiguousarray(ref[:, j])), _present(np.ascontiguousarray(cur[:, j]))
        if r.size == 0 or c.size == 0:
            return float("nan")
        e = _edges(r, qs)
        return _psi_of_shares(_shares(e, r), _shares(e, c), floor)

    return _per_column(ref.shape[1], ref.size + cur.size, column)


_PARALLEL_MIN_VALUES = 2_000_000


def _per_column(n: int, values: int, column: Callable[[int], float]) -> np.ndarray:
    """``column(j)`` for every feature; in threads for large inputs: numpy releases the GIL in the copies,
    the partition, the comparisons and the arithmetic (1 M x 20 on 2 cores: 1.04 s serial ->
    bench/psi_bench.py). Same arithmetic per column, same results."""
    workers = min(n, os.cpu_count() or 1)
    if workers > 1 and values >= _PARALLEL_MIN_VALUES:
        with ThreadPoolExecutor(workers) as pool:
            return np.array(list(pool.map(column, range(n))))
    return np.array([column(j) for j in range(n)])


def _quantiles(bins: int) -> np.ndarray:
    if bins < 2:
        raise ValueError("bins must be at least 2")
    return np.linspace(0, 1, bins + 1)[1:-1]


def _present(x: np.ndarray) -> np.ndarray:
    """``x`` without its missing values (left out of both samples)."""
    return x[~np.isnan(x)] if np.isnan(x).any() else x


def _edges(r: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """The inner bin edges: the reference's quantiles, each once."""
    return np.unique(np.quantile(r, qs))


def _shares(e: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The share of ``x`` (non-empty, no NaN) in each of the ``len(e) + 1`` bins."""
    return np.bincount(_bin_index(e, x), minlength=e.size + 1) / x.size


def _psi_of_shares(ref: np.ndarray, cur: np.ndarray, floor: float) -> float:
    rc, cc = np.maximum(ref, floor), np.maximum(cur, floor)
    return float(np.sum((cc - rc) * np.log(cc / rc)))


# -- a reference profile, computed once per model version ---------------------------------------------
class ReferenceProfile(BaseModel):
    """Per-feature bin edges and reference shares of a training set: drift is then ``psi_against`` the
    profile, so the training data is never read again (``releasegate.evidence`` logs it with the run)."""

    model_config = ConfigDict(frozen=True)

    features: list[str]
    edges: list[list[float]]  # per feature, the inner quantile edges (outer bins open to ±inf)
    shares: list[list[float]]  # per feature, the reference share of each bin (len(edges) + 1)
    rows: int
    floor: float = DEFAULT_FLOOR


def reference_profile(
    reference: np.ndarray, features: Sequence[str], bins: int = DEFAULT_BINS, floor: float = DEFAULT_FLOOR
) -> ReferenceProfile:
    ref = np.asarray(reference, dtype=np.float64)
    if ref.ndim != 2 or ref.shape[1] != len(features):
        raise ValueError(f"reference must have one column per feature ({len(features)}), has shape {ref.shape}")
    qs = _quantiles(bins)
    edges, shares = [], []
    for j in range(ref.shape[1]):
        r = _present(ref[:, j])
        e = _edges(r, qs) if r.size else np.array([])
        edges.append([float(v) for v in e])
        shares.append([float(v) for v in (_shares(e, r) if r.size else np.zeros(e.size + 1))])
    return ReferenceProfile(features=list(features), edges=edges, shares=shares, rows=int(ref.shape[0]), floor=floor)


def psi_against(profile: ReferenceProfile, current: np.ndarray) -> np.ndarray:
    """PSI per feature of ``current`` (columns in ``profile.features`` order) against the profile; the
    same arithmetic as ``psi`` with the profile's edges. NaN for a feature with no values on either side."""
    cur = np.asarray(current)  # kept in its dtype (float32 halves the memory of 1 M x 500): one column at a time
    if cur.ndim != 2 or cur.shape[1] != len(profile.features):
        raise ValueError(f"current must have the profile's {len(profile.features)} columns, has shape {cur.shape}")

    def column(j: int) -> float:
        c = _present(np.ascontiguousarray(cur[:, j], dtype=np.float64))
        ref_shares = np.asarray(profile.shares[j])
        if c.size == 0 or not ref_shares.sum():
            return float("nan")
        return _psi_of_shares(ref_shares, _shares(np.asarray(profile.edges[j]), c), profile.floor)

    return _per_column(cur.shape[1], cur.size, column)


# -- how large a PSI sampling noise alone gives ---------------------------------------------------------
# Two samples of one population still differ: a feature's PSI over B bins between n current rows and
# the m reference rows its bins were cut from is ≈ (1/n + 1/m)·χ²(B − 1), a mean of (B − 1)(1/n + 1/m)
# (0.096 for deciles at n = 120, m = 426). With few rows per bin the log makes PSI's upper tail heavier
# than that chi-square (a bin with 1 row of an expected 12 adds 0.23 on its own), so the critical value
# below is the chi-square one only when every bin expects ≥ CHI2_MIN_EXPECTED rows on both sides, and
# otherwise the quantile of PSI itself - the same arithmetic, floor included - over NULL_DRAWS samples
# drawn under "same population" (bin masses ~ Dirichlet(m·shares), rows ~ Multinomial(n, masses)),
# seeded by the inputs so the same sample always gets the same answer (cached: ~0.5 s per new shape).
CHI2_MIN_EXPECTED = 50
NULL_DRAWS = 100_000


def critical_psi(
    rows: int, reference_rows: int | None, shares: Sequence[float], level: float, floor: float = DEFAULT_FLOOR
) -> float:
    """The PSI that one feature exceeds with probability ``level`` when ``rows`` current rows and the
    ``reference_rows`` rows its bins (reference ``shares``) were cut from come from the same population.
    ``reference_rows`` None: the reference shares are exact (no reference noise)."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    # PSI's null distribution does not depend on the bins' order, nor on a share's third decimal: one
    # simulation serves every feature of a profile cut into (nearly) equal-mass bins
    key = tuple(sorted(round(float(s), 2 if s >= 0.02 else 3) for s in shares if s > 0))
    if len(key) < 2:
        return 0.0  # one bin: every sample has the same shares, PSI 0
    return _critical(int(rows), None if reference_rows is None else int(reference_rows), key, float(level), floor)


@lru_cache(maxsize=512)
def _critical(n: int, m: int | None, shares: tuple[float, ...], level: float, floor: float) -> float:
    s = np.asarray(shares) / sum(shares)
    smallest = float(s.min()) * min(n, m if m is not None else n)
    if smallest >= CHI2_MIN_EXPECTED:
        from scipy.stats import chi2

        return float((1 / n + (1 / m if m else 0.0)) * chi2.isf(level, s.size - 1))
    seed = int.from_bytes(hashlib.sha256(repr((n, m, shares, level, floor)).encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    draws = min(NULL_DRAWS, 10_000_000 // s.size)  # memory: a few arrays of draws x bins
    if m is None:
        masses = np.broadcast_to(s, (draws, s.size))
    else:
        g = rng.gamma(np.maximum(m * s, 0.5), size=(draws, s.size))
        masses = g / g.sum(axis=1, keepdims=True)
    cur = rng.multinomial(n, masses) / n
    ref, cc = np.maximum(s, floor), np.maximum(cur, floor)
    values = np.sum((cc - ref) * np.log(cc / ref), axis=1)
    return float(np.quantile(values, 1 - level))


def present_rows(current: np.ndarray) -> int:
    """n of a batch for the drift rule: the fewest present (non-NaN) values of a column that has any (a
    column with none has no PSI and is not judged)."""
    a = np.asarray(current, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    counts = (~np.isnan(a)).sum(axis=0)
    counts = counts[counts > 0]
    return int(counts.min()) if counts.size else 0


def per_feature_level(false_alarm_rate: float, features: int) -> float:
    """Šidák: the level per feature that gives ``false_alarm_rate`` for the max over ``features``
    independent features (≥ the Bonferroni ``false_alarm_rate / features``; correlated features make
    the whole slightly more cautious, never less)."""
    if not 0 < false_alarm_rate < 1:
        raise ValueError(f"false_alarm_rate must lie in (0, 1), got {false_alarm_rate}")
    return float(1 - (1 - false_alarm_rate) ** (1 / max(features, 1)))
