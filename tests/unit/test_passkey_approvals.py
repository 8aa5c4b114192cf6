"""Approvals signed with a passkey (pure): a software P-256 authenticator signs the statement's hash as
the WebAuthn challenge; every way such an approval is refused names the field and the rule."""

from datetime import UTC, datetime, timedelta

import pytest

from releasegate.policy.handshake import Approval, ApprovalFields, ApprovalRefused, Handshake, Role
from releasegate.policy.passkey_approvals import (
    PasskeyApproval,
    challenge,
    check_any,
    fields_from_any_token,
    from_record_any,
    recorded_approval_problem,
)
from releasegate.policy.passkeys import Assertion, PasskeyRefused, b64url, check_assertion
from releasegate.policy.signatures import statement_for
from tests.support.passkeys import SoftAuthenticator

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
AUTH = {n: SoftAuthenticator() for n in ("pm-anna", "risk-carla", "mallory")}
H = Handshake(
    model="credit",
    candidate_version="4",
    requested_by="ml-engineer",
    tech_report_ref="artifact:r",
    tech_pass=True,
    candidate_sha256="a" * 64,
    gate_report_sha256="c" * 64,
    allow_lists={Role.pm: ["pm-anna"], Role.risk: ["risk-carla"]},
    passkeys={n: a.passkey() for n, a in AUTH.items() if n != "mallory"},
)
PM = ApprovalFields(approver="pm-anna", reference="REV-1")


def approval(h=H, role=Role.pm, fields=PM, run="run-1", at=NOW, by="pm-anna", **override) -> PasskeyApproval:
    stmt = statement_for(h, role, fields, run, at).model_copy(update=override)
    return PasskeyApproval(statement=stmt, assertion=AUTH[by].get(challenge(stmt)), passkey=AUTH[by].passkey())


def refused(a: PasskeyApproval, h=H, role=Role.pm, fields=PM, run="run-1", now=NOW) -> ApprovalRefused:
    with pytest.raises(ApprovalRefused) as e:
        check_any(h, role, fields, a.token(), run, now)
    return e.value


def test_a_passkey_approval_is_accepted_and_its_record_re_verifies_offline():
    a = approval()
    got = check_any(H, Role.pm, PM, a.token(), "run-1", NOW + timedelta(hours=1))
    assert isinstance(got, PasskeyApproval) and got.key_id == AUTH["pm-anna"].passkey().key_id
    record = got.record() | {"role": "pm", "approver": "pm-anna", "decision": "approve"}
    record |= {"model_name": "credit", "candidate_version": "4", "gate_report_sha256": "c" * 64}
    assert record["signature_scheme"] == "webauthn" and record["webauthn"]["assertion"]["client_data_json"]
    assert recorded_approval_problem("promotion:run-1", record) is None
    assert from_record_any(record) == got
    tampered = record | {"signed_statement": record["signed_statement"] | {"reference": "REV-9"}}
    assert "does not verify" in recorded_approval_problem("promotion:run-1", tampered)
    assert "approver" in recorded_approval_problem("promotion:run-1", record | {"approver": "pm-ben"})
    assert "run_id" in recorded_approval_problem("promotion:run-2", record)
    assert fields_from_any_token(a.token()) == {
        "role": "pm",
        "approver": "pm-anna",
        "decision": "approve",
        "reference": "REV-1",
    }


def test_a_key_that_is_not_the_approvers_pinned_passkey_is_refused():
    e = refused(approval(by="mallory"))  # pm-anna's statement, mallory's authenticator
    assert e.field == "credential_id" and "not the passkey pinned for 'pm-anna'" in e.rule
    # mallory claims pm-anna's credential (id and key) but signs with her own key
    forged = approval(by="mallory").model_copy(update={"passkey": AUTH["pm-anna"].passkey()})
    claimed = forged.assertion.model_copy(update={"credential_id": AUTH["pm-anna"].passkey().credential_id})
    forged = forged.model_copy(update={"assertion": claimed})
    e = refused(forged)
    assert e.field == "signature" and "does not verify" in e.rule
    e = refused(approval(), h=H.model_copy(update={"passkeys": {}}))
    assert e.field == "approver" and "no passkey" in e.rule


def test_a_statement_altered_after_signing_is_refused():
    a = approval()
    altered = a.model_copy(update={"statement": a.statement.model_copy(update={"reference": "REV-2"})})
    e = refused(altered, fields=PM.model_copy(update={"reference": "REV-2"}))
    assert e.field == "challenge" and "altered after signing" in e.rule
    decided = a.model_copy(update={"statement": a.statement.model_copy(update={"decision": "reject"})})
    assert refused(decided, fields=PM.model_copy(update={"decision": "reject"})).field == "challenge"


def test_a_replay_on_another_run_or_version_is_refused():
    e = refused(approval(), run="run-2")
    assert e.field == "run_id" and "a replay" in e.rule
    v5 = H.model_copy(update={"candidate_version": "5"})
    e = refused(approval(), h=v5)
    assert e.field == "candidate_version" and "a replay" in e.rule
    # moving the statement to the other run breaks the challenge the passkey signed
    a = approval()
    moved = a.model_copy(update={"statement": a.statement.model_copy(update={"run_id": "run-2"})})
    assert refused(moved, run="run-2").field == "challenge"


def test_client_data_rp_id_and_user_verification_are_checked():
    stmt = statement_for(H, Role.pm, PM, "run-1", NOW)
    a, pk = AUTH["pm-anna"], AUTH["pm-anna"].passkey()
    for kw, field in (
        ({"kind": "webauthn.create"}, "client_data_json.type"),
        ({"origin": "http://evil.example"}, "origin"),
        ({"rp_id": "evil.example"}, "rp_id"),
        ({"user_verified": False}, "user_verified"),
    ):
        with pytest.raises(PasskeyRefused) as e:
            check_assertion(a.get(challenge(stmt), **kw), pk, challenge(stmt), "pm-anna")
        assert e.value.field == field, kw
    garbage = Assertion(credential_id=pk.credential_id, authenticator_data="AA", client_data_json="e30", signature="AA")
    with pytest.raises(PasskeyRefused) as e:
        check_assertion(garbage, pk, challenge(stmt), "pm-anna")
    assert e.value.field == "client_data_json.type"
    with pytest.raises(PasskeyRefused):
        check_assertion(garbage.model_copy(update={"client_data_json": b64url(b"[1]")}), pk, b"x", "pm-anna")


def test_other_statement_fields_time_and_four_eyes_by_passkey():
    assert refused(approval(gate_report_sha256="d" * 64)).field == "gate_report_sha256"
    assert refused(approval(role=Role.risk)).field == "role"
    assert refused(approval(at=NOW - timedelta(hours=25))).field == "signed_at"
    with pytest.raises(ApprovalRefused) as bad:
        check_any(H, Role.pm, PM, "rg-webauthn-v1.bm90IGpzb24", "run-1", NOW)
    assert bad.value.field == "token"
    shared = H.model_copy(update={"passkeys": {**H.passkeys, "risk-carla": H.passkeys["pm-anna"]}})
    given = shared.model_copy(
        update={"pm": Approval(**PM.model_dump(), role=Role.pm, at=NOW, key_id=AUTH["pm-anna"].passkey().key_id)}
    )
    risk = ApprovalFields(approver="risk-carla", reference="REV-2")
    e = refused(approval(h=given, role=Role.risk, fields=risk), h=given, role=Role.risk, fields=risk)
    assert e.field == "credential_id" and "four eyes" in e.rule
