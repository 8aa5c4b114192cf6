"""Metrics and their direction: which way is better for each KPI a model is judged by.

Every comparison of a metric (the +2 % KPI gate, the EOD metric drop, the retrain KPI drop) goes
through ``relative_gain`` / ``relative_drop`` with the metric's direction, so a lower-is-better KPI
(``rmse``) is judged the right way round. The catalogue names the usual ones; a model manifest entry may
name any other metric with its ``direction`` (``policy.models.Kpi``). Pure.
"""

from __future__ import annotations

from enum import StrEnum


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


class UnknownMetric(ValueError):
    pass


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
    if reference == 0:
        return float("inf") if candidate != reference else 0.0
    delta = (candidate - reference) / abs(reference)
    return delta if direction is Direction.higher_better else -delta


def relative_drop(current: float | None, baseline: float | None, direction: Direction) -> float | None:
    """How much worse ``current`` is than ``baseline``, relative (positive = worse); None when unknown.

    Rounded to 12 digits so a drop of exactly a threshold (0.76 vs 0.80 = 5 %) is not pushed over it by
    binary floating point."""
    if current is None or not baseline:
        return None
    return round(-relative_gain(current, baseline, direction), 12)
