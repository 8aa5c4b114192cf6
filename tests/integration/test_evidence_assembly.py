"""What ``services.evidence_pack`` puts in a pack, on a real SQLite decision log written through the service
path (``releasegate.testing.evidence_log``): a held version, the version's tenure as champion, the
checkpoint it reuses, a forged approval it leaves out. The promotion itself on Prefect and MLflow is
``test_evidence_pack``."""

from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate import records
from releasegate.decisions import DecisionOutcome
from releasegate.policy.evidence_pack import HTML_FILE, JSON_FILE, SIGNATURE_FILE, verify_pack
from releasegate.services.audit import take_checkpoint
from releasegate.services.evidence_html import render
from releasegate.services.evidence_pack import EvidenceSources, NoEvidence, assemble, write
from releasegate.store.decision_log import DecisionLog
from releasegate.testing.evidence_log import T0, monitor, promote, sealed_log, trust_config


@pytest.fixture
def world(sqlite_url, tmp_path, clock):
    log = sealed_log(sqlite_url)
    keys = trust_config(log)
    key = Ed25519PrivateKey.generate()
    sources = EvidenceSources(
        log=log,
        signing_key=key,
        checkpoint_dir=tmp_path / "checkpoints",
        clock=clock,
        inventory=lambda model: {"model": model, "owners": ["ds-olga"], "risk_tier": "standard"},
    )
    return log, keys, sources


def _verified(sources, pack, folder) -> list:
    write(pack, folder, sources.signing_key, render)
    files = {n: (folder / n).read_bytes() for n in (JSON_FILE, HTML_FILE, SIGNATURE_FILE)}
    return verify_pack(files, sources.signing_key.public_key())[0]


def _retrain(log, at, note):
    log.append(
        records.retrain(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"retrain: {note}",
            subject=records.model_subject("credit"),
            actor="releasegate:retrain-gateway",
            details={"trigger": "drift"},
        ),
        now=at,
    )


def test_a_version_the_gates_held_gets_its_gate_report_and_no_release(world, tmp_path):
    log, keys, sources = world
    promote(log, keys, "4", "", T0, outcome="hold")
    pack = assemble(sources, "credit", "4")
    [promotion] = pack["promotions"]
    assert promotion["outcome"] == "hold" and promotion["gate_report"]["outcome"] == "hold"
    assert [a["details"]["role"] for a in pack["approvals"]] == ["tech"]
    assert pack["inventory"]["prod_versions"] == [] and pack["inventory"]["released_at"] is None
    assert pack["monitoring"] == [] and pack["rollbacks"] == []
    assert _verified(sources, pack, tmp_path / "pack") == []


def test_monitoring_and_retrains_are_the_versions_own_while_it_was_champion(world, tmp_path):
    log, keys, sources = world
    promote(log, keys, "3", "2", T0)
    monitor(log, "2", date(2022, 1, 3), days=3, noise=2)
    _retrain(log, T0 + timedelta(days=4), "while v2 was champion")
    promote(log, keys, "5", "3", T0 + timedelta(days=5))
    monitor(log, "3", date(2022, 1, 9), days=2)
    _retrain(log, T0 + timedelta(days=9), "after v3 replaced it")
    pack = assemble(sources, "credit", "3")
    assert [m["business_date"] for m in pack["monitoring"]] == ["2022-01-03", "2022-01-04", "2022-01-05"]
    assert {m["version"] for m in pack["monitoring"]} == {"2"}
    assert [c["rationale"] for c in pack["other_changes"]] == ["retrain: while v2 was champion"]
    assert [a["details"]["role"] for a in pack["approvals"]] == ["tech", "pm", "risk"]
    assert len(pack["approvers_configs"]) == 1 and pack["approvers_configs"][0]["seq"] == 1
    span = pack["decision_log"]["span"]
    assert span[0]["seq"] == 1 and span[-1]["seq"] == pack["decision_log"]["checkpoint"]["last_seq"]
    assert _verified(sources, pack, tmp_path / "pack") == []
    # the prod version names the same promotion; a number both registries hold is the candidate's
    by_prod = assemble(sources, "credit", "2")
    assert by_prod["promotions"][0]["run_id"] == pack["promotions"][0]["run_id"]
    assert pack["version_is"].startswith("the candidate version") and by_prod["version_is"].startswith("the prod")
    assert len(pack["promotions"]) == 1  # prod v3 (candidate v5's release) is another version


