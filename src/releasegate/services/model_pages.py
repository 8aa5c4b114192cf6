"""The console's model pages (``GET /models``, ``GET /models/{name}``): an inventory of every governed
model and, per model, its decisions, its EOD monitoring per business date and its champion history.

Read from the decision log through indexed queries (``store.model_views``), never by scanning it:

* the inventory asks, for all models at once, their concluding promotion records (final, hold, reject),
  their rollback records (subject ``model:<name>``), the unexpired exceptions of any model version and
  which holds were answered: four queries whatever the number of models;
* a model page asks the records naming the model (``decision_index.model_name``: promotions, approvals,
  EOD verdicts, rollback requests, acknowledgements), the records of ``model:<name>`` (rollbacks,
  retrains) and the exceptions of its versions.

Only records with a valid service seal count (``SealedDecisionLog.is_trusted``): an unsealed record
written around the service path is neither shown nor believed. The manifest gives the inventory's
list (owners with the governed config's, risk tier, EOD schedule). ``halted`` is the halt switch's
answer for a model (why it is halted, or None); ``champion_now`` the registry's champion alias (one
call, on a model page only); both default to not asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from releasegate import records
from releasegate.clock import Clock
from releasegate.decisions import DecisionKind, DecisionRecord
from releasegate.model_views import (
    ChampionStep,
    Check,
    EvidenceDownload,
    LastPromotion,
    ModelPage,
    ModelRow,
    MonitoringDay,
    TimelineEntry,
)
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.models import ModelSpec
from releasegate.policy.triggers import CronSchedule, ScheduleTrigger
from releasegate.services.evidence_pack import EvidenceSources, NoEvidence, archive, assemble
from releasegate.store import model_views as views
from releasegate.store.trust import SealedDecisionLog

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
TIMELINE_KINDS = (  # the decisions naming a model in their details, besides its EOD verdicts
    DecisionKind.promotion,
    DecisionKind.approval,
    DecisionKind.rollback_request,
    DecisionKind.gate_failure_ack,
    DecisionKind.incident,
)
TIMELINE = 200  # the newest decisions a model page lists
DAYS = 400  # the newest EOD verdicts a model page charts


def never_halted(model: str) -> str | None:
    """The default halt answer (a console wired without the halt switch: ``services.halt.why_halted``
    is the real one): no model is halted."""
    return None


@dataclass
class ModelPages:
    log: SealedDecisionLog
    specs: Callable[[], list[ModelSpec]]  # the model manifest's models
    config: Callable[[], ApproverConfig]  # the governed approvers config (extra owners)
    clock: Clock
    halted: Callable[[str], str | None] = never_halted  # the halt switch: why a model is halted, or None
    champion_now: Callable[[str], str | None] | None = None  # the registry's champion alias of a model
    evidence_sources: Callable[[], EvidenceSources] | None = None  # what an evidence pack is built from
    render: Callable[[dict[str, Any]], str] | None = None  # the pack's HTML document (services.evidence_html)

    # -- the inventory -----------------------------------------------------------------------------
    def inventory(self) -> list[ModelRow]:
        specs = {s.name: s for s in self.specs()}
        names = sorted(specs)
        if not names:
            return []
        now = self.clock.now()
        config = self.config()
        concluded = self._trusted(
            views.by_model(self.log, names, [DecisionKind.promotion], ["final"], ["hold", "reject"])
        )
        rollbacks = self._trusted(
            views.by_subject(self.log, [records.model_subject(n) for n in names], [DecisionKind.rollback])
        )
        holds = [r for r in concluded if r.details.get("promotion_outcome") == "hold"]
        answered = views.answered(self.log, [r.decision_id for r in holds])
        exceptions = self._exceptions(now)
        per_model: dict[str, list[DecisionRecord]] = {n: [] for n in names}
        for r in concluded:
            per_model[str(r.details["model_name"])].append(r)
        rolled: dict[str, list[DecisionRecord]] = {n: [] for n in names}
        for r in rollbacks:
            rolled[r.subject.removeprefix("model:")].append(r)
        nexts: dict[tuple[str, str, bool], datetime | None] = {}  # models share schedules: each computed once
        return [
            self._row(specs[n], config, per_model[n], rolled[n], answered, exceptions.get(n, []), now, nexts)
            for n in names
        ]

    def _row(
        self,
        spec: ModelSpec,
        config: ApproverConfig,
        concluded: list[DecisionRecord],
        rollbacks: list[DecisionRecord],
        answered: set[str],
        exceptions: list[DecisionRecord],
        now: datetime,
        nexts: dict[tuple[str, str, bool], datetime | None] | None = None,
    ) -> ModelRow:
        steps = champion_steps(concluded, rollbacks)
        last = concluded[-1] if concluded else None
        finals = [r for r in concluded if r.details.get("status") == "final"]
        promoted_since = finals[-1].decision_timestamp if finals else EPOCH
        open_holds = sum(
            1
            for r in concluded
            if r.details.get("promotion_outcome") == "hold"
            and r.decision_id not in answered
            and r.decision_timestamp > promoted_since
        )
        eod = spec.eod
        return ModelRow(
            name=spec.name,
            owners=sorted({*spec.owners, *config.owners.get(spec.name, [])}),
            risk_tier=spec.risk_tier.value,
            criticality=spec.criticality.value,
            champion=steps[-1].version if steps else None,
            champion_since=steps[-1].at if steps else None,
            last_promotion=_last_promotion(last) if last else None,
            open_holds=open_holds,
            open_exceptions=len(exceptions),
            next_eod=_next_eod(spec, now, {} if nexts is None else nexts),
            eod_schedule=f"{eod.cron} ({eod.timezone})" if eod and eod.active else None,
            halted=self.halted(spec.name),
        )

    # -- one model -----------------------------------------------------------------------------------
    def page(self, name: str) -> ModelPage | None:
        """The model page of ``name``; None when neither the manifest nor the log knows it. Its newest
        ``TIMELINE`` decisions and ``DAYS`` EOD verdicts; every concluded promotion and rollback."""
        spec = next((s for s in self.specs() if s.name == name), None)
        log = self.log
        concluded = self._trusted(views.by_model(log, [name], [DecisionKind.promotion], ["final"], ["hold", "reject"]))
        recent = self._trusted(views.by_model(log, [name], TIMELINE_KINDS, newest=TIMELINE))
        monitoring = self._trusted(views.by_model(log, [name], [DecisionKind.monitoring], newest=DAYS))
        own = self._trusted(
            views.by_subject(log, [records.model_subject(name)], [DecisionKind.rollback, DecisionKind.retrain])
        )
        if spec is None and not (concluded or recent or monitoring or own):
            return None
        now = self.clock.now()
        rollbacks = [r for r in own if r.decision_kind is DecisionKind.rollback]
        versions = _versions([*concluded, *recent], own)
        exceptions = self._trusted(
            views.by_subject(log, [records.model_version_subject(name, v) for v in versions], [DecisionKind.override])
        )
        holds = [r for r in concluded if r.details.get("promotion_outcome") == "hold"]
        answered = views.answered(log, [r.decision_id for r in holds])
        open_exc = [r for r in exceptions if r.exception_expiry is not None and r.exception_expiry > now]
        steps = champion_steps(concluded, rollbacks)
        if spec is None:
            row = ModelRow(
                name, [], "unknown", "unknown", None, None, None, 0, len(open_exc), None, None, self.halted(name), False
            )
            row = _with_champion(row, steps, concluded)
        else:
            row = self._row(spec, self.config(), concluded, rollbacks, answered, open_exc, now)
        shown = {r.decision_id: r for r in [*concluded, *recent, *own, *exceptions, *filter(_acted, monitoring)]}
        timeline = sorted(
            (e for r in shown.values() if (e := timeline_entry(r)) is not None), key=lambda e: e.at, reverse=True
        )
        kpi = spec.primary_kpi.metric if spec else None
        direction = spec.primary_kpi.better.value if spec else "higher"
        registry = None
        if self.champion_now is not None:
            try:
                registry = self.champion_now(name)
            except Exception:  # noqa: BLE001 - the registry unreachable: the page shows the log's answer
                registry = None
        return ModelPage(
            row=row,
            kpi=kpi,
            kpi_direction=direction,
            timeline=timeline[:TIMELINE],
            days=monitoring_days(monitoring),
            champion_history=steps,
            versions=_prod_versions(concluded, rollbacks),
            registry_champion=registry,
        )

    def evidence(self, name: str, version: str, actor: str) -> EvidenceDownload:
        """The signed evidence pack of ``name`` v``version`` as a zip (``releasegate evidence export``'s
        files); ``NoEvidence`` (a ``Refused``) when the log holds no promotion of that version."""
        if self.evidence_sources is None or self.render is None:
            raise NoEvidence("evidence", "this console builds no evidence packs (no signing key wired)")
        src = self.evidence_sources()
        pack = assemble(src, name, version)
        return EvidenceDownload(f"{name}-v{version}-evidence.zip", archive(pack, src.signing_key, self.render))

    # -- helpers ---------------------------------------------------------------------------------------
    def _trusted(self, found: Iterable[DecisionRecord]) -> list[DecisionRecord]:
        return [r for r in found if self.log.is_trusted(r)]

    def _exceptions(self, now: datetime) -> dict[str, list[DecisionRecord]]:
        out: dict[str, list[DecisionRecord]] = {}
        for r in self._trusted(views.unexpired_exceptions(self.log, now)):
            model = r.subject.removeprefix("model:").rpartition(":v")[0]
            if model:
                out.setdefault(model, []).append(r)
        return out


def _next_eod(spec: ModelSpec, now: datetime, known: dict[tuple[str, str, bool], datetime | None]) -> datetime | None:
    if spec.eod is None:
        return None
    key = (spec.eod.cron, spec.eod.timezone, spec.eod.active)
    if key not in known:
        known[key] = next_eod(spec, now)
    return known[key]


def next_eod(spec: ModelSpec, now: datetime) -> datetime | None:
    """The next time the model's EOD schedule fires after ``now`` (UTC), DST as the scheduler applies it."""
    if spec.eod is None or not spec.eod.active:
        return None
    trigger = ScheduleTrigger(
        deployment_id=f"eod-scoring/{spec.key}",
        schedule=CronSchedule(cron=spec.eod.cron),
        timezone=spec.eod.timezone,
        effective_from=EPOCH,
    )
    return trigger.next_runs(now, 1)[0]


