"""Population stability index, per feature, vectorised (numpy).

Bins come from the reference sample's quantiles (``bins`` equal-mass bins; the outer edges open to
±inf), empty bins get a small ``floor`` share so the log stays finite:

    PSI = Σ_bins (cur% − ref%) · ln(cur% / ref%)

Missing values are left out of both samples. Rule of thumb (the seeds'): < 0.1 stable, 0.1–0.2
moderate, > 0.2 significant shift, > 0.3 urgent. Pure module.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BINS = 10
DEFAULT_FLOOR = 1e-4


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    qs = np.nanquantile(reference, np.linspace(0, 1, bins + 1)[1:-1], axis=0)  # (bins-1, features)
    return qs


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
    edges = _edges(ref, bins)  # (bins-1, k)
    k = ref.shape[1]
    out = np.empty(k)
    for j in range(k):  # per feature: searchsorted is vectorised over rows
        e = np.unique(edges[:, j])
        r = ref[:, j][~np.isnan(ref[:, j])]
        c = cur[:, j][~np.isnan(cur[:, j])]
        if r.size == 0 or c.size == 0:
            out[j] = np.nan
            continue
        nb = e.size + 1
        rc = np.bincount(np.searchsorted(e, r, side="right"), minlength=nb) / r.size
        cc = np.bincount(np.searchsorted(e, c, side="right"), minlength=nb) / c.size
        rc = np.maximum(rc, floor)
        cc = np.maximum(cc, floor)
        out[j] = float(np.sum((cc - rc) * np.log(cc / rc)))
    return out
