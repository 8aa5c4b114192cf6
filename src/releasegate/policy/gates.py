"""Promotion gates and the promotion gateway (pure).

A ``Dossier`` holds what MLflow knows of the candidate and the current champion; ``execute_gates``
turns it into a ``GateReport`` with one ``GateResult`` per gate (name, status pass/fail/waived, measured
value, threshold, evidence, fixable?) and ``gateway`` decides:

* ``promote`` — every gate passed or was waived;
* ``hold`` — something failed, but every failure is fixable; the report carries a measures plan;
* ``reject`` — a failure that no measure fixes (the candidate is worse than the champion, or the
  artifact does not load and score).

Gates (thresholds in ``GatePolicy``, stored in the ``releasegate-gate-policy`` block):

* ``kpi_delta`` passes when the relative primary-KPI gain vs the champion is ≥ ``min_kpi_delta``
  (+2 %), or there is no champion (first release); an approved, unexpired exception granted for this
  gate waives the margin, never a worse candidate (a negative delta is never waived). On failure: hold
  if the gain is ≥ 0, reject if the candidate is worse.
* ``drift`` passes when no feature's PSI (the candidate's training profile vs current prod inputs) is
  above both ``max_psi`` (0.2, per model in the manifest) and the PSI that sampling noise alone
  reaches at ``drift_false_alarm_rate`` for the rows measured (``policy.drift``). On failure: hold
  (retrain on recent data). Fewer than ``drift_min_rows`` rows: ``insufficient``, shown as such, not a
  pass and not a hold.
* ``reproducibility`` passes when the staging build's environment fingerprint equals the target's.
  On failure: hold (rebuild in the target environment).
* ``smoke_test`` passes when the candidate loads from the registry and scores a holdout sample
  without error. On failure: reject.
* ``canary_shadow``: models marked critical need shadow/canary evidence (not required otherwise).
  On failure: hold (run shadow scoring).
* ``monitoring_rollback`` passes when monitoring is configured and a rollback target exists (the
  current champion becomes ``archive``), or this is the first release. On failure: hold.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from releasegate.policy.drift import DEFAULT_FALSE_ALARM_RATE, DEFAULT_MIN_ROWS, DriftSample
from releasegate.policy.drift import judge as judge_drift
from releasegate.policy.metrics import Direction, direction_of, relative_gain
from releasegate.policy.models import GuardMetric


class GatePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    primary_metric: str = "roc_auc"
    higher_is_better: bool = True
    min_kpi_delta: float = 0.02
    max_psi: float = 0.2
    drift_false_alarm_rate: float = Field(DEFAULT_FALSE_ALARM_RATE, gt=0, lt=0.5)  # clean samples held
    drift_min_rows: int = Field(DEFAULT_MIN_ROWS, ge=20)  # fewer current rows: drift "insufficient"
    require_reproducibility: bool = True
    smoke_rows: int = 200
    # the model's guard metrics (manifest ``guards``): each an absolute limit on the candidate's logged value
    guards: list[GuardMetric] = Field(default_factory=list)


class VersionFacts(BaseModel):
    """What the dossier knows of one model version."""

    model_config = ConfigDict(frozen=True)
    name: str
    version: str
    run_id: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    artifact_sha256: str | None = None
    # the training data: its timestamp (a ``data_timestamp`` tag of the version, its run or a training
    # dataset input, else a date in the source of a dataset logged with ``mlflow.log_input``) and those
    # datasets, each as ``name@digest (context) from source``
    data_timestamp: str | None = None
    datasets: list[str] = Field(default_factory=list)


class EnvironmentFacts(BaseModel):
    """How a version can be rebuilt, from what MLflow logged with it: the ``requirements.txt`` MLflow writes
    beside every model (its SHA-256 over the sorted requirement lines, and the ones not pinned to one
    version) and the training code's commit (``mlflow.source.git.commit``, else ``git_sha``: the training
    run's tags, then the version's)."""

    model_config = ConfigDict(frozen=True)
    requirements_sha256: str | None = None
    requirements: int = 0
    unpinned: list[str] = Field(default_factory=list)
    source_commit: str | None = None


class Dossier(BaseModel):
    model_config = ConfigDict(frozen=True)
    model: str
    candidate: VersionFacts
    champion: VersionFacts | None
    archive_version: str | None
    environment: EnvironmentFacts | None = None  # the candidate's
    champion_environment: EnvironmentFacts | None = None
    critical: bool = False
    monitoring_configured: bool = True
    drift_psi: dict[str, float] = Field(default_factory=dict)
    drift_measure: str | None = None  # why drift could not be measured, as what to do about it
    drift_sample: DriftSample | None = None  # n, m and the bins behind drift_psi (None: size unknown)
    smoke: dict[str, Any] = Field(default_factory=dict)  # {"ok": bool, "rows": n, "error": str|None}
    exception: dict[str, Any] | None = None  # an approved KPI exception: {"decision_id", "expires_at"}
    built_at: datetime


class GateResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    status: Literal["pass", "fail", "waived", "insufficient"]  # insufficient: not judged, not blocking
    measured: Any = None
    threshold: Any = None
    evidence: str
    fixable: bool = True
    measure: str | None = None  # what fixes it


class PromotionOutcome(StrEnum):
    promote = "promote"
    hold = "hold"
    reject = "reject"


class GateReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    model: str
    candidate_version: str
    champion_version: str | None
    gates: list[GateResult]
    outcome: PromotionOutcome
    measures_plan: list[str] = Field(default_factory=list)
    evaluated_at: datetime

    @property
    def tech_gate_pass(self) -> bool:
        return self.outcome is PromotionOutcome.promote

    def gate(self, name: str) -> GateResult:
        return next(g for g in self.gates if g.name == name)

    def as_json(self) -> dict[str, Any]:
        """The report as stored in the technical decision record (``details.gate_report``)."""
        return self.model_dump(mode="json")

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of ``as_json()``: ties outcome records to the stored report."""
        canonical = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def markdown(self) -> str:
        lines = [
            f"# Gate report: {self.model} v{self.candidate_version} → **{self.outcome.value.upper()}**",
            f"Champion: {('v' + self.champion_version) if self.champion_version else 'none (first release)'}",
            "",
            "| gate | status | measured | threshold | evidence |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {g.name} | {g.status} | {g.measured} | {g.threshold} | {g.evidence} |" for g in self.gates]
        if self.measures_plan:
            lines += ["", "## Measures plan", *[f"- {m}" for m in self.measures_plan]]
        return "\n".join(lines)


