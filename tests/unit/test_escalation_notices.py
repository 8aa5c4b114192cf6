"""Escalation notices (``services.escalation_notices``) on in-memory fakes of the notice ports: one per
escalation event and channel, keyed by the event, addressed to the on-call list the event belongs to,
a second sweep sends nothing, a failed channel is recorded, and nothing raises into the sweep."""

from __future__ import annotations

import pytest

from releasegate.adapters.notifiers import chat_text, subject_line
from releasegate.promotion_ports import Notifications
from releasegate.services.escalation_notices import notify_escalations
from tests.support.notices import FakeNotificationLog, FakeNotifier
from tests.support.promotion_world import World

CONSOLE = "https://console.example.test"
LISTS = {"overrides": ["ops-olga", "ops-piet"], "exceptions": ["risk-carla"]}
DEFERRAL = {
    "flow_run_id": "fr-1",
    "level": "alert",
    "event": "releasegate.deferral.sla.alert",
    "decision_id": "dec-esc-1",
    "waited_minutes": 31,
    "storm_incident": None,
    "deployment": "train-churn/nightly",
    "reason_code": "CAPACITY_POOL_FULL",
    "next_evaluation_at": "2026-12-07T10:05:00+00:00",
}
STORM = {
    "queue": "batch",
    "state": "incident",
    "decision_id": "dec-storm-1",
    "record": "dec-storm-2",
    "open_deferrals": 120,
    "waited_minutes": 61,
    "predicted_drain_at": "2026-12-07T12:00:00+00:00",
    "changed": True,
}
GATE = {
    "gate_failure": "dec-gf-1",
    "incident_decision": "dec-p1",
    "waited_minutes": 30,
    "model_name": "churn",
    "candidate_version": "3",
}


def sweep_once(n: Notifications | None, **events) -> list[str]:
    return notify_escalations(n, lambda which: LISTS[which], **events)


@pytest.fixture
def world() -> World:
    return World()


def channels(world: World, *notifiers: FakeNotifier) -> Notifications:
    return Notifications(tuple(notifiers), FakeNotificationLog(world), CONSOLE + "/")


def test_each_escalation_is_sent_once_per_channel_with_its_facts_and_the_console_link(world):
    mail, chat = FakeNotifier("email"), FakeNotifier("webhook")
    n = channels(world, mail, chat)
    events = {"escalations": [DEFERRAL], "storms": [STORM], "gate_failures": [GATE]}
    assert len(sweep_once(n, **events)) == 6
    assert sweep_once(n, **events) == []  # the next sweep finds the records and sends nothing

    keys = [x.key for x in mail.sent]
    assert keys == ["deferral:fr-1:alert", "storm:batch:dec-storm-1:incident", "gate-failure:dec-gf-1"]
    assert [x.key for x in chat.sent] == keys
    d, s, g = mail.sent
    assert d.kind == s.kind == g.kind == "escalation"
    assert [x.link for x in mail.sent] == [
        f"{CONSOLE}/operations#deferrals",
        f"{CONSOLE}/operations#deferrals",
        f"{CONSOLE}/operations#gate-failures",
    ]
    assert d.approvers == s.approvers == ("ops-olga", "ops-piet") and g.approvers == ("risk-carla",)
    assert "train-churn/nightly" in d.summary and "31 min" in d.summary and "alert" in d.summary
    assert "Reason: CAPACITY_POOL_FULL" in d.facts and "Next evaluation: 2026-12-07T10:05:00+00:00" in d.facts
    assert "120 runs" in s.summary and any("2026-12-07T12:00:00" in f for f in s.facts)
    assert "churn v3" in g.summary
    assert [(r["key"], r["channel"]) for r in world.of("notification")] == [
        (k, c) for k in keys for c in ("email", "webhook")
    ]


def test_a_new_level_of_the_same_deferral_is_a_new_event(world):
    mail = FakeNotifier("email")
    n = channels(world, mail)
    sweep_once(n, escalations=[DEFERRAL])
    sweep_once(n, escalations=[DEFERRAL | {"level": "incident", "waited_minutes": 61}])
    assert [x.key for x in mail.sent] == ["deferral:fr-1:alert", "deferral:fr-1:incident"]


def test_a_closed_storm_is_not_notified(world):
    mail = FakeNotifier("email")
    assert sweep_once(channels(world, mail), storms=[{"queue": "batch", "state": "closed", "record": "d9"}]) == []
    assert mail.sent == []


def test_a_failed_channel_is_recorded_once_and_the_other_still_sent(world, caplog):
    mail, chat = FakeNotifier("email", fail="SMTP 127.0.0.1:1: ConnectionRefusedError"), FakeNotifier("webhook")
    n = channels(world, mail, chat)
    sweep_once(n, gate_failures=[GATE])
    sweep_once(n, gate_failures=[GATE])
    assert [(r["channel"], r["error"]) for r in world.of("notification")] == [
        ("email", "SMTP 127.0.0.1:1: ConnectionRefusedError"),
        ("webhook", None),
    ]
    assert len(mail.sent) == len(chat.sent) == 1
    assert "not delivered" in caplog.text


def test_nothing_raises_into_the_sweep(world, caplog):
    def no_config(which: str) -> list[str]:
        raise ValueError("approvers config cannot be read")

    chat = FakeNotifier("webhook")
    n = channels(world, FakeNotifier("email", broken=True), chat)
    assert notify_escalations(n, no_config, escalations=[DEFERRAL], gate_failures=[GATE]) == []
    assert "adapter bug" in caplog.text and "approvers config cannot be read" in caplog.text


def test_no_channels_configured_sends_nothing():
    assert sweep_once(None, escalations=[DEFERRAL]) == []


def test_an_escalation_reads_as_one_in_mail_and_chat(world):
    mail = FakeNotifier("email")
    sweep_once(channels(world, mail), escalations=[DEFERRAL])
    (d,) = mail.sent
    assert subject_line(d) == "[releasegate] deferral SLA alert: train-churn/nightly run fr-1 deferred for 31 min"
    text = chat_text(d)
    assert "Reason: CAPACITY_POOL_FULL." in text and "On call (overrides): ops-olga, ops-piet." in text
    assert text.endswith(f"See the console: {CONSOLE}/operations#deferrals")
