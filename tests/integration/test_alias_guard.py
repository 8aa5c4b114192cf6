"""The protected champion on a real MLflow registry (SQLite in a temp dir) and a real decision log: an
alias moved by hand is detected, reported as an incident and moved back to where the log's last sealed
promotion or rollback put it."""

import pytest
from credit_example.training import log_and_register, train

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.decisions import DecisionKind
from releasegate.services.alias_guard import INCIDENT_KIND, guard_model
from releasegate.services.rollback import execute_rollback
from tests.conftest import approve_prod_version

PROD = "prod.credit"


@pytest.fixture
def promoted(rg_home):
    """prod.credit v1 promoted, then v2 promoted over it (champion 2, archive 1), as services.release does."""
    for seed in (1, 2, 3):
        log_and_register(train(seed=seed, rows=800), "credit", "staging")
    for v in ("1", "2", "3"):
        registry.copy_to("staging.credit", v, PROD)
    approve_prod_version("credit", "1")
    registry.set_alias(PROD, registry.CHAMPION, "1")
    approve_prod_version("credit", "2", previous_champion="1")
    registry.set_alias(PROD, registry.ARCHIVE, "1")
    registry.set_alias(PROD, registry.CHAMPION, "2")
    return bootstrap.ports()


def _incidents() -> list:
    recs = bootstrap.decision_log().query(kind=DecisionKind.incident, subject="model:credit")
    return [r for r in recs if r.details.get("incident_kind") == INCIDENT_KIND]


def test_aliases_where_the_log_puts_them_are_left_alone(promoted):
    result = guard_model("credit", promoted)
    assert result.status == "ok" and result.findings == []
    assert _incidents() == []


def test_a_champion_moved_by_hand_is_an_incident_and_is_moved_back(promoted):
    events = []
    registry.set_alias(PROD, registry.CHAMPION, "3")  # someone with registry access, outside releasegate
    result = guard_model("credit", promoted, emit_event=lambda **e: events.append(e))
    assert result.status == "restored"
    [f] = result.findings
    assert (f.alias, f.found, f.expected) == ("champion", "3", "2")
    assert registry.aliases(PROD) == {"champion": "2", "archive": "1"}  # restored, archive untouched
    [rec] = _incidents()
    assert rec.decision_id == result.incident_decision
    assert rec.details["found"] == {"champion": "3", "archive": "1"}
    assert rec.details["restore"] == {"champion": "2"}
    assert "alias champion points at v3" in rec.decision_rationale and "moved back" in rec.decision_rationale
    final_v2 = [r for r in bootstrap.decision_log().query(kind="promotion") if r.details.get("status") == "final"][-1]
    assert rec.details["incident_for"] == final_v2.decision_id  # the record that vouches for v2
    assert bootstrap.decision_log().is_trusted(rec)  # sealed by the service path
    [e] = events
    assert e["event"] == "releasegate.incident.opened" and e["payload"]["restored"] is True
    assert guard_model("credit", promoted).status == "ok"


def test_a_deleted_archive_comes_back_and_report_mode_reports_once_without_moving(promoted):
    registry.delete_alias(PROD, registry.ARCHIVE)
    assert guard_model("credit", promoted).status == "restored"
    assert registry.aliases(PROD) == {"champion": "2", "archive": "1"}

    registry.set_alias(PROD, registry.CHAMPION, "1")
    first = guard_model("credit", promoted, restore=False)
    assert first.status == "reported" and registry.alias_version(PROD, registry.CHAMPION) == "1"
    assert guard_model("credit", promoted, restore=False).status == "already_reported"  # once, not every minute
    assert len(_incidents()) == 2


