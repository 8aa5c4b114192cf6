"""What releasegate reads from a model's files once they are on local disk: their hash, the pinned
requirements, a smoke score; and the training code's commit. No MLflow store is touched here: the
registry (``mlflow_registry.MlflowRegistry``) downloads, these functions read."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from releasegate.policy.gates import EnvironmentFacts
from releasegate.settings import project_root

_HASH_EXCLUDE = {"registered_model_meta"}  # MLflow writes the registered model's name into it on download


def tree_sha256(root: Path) -> str:
    """SHA-256 over a model's files (path and content), excluding registry bookkeeping."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in _HASH_EXCLUDE):
        h.update(str(path.relative_to(root)).encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def requirements_facts(text: str, commit: str | None) -> EnvironmentFacts:
    """The rebuild facts of a ``requirements.txt``: its normalised digest, its size, what is unpinned."""
    lines = sorted({s for raw in text.splitlines() if (s := raw.split("#")[0].strip()) and not s.startswith("-")})
    unpinned = [s for s in lines if "==" not in s and " @ " not in s]
    return EnvironmentFacts(
        requirements_sha256=hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        requirements=len(lines),
        unpinned=unpinned,
        source_commit=commit,
    )


def smoke_score(model: Any, X: Any = None) -> dict[str, Any]:
    """Score ``X`` (by default the model's logged ``input_example``) with a loaded pyfunc model."""
    source = "given rows"
    if X is None:
        X, source = model.input_example, "its input_example"
        if X is None:
            return {
                "ok": False,
                "rows": 0,
                "error": "no input_example was logged with the model",
                "measure": "log the model with input_example=<a few rows of real inputs> "
                "(mlflow.<flavor>.log_model(..., input_example=...)) so that it can be loaded and scored",
            }
    out = model.predict(X)
    n = len(X)
    if len(out) != n:
        return {"ok": False, "rows": n, "error": f"{len(out)} predictions for {n} rows of {source}"}
    return {"ok": True, "rows": n, "error": None, "source": source}


def git_sha() -> str:
    """The training code's commit: the governed run's (its flow's own checkout), else the project's."""
    from releasegate.adapters.mlflow_scope import active_commit

    if commit := active_commit():
        return commit
    try:
        root = project_root()
        return (
            subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError, FileNotFoundError):
        return "unknown"
