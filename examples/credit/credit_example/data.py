"""The example team's data: deterministic "portfolio risk" rows, generated on the machine (no downloads).

Each row is a credit position: exposure, loan-to-value, rating, volatility, sector beta, tenor, leverage,
liquidity, past delinquencies, collateral ratio. The label is a default flag drawn from a logistic
model of those features. ``seed`` makes it reproducible; ``drift`` (0 = none, 1 = strong) shifts the
feature distributions the way a market regime change would (higher volatility and leverage, worse
ratings), so monitoring and gates can be tested on real numbers. ``missing_rate`` blanks values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

FEATURES = (
    "exposure_musd",
    "loan_to_value",
    "rating_notch",
    "volatility",
    "sector_beta",
    "tenor_years",
    "leverage",
    "liquidity_score",
    "past_delinquencies",
    "collateral_ratio",
)
_COEF = np.array([0.15, 2.2, 0.35, 3.0, 0.8, 0.05, 0.6, -1.2, 0.7, -1.5])
_BIAS = -7.6


@dataclass(frozen=True)
class Batch:
    X: np.ndarray  # (rows, len(FEATURES)) float64
    y: np.ndarray  # (rows,) int8 default flags
    features: tuple[str, ...] = FEATURES


def seed_for(business_date: date, salt: int = 0) -> int:
    """A stable seed per business date (and an optional salt), e.g. for the EOD batch of that date."""
    return business_date.toordinal() * 1000 + salt


def generate(rows: int, seed: int, drift: float = 0.0, missing_rate: float = 0.0) -> Batch:
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0.0 <= drift <= 5.0:
        raise ValueError("drift must lie between 0 and 5")
    if not 0.0 <= missing_rate < 1.0:
        raise ValueError("missing_rate must lie in [0, 1)")
    rng = np.random.default_rng(seed)
    X = np.empty((rows, len(FEATURES)))
    X[:, 0] = rng.lognormal(mean=1.0 + 0.3 * drift, sigma=0.8, size=rows)
    X[:, 1] = np.clip(rng.beta(5 + 2 * drift, 4, size=rows), 0, 1.5)
    X[:, 2] = np.clip(np.round(rng.normal(8 + 2.5 * drift, 3, size=rows)), 1, 21)
    X[:, 3] = rng.gamma(shape=2.0, scale=0.08 * (1 + 0.8 * drift), size=rows)
    X[:, 4] = rng.normal(1.0 + 0.2 * drift, 0.3, size=rows)
    X[:, 5] = rng.uniform(0.5, 10, size=rows)
    X[:, 6] = rng.lognormal(mean=0.7 + 0.35 * drift, sigma=0.4, size=rows)
    X[:, 7] = rng.beta(4, 2 + 1.5 * drift, size=rows)
    X[:, 8] = rng.poisson(0.3 + 0.5 * drift, size=rows)
    X[:, 9] = rng.uniform(0.2, 1.6, size=rows) / (1 + 0.3 * drift)
    logits = _BIAS + X @ _COEF + rng.normal(0, 0.5, size=rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(np.int8)
    if missing_rate > 0:
        X[rng.random(X.shape) < missing_rate] = np.nan
    return Batch(X=X, y=y)


def _day(business_date: date) -> Batch:
    """The business date's generated rows: ``CREDIT_EXAMPLE_ROWS`` of them (default 5000), shifted by
    ``RELEASEGATE_MARKET_DRIFT`` (the demo's and the tests' knob for a market regime change)."""
    import os

    rows = int(os.environ.get("CREDIT_EXAMPLE_ROWS", "5000") or 5000)
    drift = float(os.environ.get("RELEASEGATE_MARKET_DRIFT", "0") or 0)
    return generate(rows, seed=seed_for(business_date, 17), drift=drift)


def current_inputs(business_date: date) -> Any:
    """The model's ``current_inputs`` (entry point ``credit_example.data:current_inputs``): the business
    date's generated prod inputs as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(_day(business_date).X, columns=list(FEATURES))


def labels(business_date: date) -> Any:
    """The model's ``labels`` (entry point ``credit_example.data:labels``): the default flags of the same
    rows as ``current_inputs``, column ``label``, one per input row in the same order."""
    import pandas as pd

    return pd.DataFrame({"label": _day(business_date).y})
