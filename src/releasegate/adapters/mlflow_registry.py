"""MLflow registry adapter: environments as registered models, aliases, lineage, binary promotion.

Names: ``<env>.<model>`` (``dev.credit``, ``staging.credit``, ``prod.credit``). Aliases on the prod
model: ``champion`` (serving), ``challenger`` (shadow/canary), ``archive`` (previous champion, the
rollback target); on the staging model: ``staging`` (latest validated). No version suffixes in names.

``MlflowRegistry(tracking_uri, registry_uri)`` is one store, reached through its own ``MlflowClient``,
never through MLflow's process-wide URIs (``docs/explanation/registry-instance.md``); ``App.registry``
is one per process. The module-level functions are the same calls on ``default()`` (this process's
settings), for code outside the App: the demo, the benches, tests and a team's scripts.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from releasegate.adapters.mlflow_artifacts import requirements_facts, smoke_score, tree_sha256
from releasegate.adapters.mlflow_lineage import training_data
from releasegate.policy.gates import EnvironmentFacts, VersionFacts
from releasegate.policy.psi import ReferenceProfile
from releasegate.ports import RegistryUnavailable, VersionNotFound
from releasegate.settings import Settings

CHAMPION, CHALLENGER, STAGING, ARCHIVE = "champion", "challenger", "staging", "archive"
EXPERIMENT = "releasegate"
COMMIT_TAGS = ("mlflow.source.git.commit", "git_sha")  # MLflow's own tag, then the gate's measure's


def _MlflowException() -> type[Exception]:  # noqa: N802 - used in except clauses; mlflow imports lazily
    from mlflow.exceptions import MlflowException

    return MlflowException


def _is(exc: Exception, *codes: str) -> bool:
    """Whether MLflow raised one of the error codes it documents (``RESOURCE_DOES_NOT_EXIST``...): only
    those mean "not there"; any other error propagates, never read as an absent model, alias or copy."""
    return getattr(exc, "error_code", None) in codes


def model_name(env: str, model: str) -> str:
    if "." in model:
        raise ValueError(f"model {model!r}: give the bare model name, not '<env>.<model>'")
    return f"{env}.{model}"


class MlflowRegistry:
    """One MLflow store, through its own ``MlflowClient``; ``artifact_root``: where the ``releasegate``
    experiment keeps its artifacts when this instance creates it (None: MLflow's default)."""

    CHAMPION, CHALLENGER, STAGING, ARCHIVE = CHAMPION, CHALLENGER, STAGING, ARCHIVE

    def __init__(self, tracking_uri: str, registry_uri: str | None = None, artifact_root: Path | None = None):
        import mlflow

        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifact_root = artifact_root
        self.client = mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    model_name = staticmethod(model_name)

    def download(self, uri: str, dst_path: str | None = None) -> Path:
        """The artifacts at ``uri`` (``models:/``, ``runs:/``) on local disk, from this store. MLflow
        resolves ``models:/`` with its process-wide registry URI whatever it is given
        (``ModelsArtifactRepository``): this client resolves it to an artifact location first."""
        import mlflow

        if uri.startswith("models:/"):
            uri = self._artifact_location(uri.removeprefix("models:/"))
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=dst_path, tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
        )
        return Path(local)

    def _artifact_location(self, ref: str) -> str:
        """Where the files of ``<name>/<version>``, ``<name>@<alias>`` or ``<logged model id>`` are."""
        c, (head, _, rest) = self.client, ref.partition("/")
        version, _, path = rest.partition("/")
        if "@" in head:
            name, alias = head.split("@", 1)
            location, path = (
                c.get_model_version_download_uri(name, c.get_model_version_by_alias(name, alias).version),
                rest,
            )
        elif version.isdigit():
            location = c.get_model_version_download_uri(head, version)
        else:
            location, path = f"models:/{head}", rest
        if location.startswith("models:/"):  # a logged model (MLflow 3): its own artifact location
            location = c.get_logged_model(location.removeprefix("models:/")).artifact_location
        return "/".join(p for p in (location.rstrip("/"), path) if p)

    def ensure_tracking_store(self) -> str:
        """Create (or migrate) the store once, from this one process (``infra up``, before any worker),
        and return its URI: two runs migrating a fresh SQLite store at once leave MLflow's
        ``_alembic_tmp_*`` tables behind, failing every later run."""
        self.client.search_experiments(max_results=1)
        self.client.search_registered_models(max_results=1)
        return self.tracking_uri

    def registered_models(self, page_size: int = 1000) -> Iterator[Any]:
        """Every registered model, page by page (``max_results`` each, then the page token) to the end."""
        token = None
        while True:
            page = self.client.search_registered_models(max_results=page_size, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def experiment_id(self) -> str:
        c = self.client
        exp = c.get_experiment_by_name(EXPERIMENT)
        if exp is not None:
            return str(exp.experiment_id)
        location = None
        if self.artifact_root is not None:
            self.artifact_root.mkdir(parents=True, exist_ok=True)
            location = self.artifact_root.as_uri()
        try:
            return str(c.create_experiment(EXPERIMENT, artifact_location=location))
        except _MlflowException() as exc:  # created concurrently
            if not _is(exc, "RESOURCE_ALREADY_EXISTS") or (exp := c.get_experiment_by_name(EXPERIMENT)) is None:
                raise
            return str(exp.experiment_id)

    def log_sklearn_version(self, fitted: Any, model: str, env: str, **kwargs: Any) -> str:
        """Log a fitted scikit-learn model the way releasegate judges a version and register it as a new
        version of ``<env>.<model>`` in this store (``mlflow_logging.log_sklearn_version``)."""
        from releasegate.adapters.mlflow_logging import log_sklearn_version

        return log_sklearn_version(self, fitted, model, env, **kwargs)

    def artifact_sha256(self, uri: str) -> str:
        """SHA-256 over the model's files (path and content), excluding registry bookkeeping."""
        with tempfile.TemporaryDirectory() as tmp:
            return tree_sha256(self.download(uri, tmp))

    def version_facts(self, name: str, version: str, with_hash: bool = True) -> VersionFacts:
        c = self.client
        try:
            mv = c.get_model_version(name, version)
        except _MlflowException() as exc:
            if not _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            uri = self.registry_uri
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
            artifact_sha256=self.artifact_sha256(f"models:/{name}/{version}") if with_hash else None,
            data_timestamp=stamp,
            datasets=datasets,
        )

    def run_started(self, run_id: str) -> datetime:
        """When the MLflow run ``run_id`` started (UTC)."""
        return datetime.fromtimestamp(self.client.get_run(run_id).info.start_time / 1000, UTC)

    def reference_profile(self, name: str, version: str) -> ReferenceProfile | None:
        """The reference profile logged with the version's run (``releasegate.evidence``), None when absent."""
        from releasegate.adapters.mlflow_evidence import PROFILE_ARTIFACT

        run_id = self.client.get_model_version(name, version).run_id
        if not run_id:
            return None
        try:
            with tempfile.TemporaryDirectory() as tmp:
                doc = json.loads(self.download(f"runs:/{run_id}/{PROFILE_ARTIFACT}", tmp).read_text())
        except _MlflowException() as exc:
            if _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise RegistryUnavailable(f"MLflow could not read {PROFILE_ARTIFACT} of {name} v{version}: {exc}") from exc
        except OSError:  # the local artifact store says "no such file" this way
            return None
        return ReferenceProfile.model_validate(doc)

    def source_commit(self, name: str, version: str) -> str | None:
        """The training code's commit: ``COMMIT_TAGS`` of the run that logged the version, then of the
        version itself (what the reproducibility gate asks for); ``unknown`` and blanks are none."""
        c = self.client
        mv = c.get_model_version(name, version)
        places = [dict(c.get_run(mv.run_id).data.tags)] if mv.run_id else []
        for tags in [*places, dict(mv.tags)]:
            for key in COMMIT_TAGS:
                value = (tags.get(key) or "").strip()
                if value and value != "unknown":
                    return value
        return None

    def environment_facts(self, name: str, version: str) -> EnvironmentFacts:
        """The version's rebuild facts from MLflow's records; what is missing stays empty for the gate."""
        import mlflow

        commit = self.source_commit(name, version)
        try:
            local = self.download(f"models:/{name}/{version}")
            text = Path(mlflow.pyfunc.get_model_dependencies(str(local), format="pip")).read_text()
        except _MlflowException() as exc:
            if not _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise RegistryUnavailable(
                    f"MLflow could not read the requirements of {name} v{version}: {exc}"
                ) from exc
            return EnvironmentFacts(source_commit=commit)
        except OSError:  # no requirements.txt in the model's artifacts
            return EnvironmentFacts(source_commit=commit)
        return requirements_facts(text, commit)

    def alias_version(self, name: str, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except _MlflowException() as exc:
            if _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):  # no such model or alias
                return None
            raise

    def aliases(self, name: str) -> dict[str, str]:
        try:
            return {k: str(v) for k, v in self.client.get_registered_model(name).aliases.items()}
        except _MlflowException() as exc:
            if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
                return {}
            raise

    def registered_model_tags(self, name: str) -> dict[str, str]:
        try:
            return dict(self.client.get_registered_model(name).tags)
        except _MlflowException() as exc:
            if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
                return {}
            raise

    def version_users(self, name: str, version: str) -> list[str]:
        """Who made the version: its ``user_id``, then its run's user; empty when unknown or gone."""
        c = self.client
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

    def load_pyfunc(self, uri: str) -> Any:
        """The model at ``uri`` loaded through pyfunc (what serving uses), read from this store."""
        import mlflow

        return mlflow.pyfunc.load_model(str(self.download(uri)))

    def smoke_test(self, uri: str, X: Any = None) -> dict[str, Any]:
        """Load through pyfunc (what serving uses) and score ``X``, by default its logged ``input_example``
        (``mlflow_artifacts.smoke_score``); never raises."""
        try:
            return smoke_score(self.load_pyfunc(uri), X)
        except Exception as exc:  # the gate reports it
            return {"ok": False, "rows": 0, "error": f"{type(exc).__name__}: {exc}"[:500]}

    def find_copy(self, prod_name: str, staging_name: str, version: str, sha256: str, decision_id: str) -> str | None:
        """The prod version an interrupted promotion already made, so that a rerun never copies twice: the
        one tagged with its pending ``decision_id``, else an unclaimed copy of exactly
        ``models:/<staging_name>/<version>`` whose files hash to ``sha256`` (made just before a crash).
        MLflow's errors propagate: "not found" is never guessed from a failed call."""
        versions = self._search_versions(prod_name)
        for mv in versions:
            if mv.tags.get("decision_id") == decision_id:
                return str(mv.version)
        source = f"models:/{staging_name}/{version}"
        for mv in versions:
            if mv.source == source and not mv.tags.get("decision_id"):
                if self.artifact_sha256(f"models:/{prod_name}/{mv.version}") == sha256:
                    return str(mv.version)
        return None

    def _search_versions(self, name: str) -> list[Any]:
        try:
            return list(self.client.search_model_versions(f"name='{name}'"))
        except _MlflowException() as exc:
            if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
                return []
            raise RegistryUnavailable(f"MLflow could not list the versions of {name}: {exc}") from exc

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)

    def copy_to(self, src_name: str, version: str, dst_name: str) -> str:
        return str(self.client.copy_model_version(f"models:/{src_name}/{version}", dst_name).version)

    def set_tags(self, name: str, version: str | None, tags: dict[str, str]) -> None:
        """MLflow refuses a missing ``version`` (``MlflowException``: "version or stage must be set")."""
        for k, v in tags.items():
            self.client.set_model_version_tag(name, version, k, str(v))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self.client.delete_registered_model_alias(name, alias)
        except _MlflowException() as exc:  # already gone: deleting is idempotent
            if not _is(exc, "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise


@lru_cache(maxsize=16)
def _registry_at(tracking_uri: str, registry_uri: str, artifact_root: Path) -> MlflowRegistry:
    return MlflowRegistry(tracking_uri, registry_uri, artifact_root)


def for_settings(s: Settings) -> MlflowRegistry:
    """The registry of ``s`` (``RELEASEGATE_MLFLOW_*``, else the home's SQLite store), one per store."""
    return _registry_at(s.resolved_tracking_uri, s.resolved_registry_uri, s.home_dir / "mlartifacts")


def default() -> MlflowRegistry:
    """The registry of this process's settings as they are now (a changed home is a new instance)."""
    return for_settings(Settings())


def _mlflow() -> Any:
    """MLflow's fluent API pointed (process-wide) at this process's store, for a caller that logs the way
    a team does (``mlflow.start_run`` in tests and scripts); releasegate's own calls never use it."""
    import mlflow

    from releasegate.adapters import mlflow_scope

    s = Settings()
    mlflow.set_tracking_uri(s.resolved_tracking_uri)
    mlflow.set_registry_uri(s.resolved_registry_uri)
    mlflow_scope.applied(mlflow_scope.wanted())  # set process-wide (and in the env) by releasegate, not a user
    return mlflow


# The same calls on ``default()``, for code outside the App (the demo, benches, tests, teams' scripts).


def client() -> Any:
    return default().client


def ensure_tracking_store() -> str:
    return default().ensure_tracking_store()


def registered_models(page_size: int = 1000) -> Iterator[Any]:
    return default().registered_models(page_size)


def experiment_id() -> str:
    return default().experiment_id()


def log_sklearn_version(fitted: Any, model: str, env: str, **kwargs: Any) -> str:
    """``MlflowRegistry.log_sklearn_version`` on this process's store (``releasegate.evidence``)."""
    return default().log_sklearn_version(fitted, model, env, **kwargs)


def artifact_sha256(uri: str) -> str:
    return default().artifact_sha256(uri)


def version_facts(name: str, version: str, with_hash: bool = True) -> VersionFacts:
    return default().version_facts(name, version, with_hash)


def reference_profile(name: str, version: str) -> ReferenceProfile | None:
    return default().reference_profile(name, version)


def source_commit(name: str, version: str) -> str | None:
    return default().source_commit(name, version)


def environment_facts(name: str, version: str) -> EnvironmentFacts:
    return default().environment_facts(name, version)


def alias_version(name: str, alias: str) -> str | None:
    return default().alias_version(name, alias)


def aliases(name: str) -> dict[str, str]:
    return default().aliases(name)


def registered_model_tags(name: str) -> dict[str, str]:
    return default().registered_model_tags(name)


def version_users(name: str, version: str) -> list[str]:
    return default().version_users(name, version)


def smoke_test(uri: str, X: Any = None) -> dict[str, Any]:
    return default().smoke_test(uri, X)


def find_copy(prod_name: str, staging_name: str, version: str, sha256: str, decision_id: str) -> str | None:
    return default().find_copy(prod_name, staging_name, version, sha256, decision_id)


def version_tags(name: str, version: str) -> dict[str, str]:
    return default().version_tags(name, version)


def copy_to(src_name: str, version: str, dst_name: str) -> str:
    return default().copy_to(src_name, version, dst_name)


def set_tags(name: str, version: str | None, tags: dict[str, str]) -> None:
    default().set_tags(name, version, tags)


def set_alias(name: str, alias: str, version: str) -> None:
    default().set_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    default().delete_alias(name, alias)


os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
