"""Notices to approvers delivered for real: a promotion run (the use case, its orchestrator ports faked in
memory) pauses for PM then RISK; ``bootstrap.notifications()`` wires the SMTP and webhook adapters from
the settings and the addresses from the governed approvers config; a local SMTP server (aiosmtpd) and a
local HTTP receiver get one mail and one POST per pause, each with the deep link to the console's inbox
item, and the sealed decision log holds one ``notification`` per pause and channel."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from releasegate import bootstrap
from releasegate.decisions import DecisionKind, DecisionOutcome
from releasegate.records import notification_subject
from tests.support.notice_servers import CONSOLE, EMAILS, free_port, mailbox, notifying, receiver
from tests.support.promotion_world import RUN, Crash, Say, World

__all__ = ["mailbox", "notifying", "receiver"]  # fixtures


def notification_records() -> list[Any]:
    good, forged = bootstrap.decision_log().trusted(subject=notification_subject(RUN), kind=DecisionKind.notification)
    assert forged == []
    return good


def test_one_mail_and_one_webhook_per_pause_with_the_deep_link(notifying, mailbox, receiver):
    box, posts = mailbox[0], receiver[0]
    world = World(notifications=bootstrap.notifications())
    world.approvals.script = [Say("mallory"), Say("pm-anna"), Crash()]  # a refusal asked again, then a crash
    with pytest.raises(Crash):
        world.run()
    world.approvals.script = [Say("risk-carla")]  # the run again, as Prefect retries it
    assert world.run().kind == "promoted"

    link = f"{CONSOLE}/inbox?run={RUN}#{RUN}"
    assert [sorted(to) for to, _ in box.messages] == [
        ["anna@bank.example", "ben@bank.example"],
        ["carla@bank.example"],  # risk-dan has no address
    ]
    subjects = [m["Subject"] for _, m in box.messages]
    assert subjects == ["[releasegate] PM approval waits: churn v3", "[releasegate] RISK approval waits: churn v3"]
    assert all(link in m.get_content() and m["From"] == "releasegate@bank.example" for _, m in box.messages)
    assert [p["path"] for p in posts] == ["/hooks/T0/B0"] * 2
    assert all(p["type"] == "application/json" and link in p["json"]["text"] for p in posts)
    assert "waits for PM approval" in posts[0]["json"]["text"] and "RISK" in posts[1]["json"]["text"]

    recs = notification_records()
    assert sorted((r.details["key"], r.details["channel"]) for r in recs) == [
        (f"{RUN}:pm:0", "email"),
        (f"{RUN}:pm:0", "webhook"),
        (f"{RUN}:risk:0", "email"),
        (f"{RUN}:risk:0", "webhook"),
    ]
    assert {r.decision_outcome for r in recs} == {DecisionOutcome.accept}


def test_an_unreachable_smtp_server_is_recorded_and_the_webhook_still_sent(notifying, monkeypatch, receiver):
    monkeypatch.setenv("RELEASEGATE_SMTP_PORT", str(free_port()))  # nobody listens there
    world = World(notifications=bootstrap.notifications())
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    assert world.run().kind == "promoted"
    assert len(receiver[0]) == 2
    failed = [r for r in notification_records() if r.decision_outcome is DecisionOutcome.reject]
    assert [r.details["channel"] for r in failed] == ["email", "email"]
    assert all("SMTP 127.0.0.1" in r.details["error"] and "not delivered" in r.decision_rationale for r in failed)


def test_no_smtp_host_and_no_webhook_means_no_notices(rg_home):
    assert bootstrap.notifications() is None


def test_an_escalation_is_delivered_once_across_two_sweeps(notifying, rg_home, mailbox, receiver):
    from releasegate.services.approvers import governed_config
    from releasegate.services.escalation_notices import notify_escalations

    path = rg_home.parent / "approvers" / "approvers.yaml"
    doc = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**doc, "emails": {**EMAILS, "ops-bob": "bob@bank.example"}}))
    escalation = {
        "flow_run_id": "fr-9",
        "level": "incident",
        "decision_id": "dec-esc-9",
        "waited_minutes": 61,
        "storm_incident": None,
        "deployment": "train-churn/nightly",
        "reason_code": "CAPACITY_POOL_FULL",
        "next_evaluation_at": "2026-12-07T10:05:00+00:00",
    }
    app = bootstrap.app()
    for _ in range(2):  # the sweeper runs every minute and reports the escalation it recorded once
        notify_escalations(
            bootstrap.notifications(),
            lambda which: getattr(governed_config("notifications", app), which),
            escalations=[escalation],
        )
    box, posts = mailbox[0], receiver[0]
    assert [to for to, _ in box.messages] == [["bob@bank.example"]]  # ops-lena has no address
    (_, mail) = box.messages[0]
    assert mail["Subject"] == "[releasegate] deferral SLA incident: train-churn/nightly run fr-9 deferred for 61 min"
    assert f"{CONSOLE}/operations#deferrals" in mail.get_content() and "CAPACITY_POOL_FULL" in mail.get_content()
    assert len(posts) == 1 and "deferred for 61 min" in posts[0]["json"]["text"]
    good, forged = bootstrap.decision_log().trusted(
        subject=notification_subject("deferral:fr-9"), kind=DecisionKind.notification
    )
    assert forged == []
    assert sorted((r.details["key"], r.details["channel"]) for r in good) == [
        ("deferral:fr-9:incident", "email"),
        ("deferral:fr-9:incident", "webhook"),
    ]
