"""releasegate: the governance layer that decides when ML jobs run and whether a model may reach production.

The public surface for a team's own code:

* ``releasegate.governed(deployment, gate=False, project_dir=None, **flow_kwargs)``: a decorator that
  makes any function a Prefect flow under its deployment's runtime policy and late-run rule (from the
  prefect.yaml of the flow's project), optionally behind the capacity gateway;
* ``releasegate.evidence.log_reference_profile(X_train)`` / ``log_sklearn_version(...)``: what training
  code logs for the gates;
* ``releasegate.submit_candidate(model, version, producer=..., checks_ok=..., summary=...)``: a team's
  job hands a staging version to releasegate (records its verdict; a good one is put up for promotion);
  ``releasegate.already_rejected(model, flow_run_id)`` lets a retried job stop early.

Inside, the folder says the role of a module (docs/reference/layout.md): ``policy/`` pure rules, ``store/``,
``services/``, ``adapters/`` (the only library code that imports Prefect or MLflow), ``cli/``, ``tools/``.
"""

import os as _os
from typing import TYPE_CHECKING

# Nothing may reach the internet at run time: telemetry of Prefect and MLflow is off unless the
# operator explicitly turns it on. Set before either library is imported anywhere in the process.
_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
_os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
_os.environ.setdefault("DO_NOT_TRACK", "1")

__version__ = "0.1.0"  # the one source of the version (pyproject.toml reads it)

__all__ = ["__version__", "already_rejected", "governed", "submit_candidate"]

if TYPE_CHECKING:  # what type checkers see; at run time the names load lazily below
    from releasegate.jobs import already_rejected, governed, submit_candidate


def __getattr__(name: str):  # lazy: importing releasegate must not import Prefect (4-7 s)
    if name in ("governed", "submit_candidate", "already_rejected"):
        from releasegate import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module 'releasegate' has no attribute {name!r}")