def kpi_delta(candidate: float, champion: float, higher_is_better: bool = True) -> float:
    """Relative improvement of the candidate over the champion (0.03 = 3 % better), in the KPI's direction."""
    return relative_gain(candidate, champion, Direction.higher_better if higher_is_better else Direction.lower_better)


def _kpi_gate(d: Dossier, p: GatePolicy, now: datetime) -> GateResult:
    name, metric = "kpi_delta", p.primary_metric
    cand = d.candidate.metrics.get(metric)
    if cand is None:
        return GateResult(
            name=name,
            status="fail",
            evidence=f"candidate has no metric {metric!r}",
            threshold=p.min_kpi_delta,
            measure=f"log {metric} for the candidate's run",
        )
    if d.champion is None:
        return GateResult(
            name=name,
            status="pass",
            measured=None,
            threshold=p.min_kpi_delta,
            evidence=f"first release: no champion to beat ({metric}={cand:.4f})",
        )
    champ = d.champion.metrics.get(metric)
    if champ is None:
        return GateResult(
            name=name,
            status="fail",
            evidence=f"champion v{d.champion.version} has no {metric!r}",
            threshold=p.min_kpi_delta,
            measure=f"log {metric} for the champion",
        )
    delta = kpi_delta(cand, champ, p.higher_is_better)
    evidence = f"{metric}: candidate {cand:.4f} vs champion {champ:.4f} ({delta:+.2%})"
    if delta >= p.min_kpi_delta - 1e-12:  # exactly +2 % passes, whatever the float rounding
        return GateResult(
            name=name, status="pass", measured=round(delta, 6), threshold=p.min_kpi_delta, evidence=evidence
        )
    exc = d.exception
    # An exception waives the +2 % margin, never a worse candidate, and only when granted for this gate.
    if exc and exc.get("gate") == name and delta >= 0 and datetime.fromisoformat(exc["expires_at"]) > now:
        return GateResult(
            name=name,
            status="waived",
            measured=round(delta, 6),
            threshold=p.min_kpi_delta,
            evidence=f"{evidence}; waived by approved exception {exc['decision_id']} until {exc['expires_at']}",
        )
    return GateResult(
        name=name,
        status="fail",
        measured=round(delta, 6),
        threshold=p.min_kpi_delta,
        evidence=evidence,
        fixable=delta >= 0,
        measure=(
            f"improve {metric} by {p.min_kpi_delta:+.0%} over the champion, or obtain an approved exception"
            if delta >= 0
            # not fixable for this version (no exception waives a worse candidate): what the plan says
            else f"this version is worse than the champion ({delta:+.1%} on {metric}) and cannot be promoted: "
            "train a new candidate"
        ),
    )


