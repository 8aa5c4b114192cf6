"""The application object: one process's collaborators, built by the composition root.

``releasegate.bootstrap.app()`` builds an ``App`` from the environment (settings, the sealed decision
log, the process clock, the scheduling store, the project's config folder and the registry: one
``MlflowRegistry`` bound to the settings' MLflow URIs, no MLflow state of the process); the front
doors (``flows/``, ``cli/``, ``tools/``, the console wiring) pass it, or the pieces a use case needs,
to ``releasegate.services`` and ``releasegate.adapters``, which never reach for it themselves.

The log, the store and the registry are made on first use (MLflow is slow to import, and a command that
refuses its input must not create a database).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from releasegate.clock import Clock
from releasegate.ports import ModelRegistry, Ports
from releasegate.settings import Settings, project_root
from releasegate.store.scheduling_store import SchedulingStore
from releasegate.store.trust import SealedDecisionLog


@dataclass(frozen=True)
class App:
    settings: Settings
    clock: Clock
    registry_factory: Callable[[Settings], ModelRegistry]
    root: Path | None = None  # the folder of prefect.yaml and blocks/; None: found on first use

    @cached_property
    def project_root(self) -> Path:
        return self.root or project_root()

    @cached_property
    def log(self) -> SealedDecisionLog:
        """The service path's log: every record it appends carries the service seal."""
        s = self.settings
        return SealedDecisionLog(s.resolved_database_url, clock=self.clock, key_loader=s.service_key_bytes)

    @cached_property
    def store(self) -> SchedulingStore:
        return SchedulingStore(self.settings.resolved_database_url)

    @cached_property
    def registry(self) -> ModelRegistry:
        """This process's model registry: one instance bound to the settings' MLflow URIs."""
        return self.registry_factory(self.settings)

    @property
    def ports(self) -> Ports:
        return Ports(registry=self.registry, log=self.log, clock=self.clock)
