"""The ports services receive: what a use case needs from MLflow, Prefect, the decision log and time.

Services (``releasegate.services``) call these Protocols, never ``mlflow`` or ``prefect`` directly;
``releasegate.bootstrap.ports()`` wires the real adapters (one ``adapters.mlflow_registry.MlflowRegistry``,
the sealed decision log of ``store.trust``, the process clock). A unit test passes in-memory fakes of these
Protocols (see ``tests/unit/test_binary_promotion.py``) and runs a use case in milliseconds.

Errors: a ``Registry`` answers "absent" (``None``, ``{}``) only where MLflow documents absence
(``RESOURCE_DOES_NOT_EXIST``); any other failure raises ``RegistryUnavailable``, so that a failed call
is never read as "no copy yet" (that is how a promotion would copy a binary twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from releasegate.clock import Clock
from releasegate.decisions import DecisionKind, DecisionRecord, NewDecision
from releasegate.errors import NotFound, Unavailable
from releasegate.policy.gates import EnvironmentFacts, VersionFacts
from releasegate.policy.psi import ReferenceProfile


class RegistryUnavailable(Unavailable):
    """The registry failed in a way it does not document as "not found"; retry later, assume nothing."""


class VersionNotFound(NotFound):
    """The registry has no such model version (MLflow's ``RESOURCE_DOES_NOT_EXIST``)."""


class Registry(Protocol):
    """The model registry (MLflow): environments are registered models ``<env>.<model>``."""

    CHAMPION: str
    CHALLENGER: str
    ARCHIVE: str

    def model_name(self, env: str, model: str) -> str: ...
    def alias_version(self, name: str, alias: str) -> str | None: ...
    def aliases(self, name: str) -> dict[str, str]: ...
    def find_copy(
        self, prod_name: str, staging_name: str, version: str, sha256: str, decision_id: str
    ) -> str | None: ...
    def copy_to(self, src_name: str, version: str, dst_name: str) -> str: ...
    def set_tags(self, name: str, version: str | None, tags: dict[str, str]) -> None: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def artifact_sha256(self, uri: str) -> str: ...
    def version_tags(self, name: str, version: str) -> dict[str, str]: ...
    def source_commit(self, name: str, version: str) -> str | None:
        """The training code's commit (its run's tags, then the version's), as the reproducibility gate reads it."""
        ...

    def smoke_test(self, uri: str, X: Any = None) -> dict[str, Any]:
        """Load the model as serving would and score ``X`` (default: its logged ``input_example``); never
        raises (``{"ok", "rows", "error"}``, plus ``measure`` when the model lacks what the check needs)."""
        ...


class ModelRegistry(Registry, Protocol):
    """The registry with what the dossier, EOD, backfill and retrain read of a version
    (``adapters.mlflow_registry.MlflowRegistry``: one MLflow store, its own client)."""

    def version_facts(self, name: str, version: str, with_hash: bool = True) -> VersionFacts:
        """Raises ``VersionNotFound`` when the registry has no such version."""
        ...

    def reference_profile(self, name: str, version: str) -> ReferenceProfile | None: ...
    def environment_facts(self, name: str, version: str) -> EnvironmentFacts: ...
    def registered_model_tags(self, name: str) -> dict[str, str]: ...
    def version_users(self, name: str, version: str) -> list[str]: ...
    def run_started(self, run_id: str) -> datetime: ...
    def load_pyfunc(self, uri: str) -> Any:
        """The model at ``uri`` loaded as serving would (MLflow's pyfunc)."""
        ...


class DecisionLog(Protocol):
    """The append-only, hash-chained, sealed decision log (``store.trust.SealedDecisionLog``)."""

    def append(self, new: NewDecision) -> DecisionRecord: ...
    def query(
        self,
        kind: DecisionKind | str | None = None,
        subject: str | None = None,
        subject_prefix: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[DecisionRecord]: ...
    def trusted(self, **query: Any) -> tuple[list[DecisionRecord], list[DecisionRecord]]: ...
    def refuse_forged(self, forged: list[DecisionRecord], reader: str) -> list[str]: ...


class Runs(Protocol):
    """Prefect: create a deployment's run under an idempotency key, emit an event."""

    def create_run(self, deployment: str, parameters: dict[str, Any], idempotency_key: str) -> str: ...
    def emit(self, name: str, payload: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Ports:
    registry: Registry
    log: DecisionLog
    clock: Clock
    runs: Runs | None = None  # only the use cases that start runs need Prefect
