"""A model's data for a business date, from what its manifest entry declares (``policy.models.DataSource``).

``uri``: a Parquet or CSV file (local path or ``file://`` URI; any URI pandas reads) with
``{business_date}`` filled in as ``YYYY-MM-DD``, ``${VAR}`` from the environment and ``~`` expanded.
``entrypoint``: ``package.module:function``, imported as installed (releasegate never changes the import
path: install the team's package, or run from its project folder), called with the business
date, returning a pandas DataFrame.

Every problem is a ``DataSourceError`` naming the model, the field (``current_inputs`` / ``labels``) and
the rule (``NoDataForDate`` when the date has no data: no file, no rows, a ``FileNotFoundError`` from the
entry point): a missing file for the date, an unreadable file, an entry point that does not import or does
not return a DataFrame, a frame without a column the model's signature needs.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from releasegate.errors import Refused
from releasegate.policy.models import DataSource, ModelSpec, manifest_field


class DataSourceError(Refused):
    """A data problem no retry fixes (a missing column, an entry point that does not import...)."""

    what = "data source refused"
    retryable = False

    def __init__(self, model: str, field: str, rule: str):
        self.model = model
        super().__init__(manifest_field(model, field), rule)


class NoDataForDate(DataSourceError):
    """No data for a business date (no file for it, no rows in it, or the entry point found none): the
    date's own outcome, unlike a file that is there and wrong. A late file may still arrive, so the
    runtime policy's retries apply."""

    what = "no data for the business date"
    retryable = True


class DataNotReady(DataSourceError):
    """The date's file is there but cannot be read (still being written): a later attempt may read it,
    so the runtime policy's retries apply."""

    retryable = True


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme == "file" else uri)
    return None


def load_frame(spec: ModelSpec, field: str, business_date: date) -> Any:
    """The DataFrame ``spec.<field>`` declares for ``business_date`` (``field``: current_inputs | labels)."""
    import pandas as pd

    source: DataSource | None = getattr(spec, field)
    if source is None:
        raise DataSourceError(spec.name, field, "not declared in the model manifest (blocks/models.yaml)")
    day = business_date.isoformat()
    if source.uri is not None:
        uri = os.path.expanduser(os.path.expandvars(source.uri.replace("{business_date}", day)))
        unset = re.findall(r"\$\{?(\w+)", uri)
        if unset:
            raise DataSourceError(spec.name, field, f"environment variable {unset[0]} in the uri is not set")
        local = _local_path(uri)
        if local is not None and not local.is_file():
            raise NoDataForDate(spec.name, field, f"no file for business date {day}: {local}")
        try:
            frame = pd.read_parquet(uri) if uri.split("?")[0].endswith(".parquet") else pd.read_csv(uri)
        except Exception as exc:  # pandas and pyarrow raise many types for an unreadable file
            raise DataNotReady(spec.name, field, f"cannot read {uri}: {type(exc).__name__}: {exc}") from None
    else:
        assert source.entrypoint is not None  # DataSource guarantees exactly one
        module_name, _, func_name = source.entrypoint.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise DataSourceError(
                spec.name, field, f"entrypoint {source.entrypoint} does not import ({exc}); install its package"
            ) from None
        try:
            frame = fn(business_date)
        except FileNotFoundError as exc:  # the team's own reader found no file for the date
            raise NoDataForDate(spec.name, field, f"no data for business date {day}: {exc}") from None
        if not isinstance(frame, pd.DataFrame):
            raise DataSourceError(
                spec.name, field, f"entrypoint {source.entrypoint} returned {type(frame).__name__}, not a DataFrame"
            )
    if frame.empty:
        raise NoDataForDate(spec.name, field, f"no rows for business date {day}")
    return frame


def require_columns(spec: ModelSpec, field: str, frame: Any, columns: Sequence[str]) -> None:
    """Refuse a frame that lacks a column the model needs (its signature's inputs, or the label)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataSourceError(
            spec.name,
            field,
            f"missing column(s) {', '.join(missing)} that the model's signature (or label_column) requires",
        )


class BusinessBatch:
    """A business date's inputs (only the model's feature columns, in its order) and labels (or None)."""

    def __init__(self, business_date: date, X: Any, y: Any, features: list[str], label_source: str | None):
        self.business_date, self.X, self.y, self.features, self.label_source = (
            business_date,
            X,
            y,
            features,
            label_source,
        )

    @property
    def rows(self) -> int:
        return len(self.X)


def as_float(frame: Any) -> Any:
    """A frame as a float matrix for the monitoring checks (a non-numeric value counts as missing)."""
    import pandas as pd

    try:
        return frame.to_numpy(dtype=float)
    except (TypeError, ValueError):
        return frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


def load_batch(spec: ModelSpec, business_date: date, features: Sequence[str] | None, rows: int | None = None):
    """The day's ``current_inputs`` (restricted to ``features``; None: every column but the label) and
    labels: ``labels`` when declared (one row per input row, same order), else the inputs' own
    ``label_column`` when present, else None (the KPI is then not measured that day)."""
    frame = load_frame(spec, "current_inputs", business_date)
    if rows is not None:
        frame = frame.head(rows)
    cols = list(features) if features else [c for c in frame.columns if c != spec.label_column]
    require_columns(spec, "current_inputs", frame, cols)
    y, source = None, None
    if spec.labels is not None:
        labels = load_frame(spec, "labels", business_date)
        if rows is not None:
            labels = labels.head(rows)
        require_columns(spec, "labels", labels, [spec.label_column])
        if len(labels) != len(frame):
            raise DataSourceError(
                spec.name,
                "labels",
                f"{len(labels)} label rows for {len(frame)} input rows on {business_date.isoformat()}: "
                "give one label per input row, in the same order",
            )
        y, source = labels[spec.label_column].to_numpy(dtype=float), "labels"
    elif spec.label_column in frame.columns:
        y, source = frame[spec.label_column].to_numpy(dtype=float), "current_inputs"
    return BusinessBatch(business_date, frame[cols].reset_index(drop=True), y, cols, source)