def champion_steps(concluded: list[DecisionRecord], rollbacks: list[DecisionRecord]) -> list[ChampionStep]:
    """Each time the champion changed, oldest first: a final promotion (its prod version) or a final
    rollback (the version it restored). A step to the version already champion is left out."""
    changes: list[ChampionStep] = []
    for r in sorted([*concluded, *rollbacks], key=lambda r: r.decision_timestamp):
        if r.decision_kind is DecisionKind.promotion and r.details.get("status") == "final":
            version, how = r.details.get("prod_version"), "promotion"
        elif r.decision_kind is DecisionKind.rollback and r.details.get("status") == "final":
            version, how = r.details.get("new_version"), "rollback"
        else:
            continue
        if version is None or (changes and changes[-1].version == str(version)):
            continue
        changes.append(ChampionStep(r.decision_timestamp, str(version), how, r.decision_id))
    return changes


def _with_champion(row: ModelRow, steps: list[ChampionStep], concluded: list[DecisionRecord]) -> ModelRow:
    from dataclasses import replace

    return replace(
        row,
        champion=steps[-1].version if steps else None,
        champion_since=steps[-1].at if steps else None,
        last_promotion=_last_promotion(concluded[-1]) if concluded else None,
    )


def _last_promotion(r: DecisionRecord) -> LastPromotion:
    d = r.details
    outcome = "final" if d.get("status") == "final" else str(d.get("promotion_outcome") or d.get("status"))
    prod = d.get("prod_version")
    return LastPromotion(r.decision_timestamp, str(d.get("candidate_version")), outcome, str(prod) if prod else None)


