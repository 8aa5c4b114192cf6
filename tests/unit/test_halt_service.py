"""The halt use case (``services.halt``) on the real sealed log (SQLite) and fakes of our own ports: the
two-person rule recorded step by step, refusals recorded, schedules paused on confirm and resumed on
resume; and what a halt stops elsewhere (the binary step of a promotion, rollback, the alias guard)."""

from __future__ import annotations

import pytest

from releasegate.decisions import DecisionKind
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.gates import GateReport, PromotionOutcome
from releasegate.policy.halt import HaltRefused, Step
from releasegate.policy.handshake import Handshake
from releasegate.ports import Ports
from releasegate.services.alias_guard import HALTED_INCIDENT_KIND, guard_model
from releasegate.services.halt import HaltDesk, HaltPorts, act, overview, why_halted
from releasegate.services.halt_log import ModelHalted, refuse_if_halted
from releasegate.services.release import binary_promotion
from releasegate.services.rollback import execute_rollback
from releasegate.store.trust import SealedDecisionLog

CONFIG = ApproverConfig(risk=["risk-rita"], oncall=["ops-olga", "ops-otto"], pm=["pm-paul"])


class FakeSchedules:
    def __init__(self) -> None:
        self.active = {"eod-scoring/credit#1", "retrain/retrain#2"}
        self.calls: list[tuple[str, object]] = []

    def pause(self, model: str) -> list[str]:
        self.calls.append(("pause", model))
        paused, self.active = sorted(self.active), set()
        return paused

    def resume(self, schedules: list[str]) -> list[str]:
        self.calls.append(("resume", schedules))
        self.active |= set(schedules)
        return schedules


