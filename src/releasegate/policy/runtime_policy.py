"""Runtime policy and the activation block: no deployment is activated without one.

A deployment's runtime policy has five parts: retries, retry delay, timeout, concurrency limit and
late-run behaviour. They live in ``prefect.yaml`` beside the deployment:

* ``concurrency_limit`` — Prefect's own deployment key (an int, or ``{limit, collision_strategy}``), so
  Prefect itself enforces it; or, for a flow that pauses for people (``promotion``), the same key inside
  ``runtime_policy``: releasegate then holds it as a Prefect global concurrency limit around the flow's
  work and not its waits (``concurrency_by = releasegate``). Prefect 3.8 revokes a deployment slot's
  lease when its run pauses and then cancels the paused run at the engine's next lease renewal (within
  225 s), so a deployment limit cannot be used on a flow that waits for an approval;
* ``runtime_policy`` — our key (Prefect ignores unknown deployment keys) with ``retries``,
  ``retry_delay_seconds``, ``timeout_seconds`` and ``late_run: {mode: run_late | skip,
  skip_after_minutes}``, and optionally ``dst: first | shifted | skip`` and ``catch_up: {mode: run_all |
  latest_only | at_most, max_runs}`` (``policy.schedule_rules``). Prefect has no per-deployment retries,
  timeout, late-run, DST or catch-up rule, so
  ``releasegate.adapters.prefect_flows.governed_flow`` applies them to the flow when it is loaded.

``check_deployments`` lists every deployment lacking a complete profile, every deployment entry that is
not a mapping and every schedule that is wrong (cron that does not parse, a timezone that is not an IANA
zone, an interval that is not positive); ``releasegate policy check`` exits 1 on any, and ``releasegate
deploy`` refuses to activate such a deployment. ``load_prefect_yaml`` reads with the strict loader
(``releasegate.yamlio``: duplicate keys refused). Pure module.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from releasegate.policy.schedule_rules import CatchUpPolicy, DstRule
from releasegate.policy.triggers import CronSchedule
from releasegate.yamlio import load_yaml


class LateRunMode(StrEnum):
    run_late = "run_late"
    skip = "skip"


class LateRunPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: LateRunMode
    skip_after_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None

    @model_validator(mode="after")
    def _skip_needs_minutes(self) -> LateRunPolicy:
        if self.mode is LateRunMode.skip and self.skip_after_minutes is None:
            raise ValueError("late_run.mode 'skip' needs skip_after_minutes")
        return self


class CollisionStrategy(StrEnum):
    ENQUEUE = "ENQUEUE"
    CANCEL_NEW = "CANCEL_NEW"


class RuntimePolicy(BaseModel):
    """The activation block of one deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    retries: Annotated[int, Field(ge=0, le=20)]
    retry_delay_seconds: Annotated[int, Field(ge=0, le=86_400)]
    timeout_seconds: Annotated[int, Field(ge=1, le=7 * 86_400)]
    concurrency_limit: Annotated[int, Field(ge=1, le=10_000)]
    collision_strategy: CollisionStrategy = CollisionStrategy.ENQUEUE
    # who enforces concurrency_limit: Prefect's deployment key, or releasegate (runtime_policy's own key)
    concurrency_by: Literal["prefect", "releasegate"] = "prefect"
    late_run: LateRunPolicy
    # schedule rules Prefect lacks (policy/schedule_rules.py); optional, with Prefect-like defaults
    dst: DstRule = DstRule.first
    catch_up: CatchUpPolicy = Field(default_factory=CatchUpPolicy)


REQUIRED = ("retries", "retry_delay_seconds", "timeout_seconds", "concurrency_limit", "late_run")


class PolicyProblem(BaseModel):
    deployment: str
    problems: list[str]

    def __str__(self) -> str:
        return f"{self.deployment}: " + "; ".join(self.problems)


def policy_from_deployment(dep: dict[str, Any]) -> RuntimePolicy:
    """Build the policy from a prefect.yaml deployment entry (raises ``ValueError`` when incomplete)."""
    problems = deployment_problems(dep)
    if problems:
        raise ValueError(f"deployment {dep.get('name')!r} has no complete runtime policy: {'; '.join(problems)}")
    return _build(dep)


