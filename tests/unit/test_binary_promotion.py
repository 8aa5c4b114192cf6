"""The binary promotion and rollback use cases on their ports: an in-memory registry (a fake of our own ``Registry``
port, not of MLflow) and the real sealed decision log on SQLite. Milliseconds, no Prefect, no MLflow.

The property: whatever the registry does (fail once while looking for an earlier copy, die after the
copy, die after the champion moved), a rerun finishes the promotion and the binary is copied once."""

from __future__ import annotations

import pytest

from releasegate.policy.gates import GateReport, PromotionOutcome
from releasegate.policy.handshake import Approval, Handshake, Role
from releasegate.policy.rollback import RollbackRefused
from releasegate.ports import Ports, RegistryUnavailable
from releasegate.services.release import binary_promotion, finish_unfinished
from releasegate.services.rollback import execute_rollback
from releasegate.store.trust import SealedDecisionLog

MODEL, SHA = "churn", "ab" * 32
STAGING, PROD = f"staging.{MODEL}", f"prod.{MODEL}"


class Crash(BaseException):
    """Stands for a killed process (not an Exception: nothing may catch it)."""


class InMemoryRegistry:
    CHAMPION, CHALLENGER, ARCHIVE = "champion", "challenger", "archive"

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, dict]] = {STAGING: {"3": {"source": "run", "tags": {"git_sha": "abc"}}}}
        self.alias: dict[str, dict[str, str]] = {}
        self.copies = 0
        self.fail: dict[str, BaseException] = {}  # method -> raise this once
        self.smoke_ok = True

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail:
            raise self.fail.pop(method)

    def model_name(self, env: str, model: str) -> str:
        return f"{env}.{model}"

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.alias.get(name, {}).get(alias)

    def aliases(self, name: str) -> dict[str, str]:
        return dict(self.alias.get(name, {}))

    def find_copy(self, prod_name, staging_name, version, sha256, decision_id):
        self._maybe_fail("find_copy")
        for v, mv in self.versions.get(prod_name, {}).items():
            if mv["tags"].get("decision_id") == decision_id:
                return v
        for v, mv in self.versions.get(prod_name, {}).items():
            if mv["source"] == f"models:/{staging_name}/{version}" and not mv["tags"].get("decision_id"):
                return v
        return None

    def copy_to(self, src_name, version, dst_name):
        self._maybe_fail("copy_to")
        self.copies += 1
        versions = self.versions.setdefault(dst_name, {})
        v = str(len(versions) + 1)
        versions[v] = {"source": f"models:/{src_name}/{version}", "tags": {}}
        return v

    def set_tags(self, name, version, tags):
        self._maybe_fail("set_tags")
        self.versions[name][version]["tags"].update(tags)

    def set_alias(self, name, alias, version):
        self._maybe_fail(f"set_alias:{alias}")
        self.alias.setdefault(name, {})[alias] = version

    def delete_alias(self, name, alias):
        self.alias.get(name, {}).pop(alias, None)

    def artifact_sha256(self, uri: str) -> str:
        return SHA

    def version_tags(self, name, version):
        return dict(self.versions[name][version]["tags"])

    def source_commit(self, name, version):
        v = self.versions[name][version]
        for tags in (v.get("run_tags", {}), v["tags"]):  # the run's tags first, as MLflow's adapter reads them
            for key in ("mlflow.source.git.commit", "git_sha"):
                if tags.get(key):
                    return tags[key]
        return None

    def smoke_test(self, uri, X=None):
        return {"ok": self.smoke_ok, "rows": 5, "error": None if self.smoke_ok else "no such model"}