def _drift_gate(d: Dossier, p: GatePolicy) -> GateResult:
    if not d.drift_psi:
        return GateResult(
            name="drift",
            status="fail",
            threshold=p.max_psi,
            evidence="no drift measurement",
            measure=d.drift_measure or "measure PSI of the training data against current prod inputs",
        )
    j = judge_drift(d.drift_psi, d.drift_sample, p.max_psi, p.drift_false_alarm_rate, p.drift_min_rows)
    if j.outcome == "insufficient":
        return GateResult(
            name="drift",
            status="insufficient",
            measured=round(j.max_psi, 4),
            threshold=p.max_psi,
            evidence=j.text(),
            measure=f"provide at least {p.drift_min_rows} rows of current inputs (and a reference profile of as "
            "many) to judge drift",
        )
    ok = j.outcome == "ok"
    return GateResult(
        name="drift",
        status="pass" if ok else "fail",
        measured=round(j.max_psi, 4),
        threshold=round(j.limit, 4),
        evidence=j.text(),
        measure=None if ok else f"retrain on recent data (training data no longer matches prod inputs: {j.basis()})",
    )


def _repro_gate(d: Dossier, p: GatePolicy) -> GateResult:
    """Can the candidate be rebuilt? Its own logged requirements, every one pinned, and its source commit."""
    name = "reproducibility"
    if not p.require_reproducibility:
        return GateResult(name=name, status="waived", evidence="not required by the gate policy")
    env = d.environment
    if env is None or env.requirements_sha256 is None:
        return GateResult(
            name=name,
            status="fail",
            evidence="no requirements.txt logged with the model",
            measure="log the model with MLflow (it writes requirements.txt beside the model; pass "
            "pip_requirements=[...] with pinned versions if inference misses some)",
        )
    if env.unpinned:
        return GateResult(
            name=name,
            status="fail",
            measured=env.requirements_sha256[:16],
            evidence=f"requirements not pinned to one version: {', '.join(env.unpinned[:5])}",
            measure="pin every requirement (name==version) in the model's pip_requirements",
        )
    if not env.source_commit:
        return GateResult(
            name=name,
            status="fail",
            measured=env.requirements_sha256[:16],
            evidence="no source commit recorded for the training run",
            measure="train from a git checkout (MLflow tags mlflow.source.git.commit) or tag the run git_sha",
        )
    champ = d.champion_environment
    same = champ is not None and champ.requirements_sha256 == env.requirements_sha256
    vs = "" if champ is None else (" (same as the champion's)" if same else " (differs from the champion's)")
    return GateResult(
        name=name,
        status="pass",
        measured=env.requirements_sha256[:16],
        threshold="pinned requirements + commit",
        evidence=f"{env.requirements} pinned requirements{vs}, commit {env.source_commit[:12]}",
    )


