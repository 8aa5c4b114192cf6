"""The offline verification of an evidence pack (``policy.evidence_pack``, ``policy.evidence_chain``): a
pack built by hand from real records, real hashes and real Ed25519 signatures, then altered."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate import records
from releasegate.decisions import GENESIS_HASH, DecisionOutcome, make_record, record_hash
from releasegate.policy.approvers import ApproverConfig, config_digest
from releasegate.policy.evidence_chain import checkpoint_statement, span_finding
from releasegate.policy.evidence_pack import FORMAT, PackStatement, sha256, verify_pack
from releasegate.policy.handshake import Role
from releasegate.policy.passkey_approvals import PasskeyApproval, challenge
from releasegate.policy.signatures import ApprovalStatement, key_id, public_hex, sign, signature_by
from tests.support.passkeys import SoftAuthenticator

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
SERVICE = Ed25519PrivateKey.generate()
ANNA = Ed25519PrivateKey.generate()
CARLA = SoftAuthenticator()  # RISK approves with a passkey


def _config(key=ANNA, passkey=CARLA) -> ApproverConfig:
    return ApproverConfig(
        pm=["pm-anna"],
        risk=["risk-carla"],
        keys={"pm-anna": public_hex(key.public_key())},
        passkeys={"risk-carla": passkey.passkey()},
    )


def _statement(role: Role, approver: str, run: str) -> ApprovalStatement:
    return ApprovalStatement(
        model="credit",
        candidate_version="3",
        role=role,
        decision="approve",
        approver=approver,
        reference="REV-1",
        gate_report_sha256="c" * 64,
        run_id=run,
        signed_at=T0,
    )


def _record(role: Role, approver: str, signed_record: dict, run: str, minutes: int):
    details = {
        "role": role.value,
        "approver": approver,
        "model_name": "credit",
        "candidate_version": "3",
        "decision": "approve",
        "reference": "REV-1",
        "gate_report_sha256": "c" * 64,
        **signed_record,
    }
    new = records.approval(
        decision_outcome=DecisionOutcome.accept,
        decision_rationale=f"{role.value.upper()}_GATE_PASS by {approver}",
        subject=records.promotion_subject(run),
        actor=approver,
        tech_gate_report_ref="artifact:r",
        details=details,
    )
    return make_record(new, T0 + timedelta(minutes=minutes))


def _passkey_approval(run: str = "run-1", by: SoftAuthenticator = CARLA):
    stmt = _statement(Role.risk, "risk-carla", run)
    signed = PasskeyApproval(statement=stmt, assertion=by.get(challenge(stmt)), passkey=by.passkey())
    return _record(Role.risk, "risk-carla", signed.record(), run, 6)


def _approval(run: str = "run-1", key=ANNA):
    return _record(Role.pm, "pm-anna", sign(_statement(Role.pm, "pm-anna", run), key).record(), run, 5)


def _config_record(config: ApproverConfig):
    new = records.approvers_config(
        decision_outcome=DecisionOutcome.accept,
        decision_rationale="trusted once",
        subject=records.APPROVERS_CONFIG_SUBJECT,
        actor="admin",
        details={"status": "trusted_once", "digest": config_digest(config), "config": config.model_dump(mode="json")},
    )
    return make_record(new, T0)


def _pack(config_key=ANNA, approval_key=ANNA, passkey=CARLA) -> dict[str, bytes]:
    config = _config(config_key)
    recs = [_config_record(config), _approval(key=approval_key), _passkey_approval(by=passkey)]
    span, prev = [], GENESIS_HASH
    for seq, rec in enumerate(recs, start=1):
        content = rec.content()
        digest = record_hash(seq, prev, content)
        span.append({"seq": seq, "prev_hash": prev, "record_hash": digest, "record": content})
        prev = digest
    created = T0 + timedelta(hours=1)
    checkpoint = {
        "last_seq": 3,
        "last_hash": prev,
        "created_at": created.isoformat(),
        "key_id": key_id(SERVICE.public_key()),
        "signature": SERVICE.sign(checkpoint_statement(3, prev, created)).hex(),
    }
    pack = {
        "format": FORMAT,
        "model": "credit",
        "version": "3",
        "inventory": {"model": "credit", "owners": ["ds-olga"]},
        "approvals": [
            {
                "seq": seq,
                "decision_id": approval.decision_id,
                "decision_timestamp": approval.content()["decision_timestamp"],
                "subject": approval.subject,
                "details": approval.content()["details"],
                "config_digest": config_digest(config),
            }
            for seq, approval in ((2, recs[1]), (3, recs[2]))
        ],
        "approvers_configs": [
            {
                "seq": 1,
                "decision_id": recs[0].decision_id,
                "at": recs[0].content()["decision_timestamp"],
                "digest": config_digest(config),
                "config": config.model_dump(mode="json"),
            }
        ],
        "decision_log": {"excerpt": [2, 3], "span": span, "checkpoint": checkpoint},
    }
    data = json.dumps(pack, indent=1, sort_keys=True).encode()
    html = b"<html>pack</html>"
    statement = PackStatement(
        model="credit",
        version="3",
        created_at=created,
        files={"evidence.json": sha256(data), "evidence.html": sha256(html)},
    )
    sig = json.dumps({"statement": statement.model_dump(mode="json"), **signature_by(statement, SERVICE)}).encode()
    return {"evidence.json": data, "evidence.html": html, "evidence.sig": sig}


def _with(files: dict[str, bytes], change) -> dict[str, bytes]:
    pack = json.loads(files["evidence.json"])
    change(pack)
    return {**files, "evidence.json": json.dumps(pack, indent=1, sort_keys=True).encode()}


def test_an_intact_pack_verifies_with_the_pinned_key_and_says_what_it_checked():
    findings, facts = verify_pack(_pack(), SERVICE.public_key())
    assert findings == []
    assert any("2 signed approvals re-verified" in f for f in facts)
    assert any("span of 3 records (#1–#3)" in f for f in facts)


def test_the_key_the_pack_names_is_used_when_none_is_pinned():
    assert verify_pack(_pack(), None)[0] == []


def test_a_byte_outside_the_records_is_named_by_the_file_digest():
    files = _with(_pack(), lambda p: p["inventory"].update(owners=["ds-olgb"]))
    [finding] = verify_pack(files, SERVICE.public_key())[0]
    assert str(finding).startswith("evidence.json: altered after signing")


def test_an_altered_approval_signature_is_named_first():
    def change(p):
        sig = p["approvals"][0]["details"]["signature"]
        p["approvals"][0]["details"]["signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]

    findings, _ = verify_pack(_with(_pack(), change), SERVICE.public_key())
    assert findings[0].where.startswith("approval ") and "signature does not verify" in findings[0].problem


def test_an_altered_record_is_named_by_its_seq():
    def change(p):
        p["decision_log"]["span"][1]["record"]["decision_rationale"] = "PM_GATE_PASS by pm-annb"

    findings, _ = verify_pack(_with(_pack(), change), SERVICE.public_key())
    assert findings[0].where.startswith("decision log record #2")
    assert findings[0].problem == "was altered: its content no longer matches its hash"


def test_an_approval_signed_with_a_key_the_config_did_not_pin_is_named():
    other = Ed25519PrivateKey.generate()
    findings, _ = verify_pack(_pack(approval_key=other), SERVICE.public_key())
    assert "not the one the approvers config pins for 'pm-anna'" in findings[0].problem


def test_an_altered_config_is_named_by_its_digest():
    def change(p):
        p["approvers_configs"][0]["config"]["pm"] = ["pm-anna", "mallory"]

    findings, _ = verify_pack(_with(_pack(), change), SERVICE.public_key())
    assert any("the config does not match its digest" in f.problem for f in findings)


def test_another_pinned_key_is_refused_by_the_signature_and_the_checkpoint():
    findings, _ = verify_pack(_pack(), Ed25519PrivateKey.generate().public_key())
    text = [str(f) for f in findings]
    assert any(t.startswith("checkpoint: signed by key") for t in text)
    assert any(t.startswith("evidence.sig: signed by a key that is not the pinned service key") for t in text)


def test_a_missing_signature_or_document_is_named():
    files = _pack()
    assert str(verify_pack({k: v for k, v in files.items() if k != "evidence.sig"}, None)[0][0]) == (
        "evidence.sig: missing: the pack is not signed"
    )
    assert str(verify_pack({}, None)[0][0]) == "evidence.json: missing"
    assert verify_pack({"evidence.json": b"{not json"}, None)[0][0].where == "evidence.json"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda span, cp: span.pop(), "does not reach the signed head"),
        (lambda span, cp: span.__setitem__(1, {**span[1], "seq": 3}), "expected record #2 here"),
        (lambda span, cp: span[1].__setitem__("prev_hash", "f" * 64), "predecessor link"),
        (lambda span, cp: cp.__setitem__("last_seq", 4), "the checkpoint's signature does not verify"),
    ],
)
def test_the_span_breaks_are_named(change, problem):
    pack = json.loads(_pack()["evidence.json"])
    span, cp = pack["decision_log"]["span"], pack["decision_log"]["checkpoint"]
    change(span, cp)
    finding = span_finding(span, cp, SERVICE.public_key())
    assert finding is not None and problem in finding.problem


def test_an_altered_passkey_assertion_is_named():
    def change(p):
        webauthn = p["approvals"][1]["details"]["webauthn"]["assertion"]
        sig = webauthn["signature"]
        webauthn["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]

    findings, _ = verify_pack(_with(_pack(), change), SERVICE.public_key())
    assert findings[0].where.startswith("approval ") and "(risk by 'risk-carla')" in findings[0].where
    assert "passkey assertion does not verify" in findings[0].problem


def test_a_passkey_the_config_did_not_pin_is_named():
    findings, _ = verify_pack(_pack(passkey=SoftAuthenticator()), SERVICE.public_key())
    assert "(risk by 'risk-carla')" in findings[0].where
    assert "not the one the approvers config pins for 'risk-carla'" in findings[0].problem


def test_a_section_of_the_wrong_shape_is_named_not_raised():
    findings, _ = verify_pack(_with(_pack(), lambda p: p.update(approvals=["not an approval"])), None)
    assert findings[0].where == "evidence.json" and findings[0].problem.startswith("malformed")


def test_an_approval_said_to_predate_the_governed_config_is_checked_against_the_configs_carried():
    def change(p):
        p["approvals"][0]["config_digest"] = None

    findings, _ = verify_pack(_with(_pack(), change), SERVICE.public_key())
    assert "(pm by 'pm-anna')" in findings[0].where
    assert "was in force at its time, not this one" in findings[0].problem


def test_a_config_time_or_an_approval_subject_the_log_does_not_hold_is_named():
    def later(p):
        p["approvers_configs"][0]["at"] = "2026-11-23T09:00:00Z"

    findings, _ = verify_pack(_with(_pack(), later), SERVICE.public_key())
    text = [str(f) for f in findings]
    assert any("came into force after the approval" in t for t in text)
    assert any(t.startswith("approvers config") and "is not the record the decision log holds at #1" in t for t in text)

    def elsewhere(p):
        p["approvals"][0]["subject"] = "promotion:run-2"

    findings, _ = verify_pack(_with(_pack(), elsewhere), SERVICE.public_key())
    assert "the signed statement says run_id 'promotion:run-1'" in findings[0].problem