@pytest.fixture
def ports(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("RELEASEGATE_HOME", str(tmp_path))
    log = SealedDecisionLog(f"sqlite:///{tmp_path / 'log.db'}", clock=clock, key_loader=lambda: b"k" * 32)
    return Ports(registry=InMemoryRegistry(), log=log, clock=clock)


def _promote(ports: Ports, run: str = "run-1", version: str = "3"):
    now = ports.clock.now()
    report = GateReport(
        model=MODEL,
        candidate_version=version,
        champion_version=None,
        gates=[],
        outcome=PromotionOutcome.promote,
        evaluated_at=now,
    )
    approval = dict(decision="approve", reference="T-1", at=now)
    h = Handshake(
        model=MODEL,
        candidate_version=version,
        requested_by="ds-dana",
        tech_report_ref="report-1",
        tech_pass=True,
        candidate_sha256=SHA,
        pm=Approval(role=Role.pm, approver="pm-paula", **approval),
        risk=Approval(role=Role.risk, approver="risk-rita", **approval),
    )
    return binary_promotion(run, report, "report-1", h, "JOINT_RELEASE_ACK:1", SHA, ports=ports)


def _statuses(ports: Ports) -> list[str]:
    return [r.details["status"] for r in ports.log.query(kind="promotion")]


def test_a_registry_that_fails_once_never_makes_a_second_copy(ports):
    reg = ports.registry
    reg.fail["find_copy"] = RegistryUnavailable("MLflow could not list the versions: database is locked")
    with pytest.raises(RegistryUnavailable):
        _promote(ports)
    assert reg.copies == 0 and reg.aliases(PROD) == {} and _statuses(ports) == ["pending"]

    out = _promote(ports)  # the retry of the same run finishes what the first attempt started
    assert (reg.copies, out["prod_version"], out["converged"]) == (1, "1", True)
    assert reg.aliases(PROD) == {"champion": "1"} and _statuses(ports) == ["pending", "final"]
    assert _promote(ports)["decision_id"] == out["decision_id"]  # and a third call changes nothing
    assert reg.copies == 1


@pytest.mark.parametrize("dies_in", ["set_tags", "set_alias:champion"])
def test_a_promotion_killed_after_the_copy_is_finished_without_copying_again(ports, dies_in):
    reg = ports.registry
    reg.fail[dies_in] = Crash()
    with pytest.raises(Crash):
        _promote(ports)
    assert reg.copies == 1 and _statuses(ports) == ["pending"]

    [done] = finish_unfinished(MODEL, ports=ports)  # what the next promotion of the model does first
    assert done["converged"] is True and done["prod_version"] == "1"
    assert reg.copies == 1 and reg.aliases(PROD) == {"champion": "1"}
    final = ports.log.query(kind="promotion")[-1]
    assert final.details["status"] == "final" and final.details["prod_sha256"] == SHA


def test_the_rerun_of_a_killed_promotion_reports_one_decision_one_way(ports):
    """The rerun of a killed promotion finishes its own pending record first (``finish_unfinished``,
    converged), then reaches its binary step, which finds that decision already final: it must report it
    as its final record does, not "converged: False" for the decision it just logged "converged: True"."""
    reg = ports.registry
    reg.fail["set_alias:champion"] = Crash()
    with pytest.raises(Crash):
        _promote(ports)
    [done] = finish_unfinished(MODEL, ports=ports)
    again = _promote(ports)  # the same run, further on
    assert again["decision_id"] == done["decision_id"] and again["converged"] is done["converged"] is True
    assert again["pending_decision_id"] == done["pending_decision_id"] and reg.copies == 1
    assert ports.log.get(again["decision_id"]).details["converged"] is True


def test_an_interrupted_promotion_past_its_ack_is_abandoned_and_the_champion_put_back(ports):
    reg = ports.registry
    reg.alias[PROD] = {"champion": "0"}
    reg.versions[PROD] = {"0": {"source": "models:/staging.churn/1", "tags": {"decision_id": "earlier"}}}
    reg.fail["set_alias:champion"] = Crash()  # the archive moved, then the process died
    with pytest.raises(Crash):
        _promote(ports)
    copy = max(reg.versions[PROD])
    reg.alias[PROD]["champion"] = copy  # as if the move had reached MLflow just before the crash
    ports.clock.advance(hours=25)
    [out] = finish_unfinished(MODEL, ports=ports)
    assert out["champion_restored"] == "0" and reg.aliases(PROD)["champion"] == "0"
    assert "archive" not in reg.aliases(PROD)  # the binary step had archived v0: put back as it was
    assert _statuses(ports) == ["pending", "abandoned"] and reg.copies == 1


# ------------------------------------------------------------------ rollback on the same ports
def _two_releases(ports: Ports) -> None:
    """v3 promoted (prod v1), then v4 promoted (prod v2): champion v2, archive v1."""
    reg = ports.registry
    reg.versions[STAGING]["4"] = {"source": "run", "tags": {}}
    _promote(ports, "run-1")
    _promote(ports, "run-2", version="4")
    assert reg.aliases(PROD) == {"champion": "2", "archive": "1"}


def test_a_rollback_goes_back_to_the_last_approved_version_and_is_verified(ports):
    _two_releases(ports)
    rec = execute_rollback(MODEL, trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga", ports=ports)
    assert (rec.previous_version, rec.new_version, rec.verified) == ("2", "1", True)
    assert ports.registry.aliases(PROD) == {"champion": "1"}
    assert [r.details["status"] for r in ports.log.query(kind="rollback")] == ["pending", "final"]


def test_a_rollback_the_registry_cannot_verify_is_recorded_unverified(ports):
    _two_releases(ports)
    ports.registry.smoke_ok = False
    rec = execute_rollback(MODEL, trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga", ports=ports)
    assert rec.verified is False and ports.log.query(kind="rollback")[-1].details["verified"] is False


def test_a_rollback_without_an_approved_archive_is_refused_and_moves_nothing(ports):
    _promote(ports)
    with pytest.raises(RollbackRefused) as refused:
        execute_rollback(MODEL, trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga", ports=ports)
    assert refused.value.field == "archive"
    assert ports.registry.aliases(PROD) == {"champion": "1"}
    [rec] = ports.log.query(kind="rollback")
    assert rec.decision_outcome.value == "reject" and rec.details["refused_field"] == "archive"


# ------------------------------------------------------------------ the guard while a promotion is interrupted
@pytest.mark.parametrize("dies_in", ["copy_to", "set_tags", "set_alias:archive", "set_alias:champion"])
def test_the_guard_finishes_a_promotion_killed_anywhere_in_its_binary_step_without_an_incident(ports, dies_in):
    from releasegate.services.alias_guard import guard_model

    reg = ports.registry
    reg.versions[STAGING]["4"] = {"source": "run", "tags": {}}
    _promote(ports, "run-1")  # prod v1 champion
    ports.clock.advance(minutes=5)
    reg.fail[dies_in] = Crash()
    with pytest.raises(Crash):
        _promote(ports, "run-2", version="4")
    result = guard_model(MODEL, ports)  # the registry watcher's next pass, under the alias lock
    assert result.status == "finished" and result.findings == [], result
    assert reg.aliases(PROD) == {"champion": "2", "archive": "1"} and reg.copies == 2, result
    assert _statuses(ports) == ["pending", "final", "pending", "final"]
    assert ports.log.query(kind="incident") == []
    assert guard_model(MODEL, ports).status == "ok"


def test_the_guard_does_not_excuse_an_unrecorded_move_while_a_promotion_is_interrupted(ports):
    from releasegate.services.alias_guard import guard_model

    reg = ports.registry
    reg.versions[STAGING]["4"] = {"source": "run", "tags": {}}
    _promote(ports, "run-1")
    ports.clock.advance(minutes=5)
    reg.fail["set_alias:archive"] = Crash()
    with pytest.raises(Crash):
        _promote(ports, "run-2", version="4")
    reg.versions[PROD]["3"] = {"source": "models:/staging.churn/9", "tags": {}}  # never approved
    reg.alias[PROD]["champion"] = "3"
    result = guard_model(MODEL, ports)
    assert result.status == "restored" and [(f.alias, f.found, f.expected) for f in result.findings] == [
        ("champion", "3", "1")
    ]
    [incident] = ports.log.query(kind="incident")
    assert incident.details["restore"] == {"champion": "1"}
    assert reg.aliases(PROD) == {"champion": "2", "archive": "1"}  # put back, then the approved one finished


def test_the_guard_abandons_a_stale_interrupted_promotion_and_puts_both_aliases_back(ports):
    from releasegate.services.alias_guard import guard_model

    reg = ports.registry
    reg.versions[STAGING]["4"] = {"source": "run", "tags": {}}
    _promote(ports, "run-1")
    ports.clock.advance(minutes=5)
    reg.fail["set_alias:champion"] = Crash()  # the archive moved to v1, the champion did not move
    with pytest.raises(Crash):
        _promote(ports, "run-2", version="4")
    assert reg.aliases(PROD) == {"champion": "1", "archive": "1"}
    ports.clock.advance(hours=25)
    result = guard_model(MODEL, ports)
    assert result.status == "finished" and "expired" in result.promotions[0]["reason"]
    assert reg.aliases(PROD) == {"champion": "1"}  # no archive before it: none after
    assert _statuses(ports)[-1] == "abandoned" and ports.log.query(kind="incident") == []
    assert guard_model(MODEL, ports).status == "ok"


def test_the_prod_version_carries_the_commit_the_gate_read_from_the_training_run(ports):
    """Issue 29: the run that logged the version held the commit (a worker's run tagged by ``governed``);
    the version's own ``git_sha`` tag said ``unknown``. The prod copy carries the run's commit."""
    reg = ports.registry
    reg.versions[STAGING]["3"] = {"source": "run", "tags": {"git_sha": "unknown"}, "run_tags": {"git_sha": "c0ffee1"}}
    out = _promote(ports)
    assert reg.versions[PROD][out["prod_version"]]["tags"]["git_sha"] == "c0ffee1"