def _build(dep: dict[str, Any]) -> RuntimePolicy:
    rp = dict(dep.get("runtime_policy") or {})
    rp.pop("concurrency_by", None)  # derived from where the limit is declared, never written
    cl = dep.get("concurrency_limit")
    if cl is None and "concurrency_limit" in rp:
        rp["concurrency_by"] = "releasegate"
    elif isinstance(cl, dict):
        rp["concurrency_limit"] = cl.get("limit")
        if cl.get("collision_strategy") is not None:
            rp["collision_strategy"] = cl["collision_strategy"]
    elif cl is not None:
        rp["concurrency_limit"] = cl
    return RuntimePolicy.model_validate(rp)


def deployment_problems(dep: dict[str, Any]) -> list[str]:
    """What is missing or wrong in one deployment's runtime policy (empty: complete)."""
    problems: list[str] = []
    rp = dep.get("runtime_policy")
    if not isinstance(rp, dict):
        problems.append("no runtime_policy (needs retries, retry_delay_seconds, timeout_seconds, late_run)")
        rp = {}
    cl = dep.get("concurrency_limit")
    limit = cl.get("limit") if isinstance(cl, dict) else cl
    own = rp.get("concurrency_limit")
    if limit is not None and own is not None:
        problems.append(
            "concurrency_limit: declared twice; keep Prefect's deployment key, or runtime_policy.concurrency_limit "
            "for a flow that pauses for people (held by releasegate around its work)"
        )
    elif limit is None and own is None:
        problems.append("no concurrency_limit")
    for key in ("retries", "retry_delay_seconds", "timeout_seconds", "late_run"):
        if isinstance(dep.get("runtime_policy"), dict) and key not in rp:
            problems.append(f"runtime_policy.{key} missing")
    if problems:
        return problems
    try:
        _build(dep)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "runtime_policy"
            problems.append(f"{loc}: {err['msg']}")
    return problems


def cron_schedules(dep: dict[str, Any]) -> list[tuple[str, str]]:
    """The deployment's cron schedules as (expression, timezone), aliases such as ``@daily`` expanded."""
    out: list[tuple[str, str]] = []
    for sched in dep.get("schedules") or []:
        if isinstance(sched, dict) and isinstance(sched.get("cron"), str):
            cron: str = sched["cron"]
            out.append((_CRON_ALIASES.get(cron.strip().lower()) or cron, str(sched.get("timezone") or "UTC")))
    return out


_CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_SCHEDULE_KINDS = ("cron", "interval", "rrule")
_INTERVAL = TypeAdapter(timedelta)


def schedule_problems(dep: dict[str, Any]) -> list[str]:
    """What is wrong in one deployment's ``schedules`` (empty: every schedule valid, or none)."""
    schedules = dep.get("schedules")
    if schedules is None:
        return []
    if not isinstance(schedules, list):
        return [f"schedules: must be a list of schedules (got {type(schedules).__name__})"]
    problems: list[str] = []
    for i, sched in enumerate(schedules):
        at = f"schedules[{i}]"
        if not isinstance(sched, dict):
            problems.append(f"{at}: must be a mapping with cron, interval or rrule (got {sched!r})")
            continue
        kinds = [k for k in _SCHEDULE_KINDS if sched.get(k) is not None]
        if len(kinds) != 1:
            problems.append(f"{at}: needs exactly one of cron, interval, rrule (got {', '.join(kinds) or 'none'})")
        cron = sched.get("cron")
        if cron is not None:
            expr = _CRON_ALIASES.get(cron.strip().lower(), cron) if isinstance(cron, str) else cron
            try:
                CronSchedule(cron=expr)
            except ValidationError as exc:
                problems.append(f"{at}.cron: {exc.errors()[0]['msg'].removeprefix('Value error, ')}")
        interval = sched.get("interval")
        if interval is not None:
            try:
                if isinstance(interval, bool):
                    raise ValueError
                if _INTERVAL.validate_python(interval) <= timedelta(0):
                    problems.append(f"{at}.interval: must be positive (seconds), got {interval!r}")
            except (ValidationError, ValueError):
                problems.append(f"{at}.interval: must be a positive number of seconds, got {interval!r}")
        tz = sched.get("timezone")
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError, TypeError):
                problems.append(f"{at}.timezone: {tz!r} is not an IANA timezone (e.g. Europe/Zurich)")
    return problems


