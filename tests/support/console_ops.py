"""In-memory fakes of the console's operations and audit ports (``console_ports.Operations``,
``console_ports.AuditDesk``) and a console over them with on-call, Compliance and PM people beside the
inbox rig's (``tests.support.console``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from releasegate.clock import FixedClock
from releasegate.console import create_app
from releasegate.console_ports import (
    AuditOverview,
    CheckpointView,
    ConsolePorts,
    ConsoleSettings,
    DeferralView,
    EvidenceLink,
    GateFailureView,
    IncidentView,
    VerifyStatus,
)
from releasegate.errors import Refused
from releasegate.policy.approvers import ApproverConfig
from tests.support.console import NOW, FakeDesk, FakeDirectory, ListJournal, Rig
from tests.support.passkeys import ORIGIN, RP_ID, SoftAuthenticator

OPS_PEOPLE = ("oncall-otto", "risk-carla", "audit-ida", "comp-chris", "pm-anna", "eva")


def deferral(run: str, waited: int, reason: str = "CAPACITY_LIMIT", predicted: bool = True) -> DeferralView:
    since = NOW - timedelta(minutes=waited)
    return DeferralView(
        flow_run_id=run,
        deployment="credit-eod/credit-eod",
        reason_code=reason,
        first_deferred_at=since,
        next_evaluation_at=NOW + timedelta(minutes=5),
        predicted_start_at=NOW + timedelta(minutes=9) if predicted else None,
        attempts=3,
        waited_minutes=waited,
        sla="incident" if waited >= 60 else ("alert" if waited >= 30 else "ok"),
        explanation=f"{reason}: the pool is full",
    )


@dataclass
class FakeOperations:
    clock: FixedClock
    open_deferrals: list[DeferralView] = field(default_factory=list)
    failures: list[GateFailureView] = field(default_factory=list)
    recorded: list[IncidentView] = field(default_factory=list)
    acks: list[tuple[str, str, str]] = field(default_factory=list)

    def deferrals(self) -> list[DeferralView]:
        return self.open_deferrals

    def gate_failures(self) -> list[GateFailureView]:
        return self.failures

    def incidents(self) -> list[IncidentView]:
        return self.recorded

    def acknowledge(self, decision_id: str, by: str, note: str) -> str:
        """What ``services.gate_failures.acknowledge`` does: refuse an unknown or answered one."""
        match = next((f for f in self.failures if f.decision_id == decision_id), None)
        if match is None:
            raise Refused("decision_id", f"{decision_id} is not a gate failure of the last 7 days")
        if match.acknowledged:
            raise Refused("decision_id", f"{decision_id} is already acknowledged")
        self.failures = [replace(f, acknowledged=True) if f is match else f for f in self.failures]
        self.acks.append((decision_id, by, note))
        return f"ack-{len(self.acks)}"


@dataclass
class FakeAudit:
    clock: FixedClock
    records: int = 1_000_000
    checkpoints: list[CheckpointView] = field(default_factory=list)
    verify: VerifyStatus = field(default_factory=lambda: VerifyStatus(state="never"))
    started: list[str] = field(default_factory=list)
    versions: list[EvidenceLink] = field(default_factory=list)
    lines_read: int = 0

    def overview(self, last: int = 10) -> AuditOverview:
        estimate = None
        if self.verify.seconds and self.verify.records:
            estimate = round(self.verify.seconds / self.verify.records * self.records, 1)
        return AuditOverview(
            records=self.records,
            head_hash="f" * 64,
            checkpoints=self.checkpoints[:last],
            checkpoint_total=len(self.checkpoints),
            verify=self.verify,
            estimate_seconds=estimate,
            versions=self.versions,
        )

    def start_verify(self, by: str) -> VerifyStatus:
        self.started.append(by)
        self.verify = VerifyStatus(state="running", started_at=self.clock.now(), by=by)
        return self.verify

    def export_lines(self) -> Iterator[str]:
        """Lazily, like the real export: the console must stream it, never hold it."""
        for seq in range(1, self.records + 1):
            self.lines_read += 1
            yield f'{{"type": "record", "seq": {seq}}}'


@dataclass
class OpsRig(Rig):
    ops: FakeOperations = field(default_factory=lambda: FakeOperations(FixedClock(NOW)))
    audit: FakeAudit = field(default_factory=lambda: FakeAudit(FixedClock(NOW)))


def ops_rig(now: datetime = NOW, records: int = 1_000) -> OpsRig:
    keys = {n: SoftAuthenticator() for n in OPS_PEOPLE}
    config = ApproverConfig(
        pm=["pm-anna"],
        risk=["risk-carla"],
        compliance=["comp-chris"],
        admins=["eva"],
        auditors=["audit-ida"],
        oncall=["oncall-otto"],
        passkeys={n: k.passkey() for n, k in keys.items()},
    )
    clock = FixedClock(now)
    directory = FakeDirectory(config, clock)
    desk = FakeDesk(directory, clock)
    journal = ListJournal()
    ops = FakeOperations(clock)
    audit = FakeAudit(clock, records=records)
    ports = ConsolePorts(desk=desk, directory=directory, journal=journal, clock=clock, operations=ops, audit=audit)
    settings = ConsoleSettings(rp_id=RP_ID, origin=ORIGIN, secret_key="test", idle_timeout_s=900)
    client = TestClient(create_app(ports, settings), base_url=ORIGIN)
    return OpsRig(client, keys, directory, desk, journal, clock, ops, audit)


def form_csrf(page: str) -> str:
    """The CSRF token a page's form carries."""
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