def _halt_step(log, at, step, person, role):
    log.append(
        records.halt(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"{step} by {person}",
            subject=records.model_subject("credit"),
            actor=person,
            details={"model_name": "credit", "step": step, "person": person, "role": role, "ticket_ref": "INC-7"},
        ),
        now=at,
    )


def test_the_halts_while_the_version_was_champion_are_its_own_section(world, tmp_path):
    log, keys, sources = world
    promote(log, keys, "3", "2", T0)
    _halt_step(log, T0 + timedelta(days=1), "request_halt", "oncall-otto", "oncall")
    _halt_step(log, T0 + timedelta(days=1, minutes=5), "confirm_halt", "risk-carla", "risk")
    promote(log, keys, "5", "3", T0 + timedelta(days=5))
    _halt_step(log, T0 + timedelta(days=6), "request_halt", "oncall-otto", "oncall")
    pack = assemble(sources, "credit", "3")
    halts = pack["halts"]
    assert [(h["details"]["step"], h["actor"]) for h in halts["records"]] == [
        ("request_halt", "oncall-otto"),
        ("confirm_halt", "risk-carla"),
    ]
    assert halts["note"] == "" and all(h["sealed"] for h in halts["records"])
    assert all(c["kind"] != "halt" for c in pack["other_changes"])
    assert set(pack["decision_log"]["excerpt"]) >= {h["seq"] for h in halts["records"]}
    assert _verified(sources, pack, tmp_path / "pack") == []
    assert "confirm_halt" in (tmp_path / "pack" / HTML_FILE).read_text()
    later = assemble(sources, "credit", "5")  # v3's release replaced v2: the third step is v3's tenure
    assert [h["details"]["step"] for h in later["halts"]["records"]] == ["request_halt"]


def test_the_earliest_checkpoint_that_covers_the_excerpt_is_reused(world, clock):
    log, keys, sources = world
    promote(log, keys, "3", "2", T0)
    taken = take_checkpoint(log, sources.signing_key, clock, sources.checkpoint_dir)
    monitor(log, "9", date(2022, 1, 3), days=2)  # another version's verdicts: not in the excerpt
    clock.advance(hours=1)
    take_checkpoint(log, sources.signing_key, clock, sources.checkpoint_dir)
    pack = assemble(sources, "credit", "3")
    assert pack["decision_log"]["checkpoint"]["last_seq"] == taken.checkpoint.last_seq
    assert len(list(sources.checkpoint_dir.iterdir())) == 2  # none taken by the export
    # a checkpoint signed by another key is not taken on its word: the export takes its own
    other = sources.__class__(**{**sources.__dict__, "signing_key": Ed25519PrivateKey.generate()})
    clock.advance(hours=1)
    assert assemble(other, "credit", "3")["decision_log"]["checkpoint"]["last_seq"] == log.count()
    assert len(list(sources.checkpoint_dir.iterdir())) == 3


def test_a_forged_approval_stays_in_the_excerpt_and_out_of_the_approvals(world, sqlite_url, tmp_path):
    log, keys, sources = world
    run = promote(log, keys, "3", "2", T0)
    forged = DecisionLog(sqlite_url).append(  # around the service path: no seal
        records.approval(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="COMPLIANCE_GATE_PASS by mallory",
            subject=records.promotion_subject(run),
            actor="mallory",
            details={"role": "compliance", "approver": "mallory", "model_name": "credit", "candidate_version": "3"},
        ),
        now=T0 + timedelta(hours=1),
    )
    pack = assemble(sources, "credit", "3")
    assert "mallory" not in [a["details"]["approver"] for a in pack["approvals"]]
    assert pack["decision_log"]["sealed"][forged.decision_id] is False
    assert all(v for k, v in pack["decision_log"]["sealed"].items() if k != forged.decision_id)
    assert _verified(sources, pack, tmp_path / "pack") == []


def test_a_version_no_promotion_judged_is_refused_naming_the_field(world):
    _, _, sources = world
    with pytest.raises(NoEvidence) as refused:
        assemble(sources, "credit", "7")
    assert refused.value.field == "VERSION" and "no promotion of credit v7" in refused.value.rule
