"""Signed grants (pure): the granter's allow-list and pinned key, and the record re-verified."""

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate.policy.grants import GrantRefused, GrantStatement, check_grant, recorded_grant_problem, sign_grant
from releasegate.policy.signatures import public_hex

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
EVA, MALLORY = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
PINNED = {"head-mrm-eva": public_hex(EVA.public_key())}
STATEMENT = GrantStatement(
    kind="gate_exception",
    subject="model:credit:v7",
    granted_by="head-mrm-eva",
    ticket_ref="EXC-7",
    expires_at=NOW + timedelta(days=2),
    terms={"gate": "kpi_delta", "requested_by": "olga"},
    signed_at=NOW,
)


def test_check_grant_names_the_allow_list_the_key_and_the_signature():
    check_grant(sign_grant(STATEMENT, EVA), PINNED, ["head-mrm-eva"], "exceptions")
    with pytest.raises(GrantRefused, match="not on the exceptions allow-list"):
        check_grant(sign_grant(STATEMENT, EVA), PINNED, ["risk-carla"], "exceptions")
    with pytest.raises(GrantRefused, match="no public key"):
        check_grant(sign_grant(STATEMENT, EVA), {}, ["head-mrm-eva"], "exceptions")
    with pytest.raises(GrantRefused, match="pinned key") as e:
        check_grant(sign_grant(STATEMENT, MALLORY), PINNED, ["head-mrm-eva"], "exceptions")
    assert e.value.field == "key"
    forged = sign_grant(STATEMENT, EVA).model_copy(
        update={"statement": STATEMENT.model_copy(update={"ticket_ref": "X"})}
    )
    with pytest.raises(GrantRefused, match="does not verify"):
        check_grant(forged, PINNED, ["head-mrm-eva"], "exceptions")


def test_a_recorded_grant_must_say_what_its_record_says():
    details = {
        "ticket_ref": "EXC-7",
        "gate": "kpi_delta",
        "requested_by": "olga",
        **sign_grant(STATEMENT, EVA).record(),
    }
    expiry = STATEMENT.expires_at
    assert recorded_grant_problem("model:credit:v7", "head-mrm-eva", expiry, details, PINNED) is None
    assert (
        recorded_grant_problem("model:credit:v7", "head-mrm-eva", expiry, {"ticket_ref": "EXC-7"}) == "unsigned grant"
    )
    assert "another subject" in recorded_grant_problem("model:credit:v8", "head-mrm-eva", expiry, details)
    # the record's unsigned terms must be the signed ones (four eyes rests on requested_by)
    assert "terms" in recorded_grant_problem("model:credit:v7", "head-mrm-eva", expiry, details | {"requested_by": "x"})
    assert (
        recorded_grant_problem(
            "model:credit:v7", "head-mrm-eva", expiry, details | {"gate": "kpi_delta", "requested_by": "olga"}
        )
        is None
    )
    assert "expiry" in recorded_grant_problem("model:credit:v7", "head-mrm-eva", expiry + timedelta(days=9), details)
    assert "pinned key" in recorded_grant_problem(
        "model:credit:v7", "head-mrm-eva", expiry, details, {"head-mrm-eva": public_hex(MALLORY.public_key())}
    )
    assert "does not verify" in recorded_grant_problem(
        "model:credit:v7", "head-mrm-eva", expiry, details | {"signature": "00" * 64}
    )
