"""Notices to approvers from the promotion use case (``services.promotion_notices``) on in-memory fakes of
its ports: one notice per pause and channel, whatever the run does meanwhile (refusals asked again, a
restart, an expired joint ack opens a new round); a channel that fails is recorded and the run goes on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from releasegate.policy.handshake import Role
from releasegate.promotion_ports import Notifications
from tests.support.notices import FakeNotificationLog, FakeNotifier
from tests.support.promotion_world import RUN, Crash, Say, World

CONSOLE = "https://console.example.test"


@pytest.fixture
def world() -> World:
    return World()


def notify(world: World, *notifiers: FakeNotifier) -> FakeNotificationLog:
    log = FakeNotificationLog(world)
    world.notifications = Notifications(tuple(notifiers), log, CONSOLE + "/")
    return log


def test_each_pause_notifies_the_roles_eligible_approvers_once_per_channel(world):
    mail, chat = FakeNotifier("email"), FakeNotifier("webhook")
    notify(world, mail, chat)
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    assert world.run().kind == "promoted"
    for sink in (mail, chat):
        assert [(n.key, n.role, n.approvers) for n in sink.sent] == [
            (f"{RUN}:pm:0", "pm", ("pm-anna", "pm-ben")),  # not the owner, not the requester
            (f"{RUN}:risk:0", "risk", ("risk-carla", "risk-dan")),
        ]
        assert {n.link for n in sink.sent} == {f"{CONSOLE}/inbox?run={RUN}#{RUN}"}
    assert [(r["key"], r["channel"], r["error"]) for r in world.of("notification")] == [
        (f"{RUN}:pm:0", "email", None),
        (f"{RUN}:pm:0", "webhook", None),
        (f"{RUN}:risk:0", "email", None),
        (f"{RUN}:risk:0", "webhook", None),
    ]


def test_a_refused_submission_asked_again_sends_nothing_more(world):
    mail = FakeNotifier("email")
    notify(world, mail)
    world.approvals.script = [Say("mallory"), Say("pm-anna"), Say("risk-carla")]
    assert world.run().kind == "promoted"
    assert world.approvals.asked == [Role.pm, Role.pm, Role.risk]
    assert [n.key for n in mail.sent] == [f"{RUN}:pm:0", f"{RUN}:risk:0"]


def test_a_restarted_run_finds_the_record_of_its_pause_and_sends_nothing(world):
    mail = FakeNotifier("email")
    notify(world, mail)
    world.approvals.script = [Say("pm-anna"), Crash()]
    with pytest.raises(Crash):
        world.run()
    world.approvals.script = [Say("risk-carla")]
    assert world.run().kind == "promoted"
    assert [n.key for n in mail.sent] == [f"{RUN}:pm:0", f"{RUN}:risk:0"]  # risk's pause: one notice


def test_an_expired_joint_ack_opens_a_new_round_of_notices(world):
    mail = FakeNotifier("email")
    notify(world, mail)
    world.approvals.script = [Say("pm-anna"), Say("risk-carla"), Say("pm-ben"), Say("risk-dan")]
    world.window = [timedelta(hours=25)]
    assert world.run().kind == "promoted"
    assert [n.key for n in mail.sent] == [f"{RUN}:pm:0", f"{RUN}:risk:0", f"{RUN}:pm:1", f"{RUN}:risk:1"]


def test_a_channel_that_fails_is_recorded_and_the_promotion_goes_on(world, caplog):
    mail, chat = FakeNotifier("email", fail="SMTP 127.0.0.1:1: ConnectionRefusedError"), FakeNotifier("webhook")
    notify(world, mail, chat)
    world.approvals.script = [Say("pm-anna"), Crash()]
    with pytest.raises(Crash):
        world.run()
    world.approvals.script = [Say("risk-carla")]
    assert world.run().kind == "promoted"
    failed = [r for r in world.of("notification") if r["error"]]
    assert [(r["key"], r["channel"]) for r in failed] == [(f"{RUN}:pm:0", "email"), (f"{RUN}:risk:0", "email")]
    assert len(mail.sent) == 2  # a failure is recorded too: the restart does not send it again
    assert len(chat.sent) == 2
    assert "not delivered" in caplog.text and "ConnectionRefusedError" in caplog.text


def test_a_broken_notifier_never_fails_the_run(world, caplog):
    notify(world, FakeNotifier("email", broken=True))
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    assert world.run().kind == "promoted"
    assert "notices for PM approval not sent: adapter bug" in caplog.text


def test_no_notifications_configured_sends_nothing(world):
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    assert world.run().kind == "promoted" and world.of("notification") == []