def _versions(named: list[DecisionRecord], own: list[DecisionRecord]) -> list[str]:
    """Versions the log names for the model: candidates of its promotions and approvals, the versions
    its retrains registered (an exception is granted for one of them)."""
    found = [str(r.details["candidate_version"]) for r in named if r.details.get("candidate_version")]
    found += [
        str(r.details["version"]) for r in own if r.decision_kind is DecisionKind.retrain and r.details.get("version")
    ]
    return list(dict.fromkeys(found))


def _prod_versions(concluded: list[DecisionRecord], rollbacks: list[DecisionRecord]) -> list[str]:
    """Versions with an evidence pack: the candidate versions a promotion concluded on, newest first."""
    found = [str(r.details["candidate_version"]) for r in reversed(concluded) if r.details.get("candidate_version")]
    return list(dict.fromkeys(found))


def _acted(r: DecisionRecord) -> bool:
    """An EOD verdict that asked for more than watching: a timeline entry of its own."""
    return str(r.details.get("action")) != "monitor" or bool(r.details.get("retrain"))


def timeline_entry(r: DecisionRecord) -> TimelineEntry | None:
    d, kind = r.details, r.decision_kind
    version = d.get("candidate_version") or d.get("version") or d.get("new_version")
    if kind is DecisionKind.promotion:
        if d.get("status") == "final":
            title = f"promoted v{d.get('candidate_version')} as prod v{d.get('prod_version')}"
        elif d.get("promotion_outcome") in ("hold", "reject", "promote") and not d.get("status"):
            title = f"gates: {d.get('promotion_outcome')} v{d.get('candidate_version')}"
        else:
            title = f"promotion {d.get('status')} v{d.get('candidate_version')}"
    elif kind is DecisionKind.approval:
        title = f"{str(d.get('role', '')).upper()} approval by {d.get('approver', r.actor)}"
    elif kind is DecisionKind.rollback:
        status = d.get("status") or "refused"
        title = f"rollback {status}: v{d.get('previous_version')} -> v{d.get('new_version')}"
        version = d.get("new_version")
    elif kind is DecisionKind.retrain:
        title = (
            f"retrain ({d.get('trigger')}): registered v{d.get('version')}"
            if d.get("version")
            else (f"retrain ({d.get('trigger')})")
        )
    elif kind is DecisionKind.override:
        version = r.subject.rpartition(":v")[2]
        expiry = r.exception_expiry.date().isoformat() if r.exception_expiry else "no expiry"
        title = f"exception for v{version} ({d.get('gate', 'gate')}), until {expiry}"
        kind_name = "exception"
        return TimelineEntry(
            r.decision_timestamp,
            kind_name,
            title,
            r.decision_outcome.value,
            r.decision_rationale,
            r.decision_id,
            r.actor,
            str(version),
        )
    elif kind is DecisionKind.monitoring:
        title = f"EOD {d.get('business_date')}: {d.get('action')} ({d.get('reason_code')})"
    elif kind is DecisionKind.rollback_request:
        title = f"rollback requested ({d.get('method')}) of v{d.get('version')}"
    elif kind is DecisionKind.gate_failure_ack:
        title = f"gate failure acknowledged by {d.get('acknowledged_by') or r.actor}"
    elif kind is DecisionKind.incident:
        title = f"incident ({d.get('severity')})"
    else:
        return None
    return TimelineEntry(
        r.decision_timestamp,
        kind.value,
        title,
        r.decision_outcome.value,
        r.decision_rationale,
        r.decision_id,
        r.actor,
        str(version) if version is not None else None,
    )


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _check(checks: dict[str, Any], name: str) -> Check:
    c = checks.get(name) or {}
    return Check(_num(c.get("value")), _num(c.get("threshold")), bool(c.get("breached")))


