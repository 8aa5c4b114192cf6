"""One MLflow for a governed run: the store it logs to and the lineage its runs carry.

``releasegate.governed`` runs the flow's body inside ``run_scope``:

* **the store**: MLflow's own ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` are releasegate's
  (``RELEASEGATE_MLFLOW_TRACKING_URI`` / ``_REGISTRY_URI``, or the home's SQLite store), so a team's
  ``mlflow.sklearn.log_model(...)`` registers where the gates look, not in ``./mlflow.db`` of the
  worker's folder. A run whose environment names another store (``conflict``), or whose code pointed
  MLflow elsewhere (``moved_elsewhere``, e.g. ``mlflow.set_tracking_uri``), is refused with what to set.
* **the lineage**: every MLflow run started inside the body (``mlflow.start_run``, what ``log_model``
  starts) is tagged through MLflow's documented ``MLFLOW_RUN_CONTEXT`` with the commit of the git
  checkout that holds the flow's source file (``mlflow.source.git.commit`` and ``git_sha``) and the
  Prefect flow run. A worker runs flows through Prefect's engine, so MLflow's own git context sees
  the engine's file, never the team's repository.

Env vars are process-wide: a worker runs each flow run in a process of its own. In one process (tests,
the demo's in-process worker), runs that overlap share one context: the latest entered wins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from releasegate.settings import Settings

TRACKING, REGISTRY, RUN_CONTEXT = "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_CONTEXT"
_lock = threading.Lock()
_fluent = threading.RLock()  # one block at a time through MLflow's process-wide URIs (pointed_at)
_applied: dict[str, set[str]] = {}  # every URI releasegate itself gave MLflow in this process (not a user's choice)
_active: list[dict[str, str]] = []  # the lineage tags of the governed runs inside this process, in entry order
_base_context: str | None = None  # MLFLOW_RUN_CONTEXT as it was before the first of them


def wanted() -> dict[str, str]:
    """MLflow's own variables for releasegate's store."""
    s = Settings()
    return {TRACKING: s.resolved_tracking_uri, REGISTRY: s.resolved_registry_uri}


def _same(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def applied(values: dict[str, str]) -> None:
    """Note URIs releasegate itself gave MLflow (``mlflow_registry`` sets them process-wide), so that a
    later run does not take them for an operator's choice."""
    with _lock:
        for var, uri in values.items():
            _applied.setdefault(var, set()).add(uri.strip().rstrip("/"))


def conflict() -> str | None:
    """Why this process's environment points MLflow at another store than releasegate's, or None."""
    for var, want in wanted().items():
        have = os.environ.get(var)
        if have and not _same(have, want) and have.strip().rstrip("/") not in _applied.get(var, set()):
            return (
                f"{var} is {have!r} but releasegate's registry is {want!r}: models logged there are "
                f"outside releasegate. Set {var}={want} in the worker's environment (`releasegate up` "
                f"writes it into stack.env), or unset it"
            )
    return None


def moved_elsewhere() -> str | None:
    """Why MLflow points elsewhere after the run's code ran (``mlflow.set_tracking_uri`` in it), or None."""
    if "mlflow" not in sys.modules:
        return None
    import mlflow

    have = {TRACKING: mlflow.get_tracking_uri(), REGISTRY: mlflow.get_registry_uri()}
    for var, want in wanted().items():
        if not _same(str(have[var]), want):
            return (
                f"this run pointed MLflow at {have[var]!r} ({var} / mlflow.set_"
                f"{'tracking' if var == TRACKING else 'registry'}_uri) but releasegate's registry is "
                f"{want!r}: a model logged there is outside releasegate. Remove the call, or set "
                f"{var}={want}"
            )
    return None


def _point_mlflow_here() -> None:
    want = wanted()
    os.environ.update(want)
    if "mlflow" in sys.modules:  # imported already: its process-wide URIs win over the environment
        import mlflow

        mlflow.set_tracking_uri(want[TRACKING])
        mlflow.set_registry_uri(want[REGISTRY])
    applied(want)


@contextmanager
def pointed_at(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """MLflow's process-wide URIs (and their env vars) at one store for the block, then exactly as before.

    Only for what MLflow offers through its fluent API alone (``mlflow.start_run`` + ``log_model`` with
    ``registered_model_name``: ``MlflowRegistry.log_sklearn_version``); everything else goes through an
    ``MlflowClient`` bound to its URIs. Blocks of releasegate's own run one at a time (``_fluent``); a
    thread of the caller's own that uses the fluent API meanwhile sees this store."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _fluent:
        before = (tracking_utils._tracking_uri, registry_utils._registry_uri)
        env = {var: os.environ.get(var) for var in (TRACKING, REGISTRY)}
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(registry_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before[0])  # type: ignore[arg-type]  # None: unset, as MLflow does
            registry_utils._registry_uri = before[1]
            for var, value in env.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value


def source_commit(source_file: str | Path | None) -> str | None:
    """The HEAD commit of the git checkout holding ``source_file``, or None (not in a checkout, no git)."""
    if not source_file:
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(Path(source_file).resolve().parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and len(sha) >= 7 else None


def active_commit() -> str | None:
    """The source commit of the governed run this process is in (the latest entered), or None."""
    with _lock:
        for tags in reversed(_active):
            if tags.get("git_sha"):
                return tags["git_sha"]
    return None


def _publish() -> None:
    """MLFLOW_RUN_CONTEXT = the operator's own context + the latest governed run's tags (under _lock)."""
    if not _active:
        if _base_context is None:
            os.environ.pop(RUN_CONTEXT, None)
        else:
            os.environ[RUN_CONTEXT] = _base_context
        return
    try:
        base = json.loads(_base_context) if _base_context else {}
    except ValueError:
        base = {}
    os.environ[RUN_CONTEXT] = json.dumps({**(base if isinstance(base, dict) else {}), **_active[-1]})


@contextmanager
def run_scope(source_file: str | None, flow_run_id: str, deployment: str) -> Iterator[dict[str, str]]:
    """MLflow pointed at releasegate's store, and runs started inside tagged with the flow's lineage."""
    global _base_context
    _point_mlflow_here()
    tags = {"releasegate.flow_run_id": flow_run_id, "releasegate.deployment": deployment}
    commit = source_commit(source_file)
    if commit:
        tags |= {"mlflow.source.git.commit": commit, "git_sha": commit}
    with _lock:
        if not _active:
            _base_context = os.environ.get(RUN_CONTEXT)
        _active.append(tags)
        _publish()
    try:
        yield tags
    finally:
        with _lock:
            _active.remove(tags)
            _publish()