def load_prefect_yaml(path: str | Path) -> dict[str, Any]:
    """Read prefect.yaml strictly; ``YamlError`` (a ``ValueError``) names file, line and rule."""
    doc = load_yaml(Path(path))
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a prefect.yaml mapping (the top level must be keys such as deployments:)")
    return doc


def queue_problems(dep: dict[str, Any], queues: dict[str, str], pool: str | None = None) -> list[str]:
    """The deployment's work queue (and pool) in prefect.yaml against the capacity policy's, which the
    gateway ranks it by: two places must not say two things."""
    name = dep.get("name")
    raw_pool = dep.get("work_pool")
    wp: dict[str, Any] = raw_pool if isinstance(raw_pool, dict) else {}
    out = []
    declared = wp.get("work_queue_name")
    expected = queues.get(str(name))
    if expected is not None and declared is not None and declared != expected:
        out.append(
            f"work_pool.work_queue_name: {declared!r} disagrees with the capacity policy "
            f"(deployments.{name}.queue: {expected!r}); set both to the same queue"
        )
    if pool is not None and wp.get("name") not in (None, pool):
        out.append(f"work_pool.name: {wp.get('name')!r} is not the capacity policy's pool {pool!r}")
    return out


def check_deployments(
    doc: dict[str, Any], queues: dict[str, str] | None = None, pool: str | None = None
) -> tuple[list[str], list[PolicyProblem]]:
    """Return (names of compliant deployments, problems of the others). With ``queues`` (deployment ->
    queue from the capacity policy) a deployment whose queue disagrees is a problem too."""
    ok: list[str] = []
    bad: list[PolicyProblem] = []
    deployments = doc.get("deployments") or []
    if not isinstance(deployments, list):
        rule = f"deployments: must be a list of deployment mappings (got {type(deployments).__name__})"
        return ok, [PolicyProblem(deployment="<deployments>", problems=[rule])]
    for i, dep in enumerate(deployments):
        if dep is not None and not isinstance(dep, dict):
            bad.append(
                PolicyProblem(
                    deployment=f"<deployment #{i + 1}>",
                    problems=[f"deployments[{i}]: must be a mapping with name, entrypoint, ... (got {dep!r})"],
                )
            )
            continue
        dep = dep or {}
        name = str(dep.get("name") or f"<deployment #{i + 1} without a name>")
        problems = deployment_problems(dep) + schedule_problems(dep)
        if queues is not None:
            problems += queue_problems(dep, queues, pool)
        if problems:
            bad.append(PolicyProblem(deployment=name, problems=problems))
        else:
            ok.append(name)
    return ok, bad


def find_deployment(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for dep in doc.get("deployments") or []:
        if isinstance(dep, dict) and dep.get("name") == name:
            return dep
    raise KeyError(f"no deployment named {name!r} in prefect.yaml")


class LateRunVerdict(BaseModel):
    run: bool
    lateness: timedelta
    reason: str


def late_run_verdict(policy: LateRunPolicy, scheduled_at: datetime | None, now: datetime) -> LateRunVerdict:
    """Should a run scheduled for ``scheduled_at`` still start at ``now``?"""
    if scheduled_at is None:
        return LateRunVerdict(run=True, lateness=timedelta(0), reason="not scheduled: started on demand")
    lateness = max(timedelta(0), now - scheduled_at)
    if policy.mode is LateRunMode.skip and policy.skip_after_minutes is not None:
        limit = timedelta(minutes=policy.skip_after_minutes)
        if lateness > limit:
            return LateRunVerdict(
                run=False,
                lateness=lateness,
                reason=f"LATE_RUN_SKIPPED: {int(lateness.total_seconds())} s late, policy skips after "
                f"{policy.skip_after_minutes} min",
            )
    return LateRunVerdict(run=True, lateness=lateness, reason="on time or run_late policy")