def kpi_threshold(baseline: float | None, max_drop: float | None, direction: str) -> float | None:
    """The KPI value a day may reach before the drop check breaches: the baseline less (higher is
    better) or plus (lower is better) the allowed relative drop."""
    if baseline is None or max_drop is None:
        return None
    return baseline - max_drop * abs(baseline) if direction != "lower" else baseline + max_drop * abs(baseline)


def monitoring_day(r: DecisionRecord) -> MonitoringDay:
    d = r.details
    m = d.get("measures") or {}
    checks = m.get("checks") or {}
    champ = d.get("champion") or {}
    drop = _check(checks, "metric_drop")
    kpi = Check(
        _num(m.get("kpi_value")),
        kpi_threshold(_num(m.get("kpi_baseline")), drop.threshold, str(m.get("kpi_direction") or "higher")),
        drop.breached,
    )
    psi = _check(checks, "drift_psi")
    if psi.value is None and _num(champ.get("max_psi")) is not None:  # a verdict recorded before its measures
        psi = Check(_num(champ.get("max_psi")), None, "drift_psi" in (d.get("breached") or []))
    worst = sorted(((str(f), float(v)) for f, v in (m.get("psi") or {}).items()), key=lambda kv: -kv[1])[:3]
    led_to = "rollback" if d.get("rollback_method") else ("retrain" if d.get("retrain") else None)
    return MonitoringDay(
        business_date=str(d.get("business_date")),
        action=str(d.get("action")),
        reason_code=str(d.get("reason_code")),
        champion=str(champ["version"]) if champ.get("version") else None,
        kpi=kpi,
        psi=psi,
        worst_features=worst,
        missing=_check(checks, "missing_rate"),
        failures=_check(checks, "failure_rate"),
        latency=_check(checks, "latency_p95_ms"),
        breached=[str(b) for b in d.get("breached") or []],
        led_to=led_to,
        decision_id=r.decision_id,
    )


def monitoring_days(found: list[DecisionRecord]) -> list[MonitoringDay]:
    """One day per business date (its last verdict: a re-run replaces it), oldest date first."""
    last: dict[str, DecisionRecord] = {}
    for r in found:
        last[str(r.details.get("business_date"))] = r
    return [monitoring_day(last[day]) for day in sorted(last)]
