"""MLflow registry adapter: environments as registered models, aliases, lineage, binary promotion.

Names: ``<env>.<model>`` (``dev.credit``, ``staging.credit``, ``prod.credit``). Aliases on the prod
model: ``champion`` (serving), ``challenger`` (shadow/canary), ``archive`` (previous champion, the
rollback target); on the staging model: ``staging`` (latest validated). No version suffixes in names.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from releasegate.adapters.mlflow_lineage import training_data
from releasegate.errors import NotFound
from releasegate.policy.gates import EnvironmentFacts, VersionFacts
from releasegate.policy.psi import ReferenceProfile
from releasegate.ports import RegistryUnavailable
from releasegate.settings import Settings, project_root

CHAMPION, CHALLENGER, STAGING, ARCHIVE = "champion", "challenger", "staging", "archive"
EXPERIMENT = "releasegate"
_HASH_EXCLUDE = {"registered_model_meta"}  # MLflow writes the registered model's name into it on download


def _MlflowException() -> type[Exception]:  # noqa: N802 - used in except clauses; mlflow imports lazily
    from mlflow.exceptions import MlflowException

    return MlflowException


def _is(exc: Exception, *codes: str) -> bool:
    """Whether MLflow raised one of the error codes it documents (e.g. ``RESOURCE_DOES_NOT_EXIST``).

    Only those answers mean "not there"; any other error (a timeout, a locked database) propagates, so
    that a failed call is never read as an absent model, alias or copy."""
    return getattr(exc, "error_code", None) in codes


def model_name(env: str, model: str) -> str:
    if "." in model:
        raise ValueError(f"model {model!r}: give the bare model name, not '<env>.<model>'")
    return f"{env}.{model}"


def _mlflow():
    import mlflow

    from releasegate.adapters import mlflow_scope

    s = Settings()
    mlflow.set_tracking_uri(s.resolved_tracking_uri)
    mlflow.set_registry_uri(s.resolved_registry_uri)
    mlflow_scope.applied(mlflow_scope.wanted())  # set process-wide (and in the env) by releasegate, not a user
    return mlflow


def client():
    mlflow = _mlflow()
    return mlflow.MlflowClient()


def ensure_tracking_store() -> str:
    """Create (or migrate) the MLflow tracking and registry store once, from this one process, and
    return its URI. MLflow migrates an embedded SQLite store on first use; two flow runs starting at
    once on a fresh store (two workers) race in that migration, and a lost race leaves MLflow's
    ``_alembic_tmp_*`` tables behind, failing every later run. ``releasegate infra up`` calls this
    before any worker runs a flow."""
    c = client()
    c.search_experiments(max_results=1)
    c.search_registered_models(max_results=1)
    return str(Settings().resolved_tracking_uri)


def registered_models(page_size: int = 1000) -> Iterator[Any]:
    """Every registered model, page by page (MLflow answers at most ``max_results`` per call and a
    page token for the rest): a registry of more than one page is read to its end."""
    c = client()
    token = None
    while True:
        page = c.search_registered_models(max_results=page_size, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def experiment_id() -> str:
    c = client()
    exp = c.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    artifacts = Settings().home_dir / "mlartifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    try:
        return c.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())
    except _MlflowException() as exc:  # created concurrently
        if not _is(exc, "RESOURCE_ALREADY_EXISTS"):
            raise
        return c.get_experiment_by_name(EXPERIMENT).experiment_id


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


def log_sklearn_version(
    fitted: Any,
    model: str,
    env: str,
    *,
    X_train: Any,
    features: list[str],
    input_example: Any,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    data_timestamp: str | None = None,
    extra_tags: dict[str, str] | None = None,
    skops_trusted_types: list[str] | None = None,
) -> str:
    """Log a fitted scikit-learn model the way releasegate judges a version, and register it as a new
    version of ``<env>.<model>``: params and metrics, lineage tags (git SHA, data timestamp, environment
    fingerprint, run id), the reference profile of ``X_train`` (drift), the ``input_example`` (smoke test
    and signature) and pinned requirements (reproducibility). Returns the version."""
    import numpy
    import sklearn

    from releasegate.adapters.mlflow_evidence import log_reference_profile
    from releasegate.fingerprint import fingerprint

    mlflow = _mlflow()
    name = model_name(env, model)
    tags = {
        "git_sha": git_sha(),
        "data_timestamp": data_timestamp or datetime.now(UTC).isoformat(),
        "env_fingerprint": fingerprint(),
        **(extra_tags or {}),
    }
    with mlflow.start_run(experiment_id=experiment_id()) as run:
        mlflow.log_params(params or {})
        mlflow.log_metrics(metrics or {})
        mlflow.set_tags(tags)
        log_reference_profile(X_train, features)  # what the drift gates compare with
        info = mlflow.sklearn.log_model(
            fitted,
            name="model",
            input_example=input_example,
            registered_model_name=name,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={numpy.__version__}"],
            skops_trusted_types=skops_trusted_types,
        )
    version = str(info.registered_model_version)
    c = client()
    for k, v in tags.items():
        c.set_model_version_tag(name, version, k, v)
    c.set_model_version_tag(name, version, "run_id", run.info.run_id)
    return version


def artifact_sha256(uri: str) -> str:
    """SHA-256 over the model's files (path and content), excluding registry bookkeeping."""
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        h = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in _HASH_EXCLUDE):
            h.update(str(path.relative_to(root)).encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()


class VersionNotFound(NotFound):
    """The registry has no such model version (MLflow's ``RESOURCE_DOES_NOT_EXIST``)."""


def version_facts(name: str, version: str, with_hash: bool = True) -> VersionFacts:
    c = client()
    try:
        mv = c.get_model_version(name, version)
    except _MlflowException() as exc:
        if not _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        uri = Settings().resolved_registry_uri
        raise VersionNotFound(f"{name} has no version {version!r} in the MLflow registry at {uri}") from None
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    run = None
    if mv.run_id:
        run = c.get_run(mv.run_id)
        metrics, params = dict(run.data.metrics), dict(run.data.params)
    stamp, datasets = training_data(dict(mv.tags), run)
    return VersionFacts(
        name=name,
        version=str(mv.version),
        run_id=mv.run_id,
        metrics=metrics,
        params=params,
        tags=dict(mv.tags),
        artifact_sha256=artifact_sha256(f"models:/{name}/{version}") if with_hash else None,
        data_timestamp=stamp,
        datasets=datasets,
    )


def reference_profile(name: str, version: str) -> ReferenceProfile | None:
    """The reference profile logged with the version's run (``releasegate.evidence``), None when absent."""
    from releasegate.adapters.mlflow_evidence import PROFILE_ARTIFACT

    run_id = client().get_model_version(name, version).run_id
    if not run_id:
        return None
    try:
        doc = _mlflow().artifacts.load_dict(f"runs:/{run_id}/{PROFILE_ARTIFACT}")
    except _MlflowException() as exc:
        if _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise RegistryUnavailable(f"MLflow could not read {PROFILE_ARTIFACT} of {name} v{version}: {exc}") from exc
    except OSError:  # the local artifact store says "no such file" this way
        return None
    return ReferenceProfile.model_validate(doc)


COMMIT_TAGS = ("mlflow.source.git.commit", "git_sha")  # MLflow's own tag, then the gate's measure's


def source_commit(name: str, version: str) -> str | None:
    """The training code's commit of a version: the tags of the run that logged it (MLflow's
    ``mlflow.source.git.commit``, else ``git_sha``, what the reproducibility gate's measure asks for),
    then the same tags on the version itself; ``unknown`` and blanks are no commit."""
    c = client()
    mv = c.get_model_version(name, version)
    places = [dict(c.get_run(mv.run_id).data.tags)] if mv.run_id else []
    for tags in [*places, dict(mv.tags)]:
        for key in COMMIT_TAGS:
            value = (tags.get(key) or "").strip()
            if value and value != "unknown":
                return value
    return None


def environment_facts(name: str, version: str) -> EnvironmentFacts:
    """The version's rebuild facts (``gates.EnvironmentFacts``) from MLflow's own records; missing pieces
    stay empty for the reproducibility gate to name."""
    commit = source_commit(name, version)
    try:
        text = Path(_mlflow().pyfunc.get_model_dependencies(f"models:/{name}/{version}", format="pip")).read_text()
    except _MlflowException() as exc:
        if not _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise RegistryUnavailable(f"MLflow could not read the requirements of {name} v{version}: {exc}") from exc
        return EnvironmentFacts(source_commit=commit)
    except OSError:  # no requirements.txt in the model's artifacts
        return EnvironmentFacts(source_commit=commit)
    lines = sorted({s for raw in text.splitlines() if (s := raw.split("#")[0].strip()) and not s.startswith("-")})
    unpinned = [s for s in lines if "==" not in s and " @ " not in s]
    return EnvironmentFacts(
        requirements_sha256=hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        requirements=len(lines),
        unpinned=unpinned,
        source_commit=commit,
    )


def alias_version(name: str, alias: str) -> str | None:
    c = client()
    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except _MlflowException() as exc:
        if _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):  # no such model or alias
            return None
        raise


