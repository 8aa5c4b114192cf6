"""The kinds of decision record: what a record is about (``decisions`` holds the fields and the rules,
``details`` a typed ``details`` model per kind; both import this module, neither the other's reader).
Pure."""

from __future__ import annotations

from enum import StrEnum


class DecisionKind(StrEnum):
    promotion = "promotion"
    deferral = "deferral"
    override = "override"
    retrain = "retrain"
    rollback = "rollback"
    manual_run = "manual_run"
    event = "event"
    late_run = "late_run"
    approval = "approval"
    monitoring = "monitoring"
    refusal = "refusal"  # a write or a record refused by releasegate (e.g. a forged trusted record)
    # Since migration 0005. Earlier logs hold them as kind ``approval`` (role ``gate_failure_ack``) and
    # kind ``promotion`` (status ``incident``); the hash chain covers the kind, so those records stay as
    # written and readers (``services.gate_failures``) accept both forms.
    gate_failure_ack = "gate_failure_ack"  # someone acknowledged a held or rejected promotion
    incident = "incident"  # an incident releasegate opened (e.g. a gate failure nobody acknowledged)
    schedule = "schedule"  # a schedule rule (DST, catch-up, one run per occurrence) moved or dropped a run
    rollback_request = "rollback_request"  # an EOD verdict's rollback, bound to the one run it created
    approvers_config = "approvers_config"  # the governed approvers config: trusted once, proposed, in force
    operational_report = "operational_report"  # the weekly operational-risk review of scheduling
    notification = "notification"  # a notice to approvers that a run waits for them: delivered or not
    halt = "halt"  # a step of a model's two-person halt switch: halt or resume, requested or confirmed
