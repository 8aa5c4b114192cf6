"""Remind the people concerned, before a promotion's joint release ack expires, that it will (the deferral
sweeper calls this every minute). Which promotions are due is ``policy.ack_reminders``: every business
approval is in, the release has not happened (a release window or change freeze deferred the run, or
the run is down), and the ack expires within the lead (``RELEASEGATE_ACK_REMINDER_LEAD_MINUTES``).

Addressees: the approvers whose approvals the ack joins (they are asked again once it expires) and the
``overrides`` list of the governed approvers config (who may start the deferred run now, with a ticket,
so the release happens in time). The notice names the model, the version, when the ack expires and what
happens then, with the deep link to the run's inbox item, over the same channels and notification log
as the approvers' notices (``services.promotion_notices.deliver``): keyed
``ack-reminder:<run id>:<expiry>``, recorded under ``notification:<run id>``.

Once per promotion and expiry: the reminder is derived from the sealed records each sweep, not from an
event reported once, so a sweep that dies before sending leaves it due for the next sweep; the check,
the send and the record of each reminder run under ``serial`` (the flow passes a Prefect global
concurrency lock), so two sweepers at once send it once. A sweep that dies between sending and
recording sends it again. A failed channel is recorded and not tried again; nothing here raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any, Protocol

from releasegate.decisions import DecisionKind, DecisionRecord
from releasegate.policy.ack_reminders import AckReminder, PromotionRun, RunRecord, ack_reminders_due
from releasegate.policy.handshake import ACK_VALIDITY, Role
from releasegate.ports import DecisionLog
from releasegate.promotion_ports import Notice, Notifications
from releasegate.services.promotion_notices import deliver

_logger = logging.getLogger("releasegate.ack_reminders")
PREFIX = "promotion:"


class PromotionRuns(Protocol):
    def with_recent_approvals(self, now: datetime) -> list[PromotionRun]:
        """The promotion runs with a business approval given within the ack's validity before ``now``,
        each with all its sealed records (older ones included)."""
        ...


class LoggedPromotionRuns:
    """``PromotionRuns`` on the sealed decision log: only sealed records count. ``requires_compliance``
    tells whether a model needs the COMPLIANCE approval (its manifest's ``risk_tier`` is high)."""

    def __init__(
        self, log: DecisionLog, requires_compliance: Callable[[str], bool], validity: timedelta = ACK_VALIDITY
    ) -> None:
        self.log, self.requires_compliance, self.validity = log, requires_compliance, validity

    def with_recent_approvals(self, now: datetime) -> list[PromotionRun]:
        recent, _ = self.log.trusted(kind=DecisionKind.approval, subject_prefix=PREFIX, since=now - self.validity)
        business = {r.value for r in Role}
        subjects = sorted({r.subject for r in recent if r.details.get("role") in business})
        if not subjects:
            return []
        good, _ = self.log.trusted(subjects=subjects)
        by_run: dict[str, list[DecisionRecord]] = {}
        for rec in good:
            if rec.decision_kind in (DecisionKind.approval, DecisionKind.promotion):
                by_run.setdefault(rec.subject, []).append(rec)
        out = []
        high: dict[str, bool] = {}  # one manifest read per model and sweep
        for subject, recs in by_run.items():
            first = next((r for r in recs if r.details.get("role") in business), recs[0])
            model, version = str(first.details.get("model_name", "?")), str(first.details.get("candidate_version", "?"))
            if model not in high:
                high[model] = self.requires_compliance(model)
            out.append(
                PromotionRun(
                    run_id=subject.removeprefix(PREFIX),
                    model=model,
                    version=version,
                    requires_compliance=high[model],
                    records=tuple(run_record(r) for r in recs),
                )
            )
        return out


def run_record(rec: DecisionRecord) -> RunRecord:
    d = rec.details
    if rec.decision_kind is DecisionKind.promotion:
        return RunRecord(kind="promotion", at=rec.decision_timestamp, reason_code=d.get("reason_code"))
    return RunRecord(
        kind="approval",
        at=rec.decision_timestamp,
        role=d.get("role"),
        approver=d.get("approver"),
        decision=d.get("decision") if d.get("role") != "tech" else None,
        refused=bool(d.get("refusal")),
    )


def when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def reminder_notice(r: AckReminder, overrides: Sequence[str], link: str) -> Notice:
    approvers = tuple(name for _, name in r.approvals)
    who = tuple(dict.fromkeys([*approvers, *overrides]))
    return Notice(
        key=r.key,
        run_id=r.run_id,
        role="joint-ack",
        model=r.model,
        version=r.version,
        requested_by="releasegate:deferral-sweeper",
        approvers=who,
        link=link,
        kind="reminder",
        summary=f"reminder: the joint release ack of {r.model} v{r.version} expires at {when(r.expires_at)}",
        facts=(
            f"Approved by: {', '.join(f'{name} ({role.upper()})' for role, name in r.approvals)}",
            f"Expires: {r.expires_at.isoformat()} (24 h after the later approval); the release has not happened "
            "yet (a release window or change freeze defers it, or its run is down)",
            "Then: the run records ACK_EXPIRED, re-checks the gates and asks every approver again (re-approval)",
            "To release in time: whoever is on the overrides list may start the deferred run now, with a ticket "
            f"({', '.join(overrides) or 'nobody listed'})",
            f"Run: {r.run_id}",
        ),
    )


def notify_ack_reminders(
    n: Notifications | None,
    runs: PromotionRuns,
    addressees: Callable[[str], Sequence[str]],
    now: datetime,
    lead: timedelta,
    serial: Callable[[], AbstractContextManager[Any]] = nullcontext,
    logger: logging.Logger | logging.LoggerAdapter[Any] = _logger,
) -> list[str]:
    """Send each reminder due at ``now`` and not yet sent; returns the decision ids recorded."""
    if n is None or not n.notifiers or lead <= timedelta(0):
        return []
    done: list[str] = []
    try:
        due = ack_reminders_due(runs.with_recent_approvals(now), now, lead)
        if not due:
            return []
        try:
            overrides = tuple(addressees("overrides"))
        except Exception as exc:  # no list: the approvers and the webhook still get the reminder
            logger.warning("ack reminder addressees (overrides) not read: %s", exc)
            overrides = ()
        base = n.console_url.rstrip("/")
        with serial():  # each reminder checked (sent?), sent and recorded by one sweeper at a time
            for r in due:
                try:
                    done += deliver(n, reminder_notice(r, overrides, f"{base}/inbox?run={r.run_id}#{r.run_id}"), logger)
                except Exception as exc:  # a reminder never fails the sweep
                    logger.warning("ack reminder for run %s not sent: %s", r.run_id, exc)
    except Exception as exc:  # the log or the lock unavailable: the next sweep tries again
        logger.warning("ack reminders not sent: %s", exc)
    return done
