"""Metrics and their direction: which way is better for each KPI a model is judged by.

Every comparison of a metric (the +2 % KPI gate, the EOD metric drop, the retrain KPI drop) goes
through ``relative_gain`` / ``relative_drop`` with the metric's direction, so a lower-is-better KPI
(``rmse``) is judged the right way round. The catalogue names the usual ones; a model manifest entry may
name any other metric with its ``direction`` (``policy.models.Kpi``). Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import numpy as np

from releasegate.errors import ReleasegateError


class Direction(StrEnum):
    higher_better = "higher"
    lower_better = "lower"


CATALOGUE: dict[str, Direction] = {
    **dict.fromkeys(
        ("roc_auc", "accuracy", "f1", "precision", "recall", "r2", "average_precision", "gini", "ks"),
        Direction.higher_better,
    ),
    **dict.fromkeys(
        ("rmse", "mse", "mae", "mape", "log_loss", "brier_score", "median_absolute_error"), Direction.lower_better
    ),
}


class UnknownMetric(ReleasegateError, ValueError):
    """A metric whose direction (higher or lower is better) is not known."""


def direction_of(metric: str, given: Direction | None = None) -> Direction:
    """``given`` when set, else the catalogue's; a metric in neither is refused (say which way is better)."""
    if given is not None:
        return given
    try:
        return CATALOGUE[metric]
    except KeyError:
        raise UnknownMetric(
            f"metric {metric!r} is not in the catalogue ({', '.join(sorted(CATALOGUE))}): give its direction "
            "(higher or lower is better)"
        ) from None


def relative_gain(candidate: float, reference: float, direction: Direction) -> float:
    """How much better ``candidate`` is than ``reference``, relative (0.03 = 3 % better; negative = worse)."""
    if reference == 0:  # no relative scale: any change is "infinitely" better or worse, in its direction
        if candidate == reference:
            return 0.0
        better = candidate > reference if direction is Direction.higher_better else candidate < reference
        return float("inf") if better else float("-inf")
    delta = (candidate - reference) / abs(reference)
    return delta if direction is Direction.higher_better else -delta


def relative_drop(current: float | None, baseline: float | None, direction: Direction) -> float | None:
    """How much worse ``current`` is than ``baseline``, relative (positive = worse); None when unknown.

    Rounded to 12 digits so a drop of exactly a threshold (0.76 vs 0.80 = 5 %) is not pushed over it by
    binary floating point."""
    if current is None or not baseline:
        return None
    return round(-relative_gain(current, baseline, direction), 12)


# -- computing a metric from labels and predictions ------------------------------------------------------
Metric = Callable[[np.ndarray, np.ndarray], float]


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


def _mse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((y - p) ** 2))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - p) ** 2)) / total if total else 0.0


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney U over average ranks (ties share their rank): equals sklearn's roc_auc_score."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype=float)
    sorted_p = p[order]
    bounds = np.flatnonzero(np.diff(sorted_p)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(p)]))
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    """Binary: a probability (or a 0/1 label) of at least 0.5 predicts class 1."""
    return float(np.mean((y >= 0.5) == (p >= 0.5)))


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    pred, truth = p >= 0.5, y >= 0.5
    tp = float(np.sum(pred & truth))
    denom = float(np.sum(pred) + np.sum(truth))
    return 2 * tp / denom if denom else 0.0


FUNCTIONS: dict[str, Metric] = {
    "rmse": _rmse,
    "mae": _mae,
    "mse": _mse,
    "r2": _r2,
    "roc_auc": _roc_auc,
    "accuracy": _accuracy,
    "f1": _f1,
}


def register_metric(name: str, direction: Direction, fn: Metric) -> None:
    """A team's own metric: ``fn(labels, predictions) -> float`` and which way is better."""
    CATALOGUE[name] = direction
    FUNCTIONS[name] = fn


def compute(metric: str, labels: np.ndarray, predictions: np.ndarray) -> float:
    """``metric`` over the rows where both labels and predictions are known."""
    try:
        fn = FUNCTIONS[metric]
    except KeyError:
        raise UnknownMetric(
            f"metric {metric!r} has no function here ({', '.join(sorted(FUNCTIONS))}): register one with "
            "releasegate.policy.metrics.register_metric(name, direction, fn)"
        ) from None
    y, p = np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float)
    ok = np.isfinite(y) & np.isfinite(p)
    return fn(y[ok], p[ok]) if ok.any() else float("nan")
