"""The example team's training: generated portfolio-risk data, scikit-learn, logged through releasegate's
public helper ``releasegate.evidence.log_sklearn_version`` (``log_and_register``).

``train`` fits a median-imputer → standard-scaler → logistic-regression pipeline on a deterministic
batch and returns it with its holdout metrics. (These are types that skops, MLflow's sklearn format,
loads without widening trust; tree ensembles would need their node types trusted explicitly.)

Knobs: ``drift`` shifts the training data (see ``credit_example.data``); ``without`` blanks features the model may
not use, like a data source an older model did not have, which makes a version measurably weaker;
``label_noise`` flips a share of the training labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from credit_example.data import FEATURES, Batch, generate


@dataclass
class TrainResult:
    model: Pipeline
    metrics: dict[str, float]
    params: dict[str, str]
    train: Batch
    holdout: Batch = field(repr=False)


def train(
    seed: int,
    rows: int = 4000,
    drift: float = 0.0,
    label_noise: float = 0.0,
    max_iter: int = 500,
    without: tuple[str, ...] = (),
) -> TrainResult:
    """``without`` names features the model may not use (blanked before fitting), e.g. data sources an
    older model did not have; the model keeps the full input schema so it scores the same batches."""
    unknown = set(without) - set(FEATURES)
    if unknown:
        raise ValueError(f"without: unknown features {sorted(unknown)}")
    batch = generate(rows, seed=seed, drift=drift)
    holdout = generate(max(1000, rows // 4), seed=seed + 1_000_003, drift=drift)
    y = batch.y.copy()
    if label_noise > 0:
        flip = np.random.default_rng(seed + 7).random(y.size) < label_noise
        y[flip] = 1 - y[flip]
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=max_iter, random_state=seed),
    )
    X = batch.X.copy()
    X[:, [FEATURES.index(f) for f in without]] = np.nan  # blanked: the imputer turns them into constants
    model.fit(X, y)
    proba = model.predict_proba(holdout.X)[:, 1]
    metrics = {
        "roc_auc": float(roc_auc_score(holdout.y, proba)),
        "accuracy": float(accuracy_score(holdout.y, proba >= 0.5)),
        "default_rate": float(holdout.y.mean()),
        "rows": float(rows),
    }
    params = {
        "seed": str(seed),
        "rows": str(rows),
        "drift": str(drift),
        "label_noise": str(label_noise),
        "max_iter": str(max_iter),
        "features": ",".join(f for f in FEATURES if f not in without),
    }
    return TrainResult(model=model, metrics=metrics, params=params, train=batch, holdout=holdout)


def log_and_register(
    result: TrainResult,
    model: str,
    env: str = "staging",
    data_timestamp: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> str:
    """Log ``result`` with its reference profile, input example and lineage; register ``<env>.<model>``."""
    from releasegate.evidence import log_sklearn_version

    X = np.asarray(result.holdout.X)
    return log_sklearn_version(
        result.model,
        model,
        env,
        X_train=result.train.X,
        features=list(FEATURES),
        # what the smoke test scores (and the signature MLflow infers from it): complete rows only
        input_example=X[~np.isnan(X).any(axis=1)][:5],
        params=result.params,
        metrics=result.metrics,
        data_timestamp=data_timestamp,
        extra_tags=extra_tags,
        # The imputer keeps its fit dtype; a numpy.dtype holds no code. Nothing else is trusted.
        skops_trusted_types=["numpy.dtype"],
    )
