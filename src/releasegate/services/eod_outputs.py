"""What an EOD scoring run writes beside the decision log: the day's predictions, one CSV a model and
business date (``services.eod.score_business_date``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from releasegate.policy.models import ModelSpec


def write_outputs(home: Path, spec: ModelSpec, day, y, c_pred, ch_pred, served, mask) -> Path:
    """The day's predictions beside the home (``scoring/<model>/<date>/predictions.csv``): each row, who
    served it, both models' predictions and the label when known."""
    import pandas as pd

    folder = home / "scoring" / spec.name / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "predictions.csv"
    pd.DataFrame(
        {
            "row": np.arange(len(c_pred)),
            "served_by_challenger": mask.astype(int),
            "served": served,
            "champion": c_pred,
            "challenger": ch_pred,
            spec.label_column: y if y is not None else np.full(len(c_pred), np.nan),
        }
    ).to_csv(path, index=False, float_format="%.6f")
    return path
