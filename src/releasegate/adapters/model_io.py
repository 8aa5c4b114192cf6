"""Load any logged model and predict the way its manifest entry says (``ModelSpec.prediction``).

Loading goes through ``mlflow.pyfunc`` (what serving uses, any flavour); ``predict`` calls the pyfunc,
which enforces the model's own signature; ``predict_proba:<k>`` takes column ``k`` of the underlying
model's ``predict_proba`` (MLflow's pyfunc of a scikit-learn model serves ``predict``; the raw model is
``get_raw_model()``). The features a model reads come from its signature's input names; a model logged
with a tensor signature (a numpy ``input_example``) names none, and then the features profiled at
training (``releasegate.evidence``) say which columns, in which order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from releasegate.errors import Refused


class PredictionRefused(Refused):
    what = "prediction refused"


class Predictor:
    """One registered model version (``model``: loaded through pyfunc, ``ModelRegistry.load_pyfunc``),
    ready to score DataFrames of its inputs."""

    def __init__(self, model: Any, uri: str, prediction: str, *, field: str = "predict"):
        self.uri, self.prediction, self.field = uri, prediction, field
        self._model = model
        schema = self._model.metadata.get_input_schema()
        self.signature_features: list[str] | None = (
            list(schema.input_names()) if schema is not None and schema.has_input_names() else None
        )
        self._column: int | None = None
        self._raw: Any = None
        if prediction.startswith("predict_proba:"):
            self._column = int(prediction.split(":", 1)[1])
            self._raw = self._model.get_raw_model()
            if not hasattr(self._raw, "predict_proba"):
                raise PredictionRefused(
                    field,
                    f"'{prediction}' but {uri} ({type(self._raw).__name__}) has no predict_proba: "
                    "set predict: predict (or task: regression)",
                )

    def features(self, profiled: Sequence[str] | None) -> list[str] | None:
        """The columns the model reads: its signature's names, else the profiled features (None: unknown)."""
        return self.signature_features or (list(profiled) if profiled else None)

    def predict(self, frame: Any) -> np.ndarray:
        """One prediction per row (float); raises what the model raises."""
        if self._column is None:
            data = frame if self.signature_features else frame.to_numpy(dtype=float)
            out = np.asarray(self._model.predict(data), dtype=float)
            return out.reshape(len(frame), -1)[:, 0] if out.ndim > 1 else out
        raw = self._raw
        data = frame if hasattr(raw, "feature_names_in_") else frame.to_numpy(dtype=float)
        return np.asarray(raw.predict_proba(data), dtype=float)[:, self._column]

    def score(self, frame: Any, chunk_rows: int) -> tuple[np.ndarray, int, list[float]]:
        """Score in chunks like a batch server would: (predictions, failed rows, latency per chunk in ms).

        A chunk that raises counts all its rows as failed (NaN); so does a non-finite prediction."""
        out = np.full(len(frame), np.nan)
        lat: list[float] = []
        for start in range(0, len(frame), chunk_rows):
            part = frame.iloc[start : start + chunk_rows]
            t0 = time.perf_counter()
            try:
                out[start : start + len(part)] = self.predict(part)
            except Exception:  # noqa: BLE001 - any model error is a failed chunk, counted below
                pass
            lat.append((time.perf_counter() - t0) * 1000)
        return out, int((~np.isfinite(out)).sum()), lat
