"""The model pages' service (``services.model_pages``) over a SQLite log holding a model's history
(``releasegate.testing.model_history``), and the console rig with it wired as its ``models`` port."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate.clock import FixedClock
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.models import ModelSpec
from releasegate.services.evidence_html import render
from releasegate.services.evidence_pack import EvidenceSources
from releasegate.services.model_pages import ModelPages
from releasegate.testing.evidence_log import sealed_log
from releasegate.testing.model_history import History, seed_model
from tests.support.console import Rig, rig

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
FIRST = date(2026, 9, 1)


def spec(name: str = "credit", **fields) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": name,
            "primary_kpi": {"metric": "roc_auc"},
            "owners": ["owner-olga"],
            "risk_tier": "high",
            "eod": {"cron": "0 22 * * 1-5", "timezone": "Europe/Berlin"},
            **fields,
        }
    )


def pages(tmp_path: Path, models: list[ModelSpec] | None = None, days: int = 60, **kw) -> tuple[ModelPages, History]:
    """``ModelPages`` over a log with ``credit``'s history of ``days`` business dates."""
    log = sealed_log(f"sqlite:///{tmp_path / 'log.db'}")
    history = seed_model(log, "credit", FIRST, days)
    clock = FixedClock(NOW)
    sources = EvidenceSources(
        log=log,
        signing_key=Ed25519PrivateKey.generate(),
        checkpoint_dir=tmp_path / "checkpoints",
        clock=clock,
        inventory=lambda m: {"model": m},
    )
    found = [spec()] if models is None else models
    service = ModelPages(
        log,
        specs=lambda: found,
        config=lambda: ApproverConfig(owners={"credit": ["owner-omar"]}),
        clock=clock,
        evidence_sources=lambda: sources,
        render=render,
        **kw,
    )
    return service, history


def console_rig(tmp_path: Path, **kw) -> tuple[Rig, ModelPages, History]:
    """The console rig (``tests.support.console``) with the model pages wired."""
    r = rig(now=NOW)
    service, history = pages(tmp_path, **kw)
    console = r.client.app.state.console  # type: ignore[attr-defined]
    console.ports = replace(console.ports, models=service)
    return r, service, history