def _guards_gate(d: Dossier, p: GatePolicy) -> GateResult:
    """Every guard metric of the model within its limit, on the candidate's logged value, in the metric's
    direction (``max_latency_ms`` lower is better: value <= limit; ``recall`` higher: value >= limit)."""
    if not p.guards:
        return GateResult(name="guards", status="pass", evidence="no guard metrics declared for the model")
    missing = [g.metric for g in p.guards if g.metric not in d.candidate.metrics]
    broken: list[tuple[str, str]] = []  # (metric, what is wrong)
    for g in p.guards:
        value = d.candidate.metrics.get(g.metric)
        if value is None:
            continue
        higher = direction_of(g.metric, g.direction) is Direction.higher_better
        if (value < g.limit) if higher else (value > g.limit):
            broken.append((g.metric, f"{g.metric} {value:g} {'<' if higher else '>'} limit {g.limit:g}"))
    if missing or broken:
        return GateResult(
            name="guards",
            status="fail",
            evidence="; ".join([why for _, why in broken] + [f"{m} not logged" for m in missing]),
            measure="; ".join(
                [f"log {m} for the candidate's run" for m in missing]
                + [f"bring {m} within its limit" for m, _ in broken]
            ),
        )
    return GateResult(
        name="guards",
        status="pass",
        evidence="; ".join(f"{g.metric} {d.candidate.metrics[g.metric]:g} within {g.limit:g}" for g in p.guards),
    )


def _smoke_gate(d: Dossier) -> GateResult:
    s = d.smoke
    if s.get("ok"):
        return GateResult(
            name="smoke_test",
            status="pass",
            measured=s.get("rows"),
            threshold="no error",
            evidence=f"loaded from the registry and scored {s.get('rows')} rows of {s.get('source', 'holdout data')}",
        )
    if s.get("measure"):  # something the training run did not log: a new version with it can pass
        return GateResult(
            name="smoke_test",
            status="fail",
            measured=s.get("rows"),
            threshold="no error",
            evidence=f"cannot smoke-test: {s.get('error')}",
            measure=s["measure"],
        )
    return GateResult(
        name="smoke_test",
        status="fail",
        measured=s.get("rows"),
        threshold="no error",
        evidence=f"loading or scoring failed: {s.get('error')}",
        fixable=False,
    )


def _canary_gate(d: Dossier) -> GateResult:
    if not d.critical:
        return GateResult(name="canary_shadow", status="pass", evidence="model not marked critical: not required")
    ref = d.candidate.tags.get("shadow_evidence_ref")
    if ref:
        return GateResult(name="canary_shadow", status="pass", measured=ref, evidence=f"shadow/canary evidence {ref}")
    return GateResult(
        name="canary_shadow",
        status="fail",
        evidence="critical model without shadow/canary evidence",
        measure="run the candidate as challenger in shadow and tag shadow_evidence_ref",
    )


def _rollback_gate(d: Dossier) -> GateResult:
    if not d.monitoring_configured:
        return GateResult(
            name="monitoring_rollback",
            status="fail",
            evidence="no monitoring thresholds configured",
            measure="configure the monitoring-thresholds block",
        )
    if d.champion is None:
        return GateResult(
            name="monitoring_rollback", status="pass", evidence="first release: no rollback target needed"
        )
    target = d.champion.version
    return GateResult(
        name="monitoring_rollback",
        status="pass",
        measured=f"v{target}",
        evidence=f"monitoring configured; current champion v{target} becomes the archive (rollback) target"
        + (f"; archive holds v{d.archive_version}" if d.archive_version else ""),
    )


def execute_gates(dossier: Dossier, policy: GatePolicy, now: datetime) -> GateReport:
    gates = [
        _kpi_gate(dossier, policy, now),
        _guards_gate(dossier, policy),
        _drift_gate(dossier, policy),
        _repro_gate(dossier, policy),
        _smoke_gate(dossier),
        _canary_gate(dossier),
        _rollback_gate(dossier),
    ]
    failed = [g for g in gates if g.status == "fail"]
    if not failed:
        outcome = PromotionOutcome.promote
    elif all(g.fixable for g in failed):
        outcome = PromotionOutcome.hold
    else:
        outcome = PromotionOutcome.reject
    return GateReport(
        model=dossier.model,
        candidate_version=dossier.candidate.version,
        champion_version=dossier.champion.version if dossier.champion else None,
        gates=gates,
        outcome=outcome,
        measures_plan=[f"{g.name}: {g.measure}" for g in failed if g.measure]
        + [f"{g.name}: {g.evidence}; {g.measure}" for g in gates if g.status == "insufficient"],
        evaluated_at=now,
    )
