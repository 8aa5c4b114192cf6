"""Signed approvals (pure): what a token binds and every way a token is refused, naming field and rule."""

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate.policy.handshake import Approval, ApprovalFields, ApprovalRefused, Handshake, Role
from releasegate.policy.signatures import (
    SignedApproval,
    check_signed,
    fields_from_token,
    public_hex,
    recorded_signature_problem,
    sign,
    statement_for,
)

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
KEYS = {n: Ed25519PrivateKey.generate() for n in ("pm-anna", "risk-carla", "mallory")}
H = Handshake(
    model="credit",
    candidate_version="4",
    requested_by="ml-engineer",
    tech_report_ref="artifact:r",
    tech_pass=True,
    candidate_sha256="a" * 64,
    gate_report_sha256="c" * 64,
    allow_lists={Role.pm: ["pm-anna"], Role.risk: ["risk-carla"]},
    keys={n: public_hex(k.public_key()) for n, k in KEYS.items() if n != "mallory"},
)
PM = ApprovalFields(approver="pm-anna", reference="REV-1")


def token(h=H, role=Role.pm, fields=PM, run="run-1", at=NOW, key="pm-anna", **override) -> str:
    stmt = statement_for(h, role, fields, run, at).model_copy(update=override)
    return sign(stmt, KEYS[key]).token()


def refused(tok: str, h=H, role=Role.pm, fields=PM, run="run-1", now=NOW) -> ApprovalRefused:
    with pytest.raises(ApprovalRefused) as e:
        check_signed(h, role, fields, tok, run, now)
    return e.value


def test_a_valid_token_is_accepted_and_keeps_what_an_auditor_re_verifies():
    signed = check_signed(H, Role.pm, PM, token(), "run-1", NOW + timedelta(hours=1))
    assert signed.statement.gate_report_sha256 == "c" * 64 and signed.verifies()
    record = signed.record() | {"role": "pm", "approver": "pm-anna", "decision": "approve"}
    record |= {"model_name": "credit", "candidate_version": "4", "gate_report_sha256": "c" * 64}
    assert recorded_signature_problem("promotion:run-1", record) is None
    assert "signature does not verify" in recorded_signature_problem(
        "promotion:run-1", record | {"signature": "00" * 64}
    )
    assert "approver" in recorded_signature_problem("promotion:run-1", record | {"approver": "pm-ben"})
    assert fields_from_token(token()) == {
        "role": "pm",
        "approver": "pm-anna",
        "decision": "approve",
        "reference": "REV-1",
    }
    assert SignedApproval.from_record(record) == signed


def test_each_broken_token_is_refused_naming_the_field():
    assert refused("").field == "token" and "releasegate approve" in refused("").rule
    assert refused("hello").field == "token"
    import base64
    import json

    raw = json.loads(base64.urlsafe_b64decode(token().split(".", 1)[1] + "=="))
    for bad in ({"public_key": "zz"}, {"signature": "not hex"}):  # a hand-made token: refused, not a crash
        forged = "rg-approval-v1." + base64.urlsafe_b64encode(json.dumps(raw | bad).encode()).decode()
        assert refused(forged).field == "token"
    assert refused(token()[:-10]).field == "token"  # cut
    assert "pinned key" in refused(token(key="mallory")).rule  # pm-anna's name, mallory's key
    e = refused(token(gate_report_sha256="d" * 64))
    assert e.field == "gate_report_sha256" and "dddddddddddddddd" in e.rule
    e = refused(token(run="run-2"))
    assert e.field == "run_id" and "a replay" in e.rule
    assert refused(token(decision="reject")).field == "decision"
    assert refused(token(candidate_version="5")).field == "candidate_version"
    assert refused(token(role=Role.risk)).field == "role"
    assert refused(token(at=NOW - timedelta(hours=25))).field == "signed_at"
    assert refused(token(at=NOW + timedelta(hours=1))).field == "signed_at"
    no_key = H.model_copy(update={"keys": {}})
    assert refused(token(), h=no_key).field == "approver" and "keys init" in refused(token(), h=no_key).rule
    body = SignedApproval.model_validate_json(
        __import__("base64").urlsafe_b64decode(token().split(".", 1)[1] + "==")
    ).model_copy(
        update={"statement": statement_for(H, Role.pm, PM, "run-1", NOW).model_copy(update={"reference": "X"})}
    )
    e = refused(body.token(), fields=PM.model_copy(update={"reference": "X"}))
    assert e.field == "token" and "does not verify" in e.rule  # altered after signing


def test_four_eyes_compares_keys_not_names():
    shared = H.model_copy(update={"keys": {**H.keys, "risk-carla": H.keys["pm-anna"]}})
    pm_signed = check_signed(shared, Role.pm, PM, token(h=shared), "run-1", NOW)
    given = shared.model_copy(update={"pm": Approval(**PM.model_dump(), role=Role.pm, at=NOW, key_id=pm_signed.key_id)})
    risk = ApprovalFields(approver="risk-carla", reference="REV-2")
    e = refused(token(h=given, role=Role.risk, fields=risk, key="pm-anna"), h=given, role=Role.risk, fields=risk)
    assert e.field == "token" and "four eyes: the key" in e.rule and "PM approval" in e.rule


def naive_token(at: datetime, key: str = "pm-anna", run: str = "run-1") -> str:
    """A token signed over a statement whose ``signed_at`` has no UTC offset (another tool, or a forger,
    wrote it): the signature is valid, the time is not."""
    from releasegate.policy.signatures import ApprovalStatement

    good = statement_for(H, Role.pm, PM, run, NOW)
    naive = ApprovalStatement.model_construct(**(good.model_dump() | {"signed_at": at}))
    return sign(naive, KEYS[key]).token()


def test_a_signed_at_without_a_utc_offset_is_refused_when_the_token_is_read_naming_the_field():
    """A naive ``signed_at`` was compared with an aware ``now`` and raised TypeError, which crashed the
    waiting promotion; it is refused at parse, naming the field."""
    tok = naive_token(NOW.replace(tzinfo=None))
    e = refused(tok)
    assert e.field == "signed_at" and "UTC offset" in e.rule and "releasegate approve" in e.rule
    with pytest.raises(ApprovalRefused) as read:
        fields_from_token(tok)  # the UI path reads the token before anything else
    assert read.value.field == "signed_at"
    # an offset other than UTC is a time, not a guess: accepted
    from datetime import timezone

    assert check_signed(H, Role.pm, PM, token(at=NOW.astimezone(timezone(timedelta(hours=2)))), "run-1", NOW)


def test_keys_init_makes_a_private_key_0600_prints_the_public_key_and_never_overwrites(tmp_path):
    from typer.testing import CliRunner

    from releasegate.cli import app
    from releasegate.store.keys import key_path, load_key

    runner = CliRunner()
    done = runner.invoke(app, ["keys", "init", "--name", "pm-anna", "--dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    path = key_path(tmp_path, "pm-anna")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert f"pm-anna: {public_hex(load_key(path).public_key())}" in done.output
    again = runner.invoke(app, ["keys", "init", "--name", "pm-anna", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "never overwritten" in " ".join(again.output.split())
    bad = runner.invoke(app, ["keys", "init", "--name", "../evil", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "name" in bad.output
    path.chmod(0o644)
    shown = runner.invoke(app, ["keys", "show", "--name", "pm-anna", "--dir", str(tmp_path)])
    assert shown.exit_code == 2 and "chmod 600" in " ".join(shown.output.split())
