"""A model's data for a business date, from what its manifest entry declares (``policy.models.DataSource``).

``uri``: a Parquet or CSV file (local path or ``file://`` URI; any URI pandas reads) with
``{business_date}`` filled in as ``YYYY-MM-DD``. ``entrypoint``: ``package.module:function``, imported
as installed (releasegate never changes the import path: install the team's package, or run from its project
folder), called with the business date, returning a pandas DataFrame.

Every problem is a ``DataSourceError`` naming the model, the field (``current_inputs`` / ``labels``) and
the rule: a missing file for the date, an unreadable file, an entry point that does not import or does
not return a DataFrame, a frame without a column the model's signature needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from releasegate.errors import Refused
from releasegate.policy.models import DataSource, ModelSpec, manifest_field


class DataSourceError(Refused):
    what = "data source refused"

    def __init__(self, model: str, field: str, rule: str):
        self.model = model
        super().__init__(manifest_field(model, field), rule)


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
        uri = source.uri.replace("{business_date}", day)
        local = _local_path(uri)
        if local is not None and not local.is_file():
            raise DataSourceError(spec.name, field, f"no file for business date {day}: {local}")
        try:
            frame = pd.read_parquet(uri) if uri.split("?")[0].endswith(".parquet") else pd.read_csv(uri)
        except Exception as exc:  # pandas and pyarrow raise many types for an unreadable file
            raise DataSourceError(spec.name, field, f"cannot read {uri}: {type(exc).__name__}: {exc}") from None
    else:
        assert source.entrypoint is not None  # DataSource guarantees exactly one
        module_name, _, func_name = source.entrypoint.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise DataSourceError(
                spec.name, field, f"entrypoint {source.entrypoint} does not import ({exc}); install its package"
            ) from None
        frame = fn(business_date)
        if not isinstance(frame, pd.DataFrame):
            raise DataSourceError(
                spec.name, field, f"entrypoint {source.entrypoint} returned {type(frame).__name__}, not a DataFrame"
            )
    if frame.empty:
        raise DataSourceError(spec.name, field, f"no rows for business date {day}")
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
