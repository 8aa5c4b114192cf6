"""The joint-ack reminder delivered for real: a promotion run's TECH, PM and RISK records in the sealed
decision log (the release then deferred: no promotion record follows), read back by
``LoggedPromotionRuns``; the deferral sweeper's step (``services.ack_reminders``) run every minute on a
fake clock around the lead before expiry, twice at the same minute, and past the expiry, over
``bootstrap.notifications()``: the local SMTP server gets one mail and the local HTTP receiver one POST,
each with the deep link to the inbox item, and the log holds one ``notification`` per channel. Two
sweepers at once under the flow's Prefect global concurrency lock send it once (without the lock, both
sent it)."""

from __future__ import annotations

import threading
from datetime import timedelta

from flows.deferral_sweeper import requires_compliance
from releasegate import bootstrap
from releasegate.decisions import DecisionKind, DecisionOutcome
from releasegate.policy.gates import GateReport, PromotionOutcome
from releasegate.policy.handshake import Approval, Handshake, Role
from releasegate.records import notification_subject
from releasegate.services import promotion
from releasegate.services.ack_reminders import LoggedPromotionRuns, notify_ack_reminders
from releasegate.services.approvers import governed_config
from tests.support.notice_servers import CONSOLE, mailbox, notifying, receiver

__all__ = ["mailbox", "notifying", "receiver"]  # fixtures

RUN = "0b7c1d2e-ack-reminder-run"
LEAD = timedelta(hours=2)


def gate_report() -> GateReport:
    return GateReport(
        model="churn",
        candidate_version="3",
        champion_version=None,
        gates=[],
        outcome=PromotionOutcome.promote,
        evaluated_at=bootstrap.app().clock.now(),
    )


def approved_run() -> tuple[Handshake, object]:
    """TECH, PM and RISK of ``RUN`` recorded as the promotion records them; returns the later approval."""
    app = bootstrap.app()
    promotion.record_tech(app, RUN, gate_report(), "artifact:gate-report", "ab" * 32)
    h = Handshake(
        model="churn", candidate_version="3", requested_by="ml-engineer", tech_report_ref="artifact:gate-report"
    )
    for role, who in ((Role.pm, "pm-anna"), (Role.risk, "risk-carla")):
        raw = {"approver": who, "decision": "approve", "reference": f"CHG-{role.value}"}
        a = Approval(approver=who, reference=raw["reference"], role=role, at=app.clock.now())
        promotion.record_approval(RUN, h, role, a, None, raw, app=app)
    good, _ = app.log.trusted(subject=f"promotion:{RUN}", kind=DecisionKind.approval)
    return h, good[-1]


def test_the_reminder_arrives_once_with_its_deep_link(notifying, mailbox, receiver):
    _, risk = approved_run()
    expires = risk.decision_timestamp + timedelta(hours=24)
    app = bootstrap.app()
    runs = LoggedPromotionRuns(app.log, requires_compliance)

    def sweep(at) -> list[str]:
        return notify_ack_reminders(
            bootstrap.notifications(),
            runs,
            lambda which: getattr(governed_config("notifications", app), which),
            at,
            LEAD,
        )

    assert sweep(expires - LEAD - timedelta(minutes=1)) == []  # not yet
    assert len(sweep(expires - LEAD)) == 2  # one record per channel
    assert sweep(expires - LEAD) == []  # a second sweeper the same minute
    assert sweep(expires - LEAD + timedelta(minutes=1)) == []
    assert sweep(expires + timedelta(minutes=1)) == []  # expired: the run asks again

    box, posts = mailbox[0], receiver[0]
    link = f"{CONSOLE}/inbox?run={RUN}#{RUN}"
    assert [sorted(to) for to, _ in box.messages] == [["anna@bank.example", "carla@bank.example"]]
    (_, mail) = box.messages[0]
    assert mail["Subject"].startswith("[releasegate] reminder: the joint release ack of churn v3 expires at ")
    body = mail.get_content()
    assert link in body and expires.isoformat() in body and "re-approval" in body
    assert "(ops-bob, ops-lena)" in body  # the overrides list, who may start the deferred run now
    assert len(posts) == 1 and link in posts[0]["json"]["text"]

    good, forged = bootstrap.decision_log().trusted(subject=notification_subject(RUN), kind=DecisionKind.notification)
    assert forged == []
    key = f"ack-reminder:{RUN}:{expires.isoformat()}"
    assert sorted((r.details["key"], r.details["channel"]) for r in good) == [(key, "email"), (key, "webhook")]
    assert {r.decision_outcome for r in good} == {DecisionOutcome.accept}
    assert all(r.details["notice_kind"] == "reminder" for r in good)


def test_an_ended_promotion_gets_no_reminder(notifying, mailbox, receiver):
    h, risk = approved_run()
    app = bootstrap.app()
    promotion.record_outcome(app, RUN, gate_report(), "artifact:gate-report", DecisionOutcome.reject, "RISK rejected")
    expires = risk.decision_timestamp + timedelta(hours=24)
    runs = LoggedPromotionRuns(app.log, requires_compliance)
    assert notify_ack_reminders(bootstrap.notifications(), runs, lambda which: [], expires - LEAD, LEAD) == []
    assert mailbox[0].messages == [] and receiver[0] == []


def test_two_sweepers_at_once_send_it_once_under_the_prefect_lock(prefect_harness, notifying, mailbox, receiver):
    from releasegate.adapters.prefect_locks import ensure_reminder_lock, hold

    _, risk = approved_run()
    due = risk.decision_timestamp + timedelta(hours=22)
    app = bootstrap.app()
    recorded: list[list[str]] = []

    def sweeper() -> None:
        recorded.append(
            notify_ack_reminders(
                bootstrap.notifications(),
                LoggedPromotionRuns(app.log, requires_compliance),
                lambda which: getattr(governed_config("notifications", app), which),
                due,
                LEAD,
                serial=lambda: hold(ensure_reminder_lock()),
            )
        )

    sweepers = [threading.Thread(target=sweeper) for _ in range(2)]
    for s in sweepers:
        s.start()
    for s in sweepers:
        s.join(timeout=120)
    assert sorted(len(r) for r in recorded) == [0, 2]  # one sweeper recorded both channels, the other nothing
    assert len(mailbox[0].messages) == 1 and len(receiver[0]) == 1