def test_a_rollback_by_releasegate_is_not_an_incident(promoted):
    execute_rollback("credit", trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga", ports=bootstrap.ports())
    assert registry.aliases(PROD) == {"champion": "1"}
    assert guard_model("credit", promoted).status == "ok"
    registry.set_alias(PROD, registry.CHAMPION, "2")  # "undoing" the rollback by hand
    assert guard_model("credit", promoted).status == "restored"
    assert registry.aliases(PROD) == {"champion": "1"}


class Killed(BaseException):
    """Stands for the worker process killed mid-step (not an Exception: nothing may catch it)."""


class KilledAtChampion:
    """The real MLflow registry port; the process "dies" on the first ``set_alias(champion)``."""

    def __init__(self) -> None:
        self.armed = True

    def __getattr__(self, name: str):
        return getattr(registry, name)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        if alias == registry.CHAMPION and self.armed:
            self.armed = False
            raise Killed()
        registry.set_alias(name, alias, version)


def _interrupted_promotion_of_v4(promoted, when=None):
    """The binary step of an approved promotion of a new staging v4, killed after its copy (prod v4) and
    its archive move, before ``champion`` moved: a sealed pending record with no end. Returns the copy."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from releasegate.policy.gates import GateReport, PromotionOutcome
    from releasegate.policy.handshake import Approval, Handshake, Role
    from releasegate.services.release import binary_promotion

    assert log_and_register(train(seed=4, rows=800), "credit", "staging") == "4"
    now = when or datetime.now(UTC)
    sha = registry.artifact_sha256("models:/staging.credit/4")
    report = GateReport(
        model="credit",
        candidate_version="4",
        champion_version="2",
        gates=[],
        outcome=PromotionOutcome.promote,
        evaluated_at=now,
    )
    ok = dict(decision="approve", reference="T-1", at=now)
    h = Handshake(
        model="credit",
        candidate_version="4",
        requested_by="ds-dana",
        tech_report_ref="report-1",
        tech_pass=True,
        candidate_sha256=sha,
        pm=Approval(role=Role.pm, approver="pm-paula", **ok),
        risk=Approval(role=Role.risk, approver="risk-rita", **ok),
    )
    killed = replace(promoted, registry=KilledAtChampion())
    with pytest.raises(Killed):
        binary_promotion("run-v4", report, "report-1", h, "JOINT_RELEASE_ACK:1", sha, ports=killed)
    [pending] = [r for r in bootstrap.decision_log().query(kind="promotion") if r.subject == "promotion:run-v4"]
    assert pending.details["status"] == "pending"
    copy = registry.find_copy(PROD, "staging.credit", "4", sha, pending.decision_id)
    assert copy == "4" and registry.aliases(PROD) == {"champion": "2", "archive": "2"}
    return copy


def _ends(subject: str = "promotion:run-v4") -> list[str]:
    recs = bootstrap.decision_log().query(kind="promotion", subject=subject)
    return [r.details["status"] for r in recs]


def test_an_unapproved_champion_during_an_interrupted_promotion_is_an_incident_and_moved_back(promoted):
    """Regression: a pending promotion with no end used to make the guard answer ``in_flight`` without
    reading the aliases, so a champion pointed at a never-approved version stood with no incident."""
    copy = _interrupted_promotion_of_v4(promoted)
    registry.set_alias(PROD, registry.CHAMPION, "3")  # prod v3: a copy no promotion ever approved
    result = guard_model("credit", promoted)
    assert result.status == "restored"
    assert {(f.alias, f.found, f.expected) for f in result.findings} == {("champion", "3", "2"), ("archive", "2", "1")}
    [rec] = _incidents()
    assert rec.details["found"] == {"champion": "3", "archive": "2"} and bootstrap.decision_log().is_trusted(rec)
    # then the approved, interrupted promotion is finished from where the log puts the aliases
    [done] = result.promotions
    assert done["prod_version"] == copy and done["converged"] is True
    assert registry.aliases(PROD) == {"champion": copy, "archive": "2"}
    assert _ends() == ["pending", "final"]
    assert guard_model("credit", promoted).status == "ok" and len(_incidents()) == 1


def test_an_interrupted_promotion_is_finished_by_the_guard_its_own_moves_no_incident(promoted):
    copy = _interrupted_promotion_of_v4(promoted)
    result = guard_model("credit", promoted)  # the archive it moved is one of its recorded steps
    assert result.status == "finished" and result.findings == [] and _incidents() == []
    assert registry.aliases(PROD) == {"champion": copy, "archive": "2"} and _ends() == ["pending", "final"]
    assert guard_model("credit", promoted).status == "ok"


def test_an_interrupted_promotion_past_its_ack_is_abandoned_by_the_guard_and_put_back(promoted):
    from datetime import UTC, datetime

    from releasegate.bootstrap import use_clock
    from releasegate.clock import FixedClock

    clock = FixedClock(datetime.now(UTC))
    with use_clock(clock):
        _interrupted_promotion_of_v4(promoted, when=clock.now())
        clock.advance(hours=25)
        result = guard_model("credit", promoted)
    assert result.status == "finished" and _incidents() == []
    [out] = result.promotions
    assert "ack has expired" in out["reason"]
    assert registry.aliases(PROD) == {"champion": "2", "archive": "1"}  # as the log left them
    assert _ends() == ["pending", "abandoned"]
    assert guard_model("credit", promoted).status == "ok"


def test_a_champion_releasegate_never_promoted_is_reported_not_moved(rg_home):
    log_and_register(train(seed=1, rows=800), "credit", "staging")
    registry.copy_to("staging.credit", "1", PROD)
    registry.set_alias(PROD, registry.CHAMPION, "1")
    result = guard_model("credit", bootstrap.ports())
    assert result.status == "reported"
    assert registry.alias_version(PROD, registry.CHAMPION) == "1"
    [rec] = _incidents()
    assert "no sealed promotion" in rec.decision_rationale


@pytest.mark.prefect
def test_the_registry_watchers_guard_runs_under_the_alias_lock_and_restores(promoted, prefect_harness):
    from flows.registry_watcher import registry_watcher
    from releasegate.adapters.registry_watch import guard_prod_aliases

    registry.set_alias(PROD, registry.CHAMPION, "3")
    out = registry_watcher()  # the deployment's flow, every minute
    assert out["alias_guard"] == {"credit": "restored"}
    assert registry.alias_version(PROD, registry.CHAMPION) == "2"
    assert [r.status for r in guard_prod_aliases(bootstrap.app())] == ["ok"]


@pytest.mark.prefect
def test_registry_guard_cli_reports_with_exit_1_and_report_only_moves_nothing(promoted, prefect_harness):
    from typer.testing import CliRunner

    from releasegate.cli import app

    registry.set_alias(PROD, registry.CHAMPION, "3")
    done = CliRunner().invoke(app, ["registry", "guard", "--report-only"])
    said = " ".join(done.output.split())
    assert done.exit_code == 1, done.output
    assert "credit: reported" in said and "alias champion points at v3" in said
    assert registry.alias_version(PROD, registry.CHAMPION) == "3"
    done = CliRunner().invoke(app, ["registry", "guard"])
    assert done.exit_code == 1 and "credit: restored" in " ".join(done.output.split())
    done = CliRunner().invoke(app, ["registry", "guard"])
    assert done.exit_code == 0 and "credit: ok" in done.output
    assert registry.alias_version(PROD, registry.CHAMPION) == "2"


def test_every_registered_model_is_read_past_the_first_page(rg_home):
    """The watcher and the guard read the whole registry, page by page (MLflow answers a page at a time)."""
    names = {f"{env}.m{i}" for env in ("staging", "prod") for i in range(3)}
    c = registry.client()
    for name in sorted(names):
        c.create_registered_model(name)
    assert {rm.name for rm in registry.registered_models(page_size=2)} == names
