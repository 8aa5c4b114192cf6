"""Schedule rules Prefect lacks: what a cron run does at a DST change, and which late runs catch up.

Both live in the deployment's ``runtime_policy`` in ``prefect.yaml`` (``releasegate policy check``
validates them) and are applied by ``releasegate.adapters.prefect_schedule`` when a governed run starts.

**DST** (``runtime_policy.dst``) — a cron time in the deployment's timezone that falls in the hour the
clocks skip (last Sunday of March in Europe) or in the hour they repeat (last Sunday of October):

* ``first`` (default) — run once, at the first instant the local time exists: the repeated hour's first
  pass; for the skipped hour, the moment the clocks jump (03:00 for a 02:30 run in Europe/Zurich).
* ``shifted`` — run once, at the shifted time: the repeated hour's second pass (standard time); for the
  skipped hour, the same wall time one hour on (03:30 for 02:30).
* ``skip`` — that day's run does not happen; a decision records it.

Whatever Prefect's scheduler makes of such a time (Prefect 3.8 fires the skipped 02:30 at 01:30
local, an hour early; earlier versions fired the repeated hour twice: PrefectHQ/prefect#7381, #7468),
a run is mapped back to its nominal local occurrence and moved, skipped or run per the rule, and each
occurrence runs once (claimed by its key: a second run for it is dropped as a duplicate).

**Catch-up** (``runtime_policy.catch_up``) — scheduled runs that became late together (a worker was down;
PrefectHQ/prefect#15886, #19313): ``run_all`` (default), ``latest_only`` (a run is skipped when a later
scheduled run of the same deployment is already due) or ``at_most`` with ``max_runs: N`` (skipped when N
later ones are due). Pure module: times are passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim
from pydantic import BaseModel, ConfigDict, Field, model_validator


class DstRule(StrEnum):
    first = "first"
    shifted = "shifted"
    skip = "skip"


class CatchUpMode(StrEnum):
    run_all = "run_all"
    latest_only = "latest_only"
    at_most = "at_most"


class CatchUpPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: CatchUpMode = CatchUpMode.run_all
    max_runs: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _needs_max(self) -> CatchUpPolicy:
        if self.mode is CatchUpMode.at_most and self.max_runs is None:
            raise ValueError("catch_up.mode 'at_most' needs max_runs (how many late runs still run)")
        if self.mode is not CatchUpMode.at_most and self.max_runs is not None:
            raise ValueError(f"catch_up.max_runs applies only to mode 'at_most', not {self.mode.value!r}")
        return self


class Occurrence(BaseModel):
    """The cron occurrence a run belongs to: its nominal local wall time and how DST treats it."""

    model_config = ConfigDict(frozen=True)
    local: datetime  # naive wall time in the schedule's timezone
    timezone: str
    kind: Literal["normal", "missing", "repeated"]

    @property
    def key(self) -> str:
        return f"occurrence:{self.local.isoformat(timespec='minutes')}[{self.timezone}]"


class ScheduleVerdict(BaseModel):
    action: Literal["run", "move", "skip"]
    at: datetime | None = None  # move: when the run should start (UTC)
    occurrence: Occurrence | None = None
    reason: str


def _instants(local: datetime, tz: ZoneInfo) -> list[datetime]:
    """The UTC instants a naive local time names (two in a repeated hour; for a skipped one, the two
    readings with the offsets before and after the jump)."""
    out = {local.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1)}
    return sorted(out)


def _exists(local: datetime, tz: ZoneInfo) -> bool:
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def occurrence_at(local: datetime, timezone: str) -> Occurrence:
    """The occurrence of a naive local wall time in ``timezone``: normal, in the skipped or the repeated hour."""
    tz = ZoneInfo(timezone)
    if not _exists(local, tz):
        kind: Literal["normal", "missing", "repeated"] = "missing"
    elif len(_instants(local, tz)) == 2:
        kind = "repeated"
    else:
        kind = "normal"
    return Occurrence(local=local, timezone=timezone, kind=kind)


def occurrence_of(cron: str, timezone: str, fired_at: datetime) -> Occurrence | None:
    """The nominal occurrence of ``cron`` (in ``timezone``) that a run due at ``fired_at`` stands for;
    None when the run is on no occurrence (a manual run)."""
    tz = ZoneInfo(timezone)
    # a plain datetime, whatever subclass the caller has (Prefect's API gives pendulum-style DateTimes)
    fired = datetime.fromtimestamp(fired_at.timestamp(), UTC).replace(second=0, microsecond=0)
    naive = fired.astimezone(tz).replace(tzinfo=None)
    for local in CronSim(cron, naive - timedelta(hours=3)):
        if local > naive + timedelta(hours=3):
            return None
        if fired in _instants(local, tz):
            return occurrence_at(local, timezone)
    return None


def dst_target(occ: Occurrence, rule: DstRule) -> datetime | None:
    """When the occurrence runs under ``rule`` (UTC); None: it does not run (``skip``)."""
    if occ.kind == "normal":
        return occ.local.replace(tzinfo=ZoneInfo(occ.timezone)).astimezone(UTC)
    if rule is DstRule.skip:
        return None
    tz = ZoneInfo(occ.timezone)
    if occ.kind == "repeated":
        first, second = _instants(occ.local, tz)
        return first if rule is DstRule.first else second
    # missing: the instants read with the offsets after / before the jump; the jump itself is between
    after, before = _instants(occ.local, tz)
    if rule is DstRule.shifted:
        return before  # the same wall time, one hour on (02:30 read with the old offset = 03:30 new time)
    # first: the moment the clocks jump (the first minute whose offset is the new one)
    jump, offset = after, after.astimezone(tz).utcoffset()
    while jump < before and jump.astimezone(tz).utcoffset() == offset:
        jump += timedelta(minutes=1)
    return jump


def dst_verdict(cron: str, timezone: str, rule: DstRule, expected_start: datetime, now: datetime) -> ScheduleVerdict:
    """Run, move or skip a run of ``cron`` that was due at ``expected_start``, at ``now``."""
    occ = occurrence_of(cron, timezone, expected_start)
    now = datetime.fromtimestamp(now.timestamp(), UTC)
    if occ is None:
        return ScheduleVerdict(action="run", reason="not a cron occurrence (a manual or event run)")
    target = dst_target(occ, rule)
    wall = occ.local.isoformat(timespec="minutes")
    if target is None:
        return ScheduleVerdict(
            action="skip",
            occurrence=occ,
            reason=f"DST_SKIPPED: {wall} {occ.timezone} falls in the {occ.kind} hour and dst is 'skip'",
        )
    if occ.kind != "normal" and now < target - timedelta(seconds=30):
        return ScheduleVerdict(
            action="move",
            at=target,
            occurrence=occ,
            reason=f"DST_MOVED: {wall} {occ.timezone} falls in the {occ.kind} hour; dst '{rule.value}' runs it at "
            f"{target.astimezone(ZoneInfo(occ.timezone)).isoformat(timespec='minutes')}",
        )
    return ScheduleVerdict(action="run", occurrence=occ, reason=f"occurrence {wall} {occ.timezone} ({occ.kind})")


def catch_up_verdict(policy: CatchUpPolicy, later_due: int) -> ScheduleVerdict:
    """Whether a late run still runs when ``later_due`` later scheduled runs of its deployment are due."""
    if policy.mode is CatchUpMode.latest_only and later_due >= 1:
        return ScheduleVerdict(
            action="skip",
            reason=f"CATCH_UP_SKIPPED: {later_due} later scheduled run(s) already due; catch_up is 'latest_only'",
        )
    if policy.mode is CatchUpMode.at_most and policy.max_runs is not None and later_due >= policy.max_runs:
        return ScheduleVerdict(
            action="skip",
            reason=f"CATCH_UP_SKIPPED: {later_due} later scheduled run(s) already due; catch_up runs at most "
            f"{policy.max_runs}",
        )
    return ScheduleVerdict(action="run", reason=f"catch_up {policy.mode.value}: {later_due} later run(s) due")
