"""A crashed run's retry: what its runtime policy allows after its process died.

Prefect retries a flow run that *fails* (the engine raises, the server answers ``AwaitingRetry``), but a
run whose process died (a killed worker, a lost machine) never reaches that point: Prefect's zombie
automation marks it ``Crashed`` when its heartbeats stop, and nothing runs it again. releasegate gives it
the same budget: each crash takes one of the run's ``retries`` (its runtime policy's, which the run
carries as its ``empirical_policy``); while one is left the run is rescheduled ``retry_delay_seconds``
after the crash, and after that it stays ``Crashed``. A crash older than ``max_age`` is left alone (a
run nobody missed for a day is not started behind its owners' backs). Pure: the caller reads the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

MAX_AGE = timedelta(hours=24)
# How often a flow run sends its heartbeat (Prefect's setting; its minimum is 30 s). The zombie
# automation (deployments/automations.yaml) marks a run Crashed after 120 s without one.
HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
HEARTBEAT_SECONDS = 30


@dataclass(frozen=True)
class CrashVerdict:
    action: Literal["retry", "give_up", "too_old"]
    crashes: int  # how many times the run has crashed, this one included
    retries: int  # what its runtime policy allows
    at: datetime | None  # when the retry is due
    reason: str


def crash_verdict(
    crashes: int,
    retries: int | None,
    retry_delay_seconds: float | None,
    crashed_at: datetime,
    now: datetime,
    max_age: timedelta = MAX_AGE,
) -> CrashVerdict:
    allowed = max(0, retries or 0)
    if now - crashed_at > max_age:
        return CrashVerdict(
            "too_old",
            crashes,
            allowed,
            None,
            f"crashed at {crashed_at.isoformat()}, more than {max_age} ago: not retried automatically "
            "(retry it from the Prefect UI when it is still wanted)",
        )
    if crashes > allowed:
        return CrashVerdict(
            "give_up",
            crashes,
            allowed,
            None,
            f"crashed {crashes} time(s); its runtime policy allows {allowed} retr{'y' if allowed == 1 else 'ies'}: "
            "left Crashed (retry it from the Prefect UI once the cause is fixed)",
        )
    at = crashed_at + timedelta(seconds=max(0.0, float(retry_delay_seconds or 0)))
    return CrashVerdict(
        "retry",
        crashes,
        allowed,
        at,
        f"crashed: retry {crashes} of {allowed} per its runtime policy, due {at.isoformat()} "
        f"(retry_delay_seconds {int(retry_delay_seconds or 0)})",
    )
