"""The joint-ack reminder use case (``services.ack_reminders``) on in-memory fakes of its ports and a fake
clock: the sweeper running every minute sends it once per channel at the lead before expiry, to the
approvers and the ``overrides`` list, with the deep link; two sweepers at once send it once; nothing
for an ended promotion or after the expiry; a failed channel is recorded once; nothing raises."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from releasegate.adapters.notifiers import chat_text, subject_line
from releasegate.clock import FixedClock
from releasegate.policy.ack_reminders import PromotionRun, RunRecord
from releasegate.promotion_ports import Notice, Notifications
from releasegate.services.ack_reminders import notify_ack_reminders
from tests.support.notices import FakeNotificationLog, FakeNotifier
from tests.support.promotion_world import World

CONSOLE = "https://console.example.test"
LISTS = {"overrides": ["ops-olga", "ops-piet"]}
LATER = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # the later approval
EXPIRES = LATER + timedelta(hours=24)
LEAD = timedelta(hours=2)


def records(*extra: RunRecord) -> tuple[RunRecord, ...]:
    return (
        RunRecord(kind="approval", at=LATER - timedelta(hours=4), role="tech", approver="releasegate:gates"),
        RunRecord(kind="approval", at=LATER - timedelta(hours=3), role="pm", approver="pm-anna", decision="approve"),
        RunRecord(kind="approval", at=LATER, role="risk", approver="risk-carla", decision="approve"),
        *extra,
    )


@dataclass
class FakeRuns:
    """``PromotionRuns``: what the decision log holds of each run (edited by the tests)."""

    runs: dict[str, tuple[RunRecord, ...]] = field(default_factory=lambda: {"fr-7": records()})
    down: bool = False

    def with_recent_approvals(self, now: datetime) -> list[PromotionRun]:
        if self.down:
            raise OSError("database is locked")
        return [
            PromotionRun(run_id=k, model="churn", version="3", requires_compliance=False, records=v)
            for k, v in self.runs.items()
        ]


@dataclass
class ClockedNotifier(FakeNotifier):
    clock: FixedClock | None = None
    at: list[datetime] = field(default_factory=list)
    delay: float = 0.0

    def send(self, notice: Notice) -> str | None:
        time.sleep(self.delay)  # a slow SMTP server: a second sweeper overlaps this one
        if self.clock is not None:
            self.at.append(self.clock.now())
        return super().send(notice)


@pytest.fixture
def world() -> World:
    return World()


def channels(world: World, *notifiers: FakeNotifier) -> Notifications:
    return Notifications(tuple(notifiers), FakeNotificationLog(world), CONSOLE + "/")


def sweep(n: Notifications | None, runs: FakeRuns, now: datetime, lead: timedelta = LEAD, **kw) -> list[str]:
    return notify_ack_reminders(n, runs, lambda which: LISTS[which], now, lead, **kw)


def test_a_sweeper_every_minute_sends_the_reminder_once_at_the_lead_before_expiry(world):
    clock = FixedClock(LATER + timedelta(hours=21))
    mail, chat = ClockedNotifier("email", clock=clock), ClockedNotifier("webhook", clock=clock)
    n, runs = channels(world, mail, chat), FakeRuns()
    while clock.now() <= EXPIRES + timedelta(hours=1):  # through the expiry and past it
        sweep(n, runs, clock.now())
        clock.advance(minutes=1)
    assert mail.at == chat.at == [EXPIRES - LEAD]
    key = f"ack-reminder:fr-7:{EXPIRES.isoformat()}"
    assert [(r["key"], r["channel"], r["error"]) for r in world.of("notification")] == [
        (key, "email", None),
        (key, "webhook", None),
    ]
    (r,) = mail.sent
    assert r.kind == "reminder" and r.run_id == "fr-7" and (r.model, r.version) == ("churn", "3")
    assert r.link == f"{CONSOLE}/inbox?run=fr-7#fr-7"
    assert r.approvers == ("pm-anna", "risk-carla", "ops-olga", "ops-piet")


def test_the_reminder_names_model_version_expiry_and_what_happens_then(world):
    mail = FakeNotifier("email")
    sweep(channels(world, mail), FakeRuns(), EXPIRES - LEAD)
    (r,) = mail.sent
    assert (
        subject_line(r) == "[releasegate] reminder: the joint release ack of churn v3 expires at 2026-12-08 12:00 UTC"
    )
    text = chat_text(r)
    assert "Approved by: pm-anna (PM), risk-carla (RISK)." in text
    assert "Expires: 2026-12-08T12:00:00+00:00" in text
    assert "ACK_EXPIRED" in text and "asks every approver again (re-approval)" in text
    assert "overrides list may start the deferred run now, with a ticket (ops-olga, ops-piet)" in text
    assert text.endswith(f"Open it in the console: {CONSOLE}/inbox?run=fr-7#fr-7")


def test_two_sweepers_at_once_send_it_once(world):
    mail = ClockedNotifier("email", delay=0.05)
    n, runs, lock = channels(world, mail), FakeRuns(), threading.Lock()
    done: list[list[str]] = []
    sweepers = [
        threading.Thread(target=lambda: done.append(sweep(n, runs, EXPIRES - LEAD, serial=lambda: lock)))
        for _ in range(2)
    ]
    for s in sweepers:
        s.start()
    for s in sweepers:
        s.join()
    assert len(mail.sent) == 1 and sorted(len(d) for d in done) == [0, 1]


def test_nothing_before_the_lead_after_the_expiry_or_when_turned_off(world):
    mail = FakeNotifier("email")
    n = channels(world, mail)
    assert sweep(n, FakeRuns(), EXPIRES - LEAD - timedelta(minutes=1)) == []
    assert sweep(n, FakeRuns(), EXPIRES + timedelta(seconds=1)) == []
    assert sweep(n, FakeRuns(), EXPIRES - timedelta(minutes=5), lead=timedelta(0)) == []
    assert sweep(None, FakeRuns(), EXPIRES - LEAD) == []
    assert mail.sent == []


def test_nothing_for_a_released_rejected_or_failed_promotion(world):
    mail = FakeNotifier("email")
    ended = LATER + timedelta(minutes=1)
    runs = FakeRuns(
        {
            "released": records(RunRecord(kind="promotion", at=ended)),
            "failed": records(RunRecord(kind="promotion", at=ended, reason_code="NO_ELIGIBLE_APPROVER")),
            "rejected": records()[:2]
            + (RunRecord(kind="approval", at=LATER, role="risk", approver="risk-carla", decision="reject"),),
            "waiting": records()[:2],  # RISK still to approve: no ack yet
        }
    )
    assert sweep(channels(world, mail), runs, EXPIRES - LEAD) == []
    assert mail.sent == []


def test_a_sweep_that_dies_before_sending_leaves_it_for_the_next(world, caplog):
    mail = FakeNotifier("email")
    n, runs = channels(world, mail), FakeRuns(down=True)
    assert sweep(n, runs, EXPIRES - LEAD) == []
    assert "database is locked" in caplog.text
    runs.down = False
    assert len(sweep(n, runs, EXPIRES - LEAD + timedelta(minutes=1))) == 1
    assert len(mail.sent) == 1


def test_a_failed_channel_is_recorded_once_and_nothing_raises(world, caplog):
    mail, chat = FakeNotifier("email", fail="SMTP 127.0.0.1:1: ConnectionRefusedError"), FakeNotifier("webhook")
    n = channels(world, mail, chat)
    sweep(n, FakeRuns(), EXPIRES - LEAD)
    sweep(n, FakeRuns(), EXPIRES - LEAD + timedelta(minutes=1))
    assert [(r["channel"], r["error"]) for r in world.of("notification")] == [
        ("email", "SMTP 127.0.0.1:1: ConnectionRefusedError"),
        ("webhook", None),
    ]
    assert len(mail.sent) == len(chat.sent) == 1 and "not delivered" in caplog.text

    def no_list(which: str) -> list[str]:
        raise ValueError("approvers config cannot be read")

    other = World()
    hook, broken = FakeNotifier("webhook"), FakeNotifier("email", broken=True)
    notify_ack_reminders(channels(other, hook, broken), FakeRuns(), no_list, EXPIRES - LEAD, LEAD)  # no raise
    assert "adapter bug" in caplog.text and "approvers config cannot be read" in caplog.text
    (sent,) = hook.sent
    assert sent.approvers == ("pm-anna", "risk-carla")  # the approvers still, without the overrides list