class AliasRegistry:
    """A fake of our own ``Registry`` port: the prod aliases only."""

    CHAMPION, CHALLENGER, ARCHIVE = "champion", "challenger", "archive"

    def __init__(self) -> None:
        self.alias = {"champion": "2", "archive": "1"}

    def model_name(self, env: str, model: str) -> str:
        return f"{env}.{model}"

    def aliases(self, name: str) -> dict[str, str]:
        return dict(self.alias)

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.alias.get(alias)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.alias[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        self.alias.pop(alias, None)


@pytest.fixture
def world(tmp_path, clock):
    log = SealedDecisionLog(f"sqlite:///{tmp_path / 'log.db'}", clock=clock, key_loader=lambda: b"k" * 32)
    schedules = FakeSchedules()
    ports = HaltPorts(
        log=log,
        clock=clock,
        config=lambda: CONFIG,
        known_model=lambda m: m == "credit",
        champion=lambda m: "2",
        schedules=schedules,
    )
    return ports, schedules


def _refusals(ports: HaltPorts) -> list:
    return ports.log.query(kind=DecisionKind.refusal, subject="model:credit")


def test_request_then_confirm_pauses_and_resume_needs_a_second_person(world):
    ports, schedules = world
    first = act(ports, "credit", "halt", "ops-olga", "scores drift", "INC-7")
    assert first.step is Step.request_halt and not first.state.in_force and schedules.calls == []
    assert "REQUESTED" in first.sentence()
    assert first.state.request is not None and first.state.request.reason == "scores drift"
    second = act(ports, "credit", "halt", "risk-rita", "agreed", "INC-7")
    assert second.step is Step.confirm_halt and second.state.in_force
    assert second.state.pinned_champion == "2" and schedules.active == set()
    assert second.schedules == ["eod-scoring/credit#1", "retrain/retrain#2"]
    [req, conf] = ports.log.query(kind=DecisionKind.halt)
    assert ports.log.is_trusted(conf) and conf.details["request_decision_id"] == req.decision_id

    act(ports, "credit", "resume", "ops-otto", "fixed", "INC-7")
    with pytest.raises(HaltRefused) as exc:  # the same person cannot confirm their own resume
        act(ports, "credit", "resume", "ops-otto", "fixed", "INC-7")
    assert exc.value.field == "by" and exc.value.decision_id  # type: ignore[attr-defined]
    assert schedules.active == set()  # still halted
    done = act(ports, "credit", "resume", "risk-rita", "fixed", "INC-7")
    assert done.step is Step.confirm_resume and not done.state.in_force
    assert schedules.active == {"eod-scoring/credit#1", "retrain/retrain#2"}
    assert list(overview(ports)) == ["credit"]


@pytest.mark.parametrize(
    ("model", "by", "reason", "ticket", "field"),
    [
        ("nope", "ops-olga", "why", "INC-1", "model"),
        ("credit", "ops-olga", "why", "", "ticket"),
        ("credit", "pm-paul", "why", "INC-1", "by"),
    ],
)
def test_bad_input_is_refused_and_recorded(world, model, by, reason, ticket, field):
    ports, _ = world
    with pytest.raises(HaltRefused) as exc:
        act(ports, model, "halt", by, reason, ticket)
    assert exc.value.field == field
    [rec] = ports.log.query(kind=DecisionKind.refusal)
    assert rec.decision_id == exc.value.decision_id  # type: ignore[attr-defined]
    assert rec.details["field"] == field and ports.log.query(kind=DecisionKind.halt) == []


def test_the_model_pages_see_a_halt_once_it_is_confirmed(world):
    ports, _ = world
    ticks = iter([0.0, 0.1, 5.0, 5.1, 10.0, 10.1])
    halted = why_halted(ports.log, ports.clock, fresh_s=1.0, monotonic=lambda: next(ticks))
    assert halted("credit") is None and halted("debit") is None
    act(ports, "credit", "halt", "ops-olga", "scores drift", "INC-7")
    assert halted("credit") is None  # requested, not confirmed: nothing is halted
    act(ports, "credit", "halt", "risk-rita", "agreed", "INC-7")
    assert halted("debit") is None  # within a second of the last read: not read again; another model
    sentence = halted("credit")  # a second later, the head moved: read again
    assert sentence is not None and "HALTED" in sentence and "ops-olga and risk-rita" in sentence
    act(ports, "credit", "resume", "ops-otto", "fixed", "INC-7")
    assert "resume requested by ops-otto" in (halted("credit") or "")  # still halted until confirmed


def test_the_console_desk_reads_and_acts(world):
    ports, _ = world
    desk = HaltDesk(ports)
    assert desk.state("nope") is None and desk.state("credit").status == "none"
    assert "REQUESTED" in desk.act("credit", "halt", "ops-olga", "why", "INC-1")
    assert "CONFIRMED" in desk.act("credit", "halt", "risk-rita", "why", "INC-1")


def _halt(ports: HaltPorts) -> None:
    act(ports, "credit", "halt", "ops-olga", "why", "INC-1")
    act(ports, "credit", "halt", "risk-rita", "why", "INC-1")


def test_a_halted_model_refuses_promotion_rollback_and_runs(world):
    ports, _ = world
    assert refuse_if_halted(ports.log, "credit", ports.clock.now(), what="x", subject="s", actor="a") is None
    _halt(ports)
    registry = AliasRegistry()
    p = Ports(registry=registry, log=ports.log, clock=ports.clock)  # type: ignore[arg-type]
    now = ports.clock.now()
    report = GateReport(
        model="credit",
        candidate_version="3",
        champion_version="2",
        gates=[],
        outcome=PromotionOutcome.promote,
        evaluated_at=now,
    )
    h = Handshake(model="credit", candidate_version="3", requested_by="ds-dana", tech_report_ref="r", tech_pass=True)
    with pytest.raises(ModelHalted) as exc:
        binary_promotion("run-1", report, "artifact:r", h, "ack", "ab" * 32, p)
    refusal = ports.log.get(exc.value.decision_id)
    assert refusal is not None and refusal.subject == "promotion:run-1"
    with pytest.raises(ModelHalted):
        execute_rollback("credit", trigger="drift", root_cause="psi", requested_by="ops-olga", ports=p)
    assert registry.alias == {"champion": "2", "archive": "1"}  # nothing moved
    run = refuse_if_halted(ports.log, "credit", ports.clock.now(), what="run of eod", subject="flow_run:x", actor="a")
    assert run is not None and "halted" in run.decision_rationale


def test_the_alias_guard_puts_a_halted_models_champion_back(world):
    ports, _ = world
    _halt(ports)
    registry = AliasRegistry()
    registry.alias["champion"] = "3"  # moved in MLflow directly
    p = Ports(registry=registry, log=ports.log, clock=ports.clock)  # type: ignore[arg-type]
    result = guard_model("credit", p, restore=False)  # report-only guard: a halt still restores
    assert result.status == "restored" and registry.alias["champion"] == "2"
    [incident] = ports.log.query(kind=DecisionKind.incident)
    assert incident.details["incident_kind"] == HALTED_INCIDENT_KIND
    assert incident.details["restore"] == {"champion": "2"}