def aliases(name: str) -> dict[str, str]:
    c = client()
    try:
        return {k: str(v) for k, v in c.get_registered_model(name).aliases.items()}
    except _MlflowException() as exc:
        if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
            return {}
        raise


def registered_model_tags(name: str) -> dict[str, str]:
    try:
        return dict(client().get_registered_model(name).tags)
    except _MlflowException() as exc:
        if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
            return {}
        raise


def version_users(name: str, version: str) -> list[str]:
    """Who made the version: its ``user_id`` (set by registries that know users), else the user of the
    run that logged it (MLflow's ``mlflow.user``); empty when neither is known or the version is gone."""
    c = client()
    try:
        mv = c.get_model_version(name, version)
    except _MlflowException() as exc:
        if _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return []
        raise
    users = [str(mv.user_id)] if getattr(mv, "user_id", None) else []
    if mv.run_id:
        try:
            run_user = c.get_run(mv.run_id).info.user_id
        except _MlflowException() as exc:
            if not _is(exc, "RESOURCE_DOES_NOT_EXIST"):
                raise
            run_user = None
        if run_user and run_user not in users:
            users.append(str(run_user))
    return users


def load_sklearn(uri: str):
    return _mlflow().sklearn.load_model(uri)


def smoke_test(uri: str, X: Any = None) -> dict[str, Any]:
    """Load through pyfunc (what serving uses) and score ``X``, by default the ``input_example`` logged
    with the model (any model, any flavour: its own inputs, checked against its own signature); never
    raises. Without ``X`` and without a logged example the check fails and says what to log."""
    try:
        model = _mlflow().pyfunc.load_model(uri)
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
    except Exception as exc:  # the gate reports it
        return {"ok": False, "rows": 0, "error": f"{type(exc).__name__}: {exc}"[:500]}


