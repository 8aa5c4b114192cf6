"""What an MLflow run says about the data a model was trained on (``mlflow.log_input`` datasets, tags)."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["training_data"]

_ISO_DATE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(?!\d)")


def training_data(version_tags: dict[str, str], run: Any) -> tuple[str | None, list[str]]:
    """The training data's timestamp and the datasets the run logged (``mlflow.log_input``).

    The timestamp: a ``data_timestamp`` tag of the version, else of its run, else of a training dataset
    input (``mlflow.log_input(ds, context="training", tags={"data_timestamp": ...})``), else the date in a
    training dataset's source or name (``.../2026-11-20.csv``); None when nothing says."""
    run_tags = dict(run.data.tags) if run is not None else {}
    inputs = list(run.inputs.dataset_inputs) if run is not None and run.inputs is not None else []

    def context(i: Any) -> str:
        return next((t.value for t in i.tags if t.key == "mlflow.data.context"), "")

    inputs.sort(key=lambda i: context(i) != "training")  # training data first
    datasets, stamp = [], version_tags.get("data_timestamp") or run_tags.get("data_timestamp")
    for i in inputs:
        ds = i.dataset
        try:
            source = json.loads(ds.source)
        except ValueError:
            source = ds.source
        where = next(iter(source.values())) if isinstance(source, dict) and len(source) == 1 else source
        datasets.append(f"{ds.name}@{ds.digest} ({context(i) or 'no context'}) from {where}")
        tag = next((t.value for t in i.tags if t.key == "data_timestamp"), None)
        found = _ISO_DATE.search(f"{where} {ds.name}")
        stamp = stamp or tag or (found.group(1) if found and context(i) in ("training", "") else None)
    return stamp, datasets
