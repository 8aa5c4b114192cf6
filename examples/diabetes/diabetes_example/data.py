"""The team's data step: inputs and labels of a business date as Parquet files.

``<folder>/inputs/<YYYY-MM-DD>.parquet`` (the ten diabetes features) and
``<folder>/labels/<YYYY-MM-DD>.parquet`` (column ``target``), one row per patient visit: a day's visits are
the 142 patients of scikit-learn's bundled diabetes data that the training (``training.py``) holds out, in
an order seeded by the date. ``shift`` moves every feature
by that many standard deviations: a population change, for the drift demonstration.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

TRAIN_ROWS = 300  # training.py fits on the first 300 patients and measures its rmse on the other 142


def dataset() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    return data.data, data.target


def folder() -> Path:
    """Where the data lives: ``$DIABETES_DATA`` (what the manifest's URIs expand)."""
    return Path(os.environ.get("DIABETES_DATA", "diabetes-data"))


def write_day(business_date: date, shift: float = 0.0, root: Path | None = None) -> Path:
    X, y = dataset()
    root = root or folder()
    (root / "inputs").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    # The patients the model never saw, the rows its registered rmse was measured on: an unchanged day then
    # scores exactly that rmse on every calendar date. (A seeded draw of 300 visits from all patients moved
    # the day's rmse by up to 19 %, past the rollback tree's 5 % band on about one date in five, so the
    # demo's EOD verdict depended on the day it ran.)
    idx = TRAIN_ROWS + np.random.default_rng(business_date.toordinal()).permutation(len(X) - TRAIN_ROWS)
    inputs = X.iloc[idx].reset_index(drop=True)
    if shift:
        inputs = inputs + shift * X.std()
    path = root / "inputs" / f"{business_date.isoformat()}.parquet"
    inputs.to_parquet(path)
    y.iloc[idx].reset_index(drop=True).to_frame("target").to_parquet(root / "labels" / f"{business_date}.parquet")
    return path


def write_days(days: Iterable[date], root: Path | None = None) -> list[Path]:
    return [write_day(d, root=root) for d in days]