def find_copy(prod_name: str, staging_name: str, version: str, sha256: str, decision_id: str) -> str | None:
    """The prod version an interrupted promotion already made, so that a rerun never copies twice.

    First a version tagged with the promotion's pending ``decision_id``; else a copy of exactly
    ``models:/<staging_name>/<version>`` (the source ``copy_model_version`` records) that no other
    promotion has claimed (no ``decision_id`` tag) and whose artifacts hash to ``sha256``: the copy made
    just before a crash, before its tag was set. Errors from MLflow propagate: "not found" must never be
    guessed from a failed call (that is how a promotion would copy the same binary a second time)."""
    versions = _search_versions(prod_name)
    for mv in versions:
        if mv.tags.get("decision_id") == decision_id:
            return str(mv.version)
    source = f"models:/{staging_name}/{version}"
    for mv in versions:
        if mv.source == source and not mv.tags.get("decision_id"):
            if artifact_sha256(f"models:/{prod_name}/{mv.version}") == sha256:
                return str(mv.version)
    return None


def _search_versions(name: str) -> list:
    try:
        return list(client().search_model_versions(f"name='{name}'"))
    except _MlflowException() as exc:
        if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
            return []
        raise RegistryUnavailable(f"MLflow could not list the versions of {name}: {exc}") from exc


def version_tags(name: str, version: str) -> dict[str, str]:
    return dict(client().get_model_version(name, version).tags)


def copy_to(src_name: str, version: str, dst_name: str) -> str:
    return str(client().copy_model_version(f"models:/{src_name}/{version}", dst_name).version)


def set_tags(name: str, version: str | None, tags: dict[str, str]) -> None:
    """MLflow refuses a missing ``version`` (``MlflowException``: "version or stage must be set")."""
    c = client()
    for k, v in tags.items():
        c.set_model_version_tag(name, version, k, str(v))


def set_alias(name: str, alias: str, version: str) -> None:
    client().set_registered_model_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    try:
        client().delete_registered_model_alias(name, alias)
    except _MlflowException() as exc:  # already gone: deleting is idempotent
        if not _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise


os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
