"""`releasegate audit verify` on the real sealed log: its first line is the verdict, its exit code agrees
with it, a refused grant is verified as a refusal. (`decision_index` checked against the chain, on SQLite and
PostgreSQL: tests/integration/test_audit_index.py.)"""

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from releasegate.cli import app
from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
from tests.support.records import deferral, drop_every_guard, sql

runner = CliRunner()


def _lines(done) -> list[str]:
    return [line for line in done.output.splitlines() if line.strip()]


# ------------------------------------------------------------------------ refused exception grants
def test_a_refused_exception_grant_leaves_the_log_verifiable(rg_home, wide):
    """An expiry in the past is refused after the grant was signed: the refusal is recorded, and the
    untampered log still verifies (it used to fail forever on the refusal's signature)."""
    from releasegate import bootstrap

    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    args = ["exception", "grant", "credit", "2", "--ticket", "EXC-1", "--rationale", "r", "--expires", past]
    refused = runner.invoke(app, [*args, "--by", "head-mrm-eva", "--requested-by", "olga"])
    assert refused.exit_code == 1, refused.output
    assert "refused: exception_expiry" in refused.output and "Traceback" not in refused.output
    [rec] = bootstrap.decision_log().query(kind="override")
    assert rec.decision_outcome is DecisionOutcome.reject and rec.details["refusal"].startswith("exception_expiry")
    assert "signature" not in rec.details  # a refusal grants nothing: it carries no grant to verify

    done = runner.invoke(app, ["audit", "verify"])
    assert done.exit_code == 0, done.output
    # the refusal, and the approvers config the grant check trusted once (no infra up ran here)
    assert _lines(done)[0].startswith(f"decision log intact: {bootstrap.decision_log().count()} records")
    assert "1 refused grants" in done.output


def test_a_refusal_recorded_with_a_signed_grant_is_verified_as_a_refusal(rg_home, wide):
    """Logs written before the fix hold refusals that carry the signed grant but no exception_expiry:
    they grant nothing, and audit verify says so instead of failing on them."""
    from releasegate import bootstrap
    from releasegate.policy.grants import GrantStatement
    from releasegate.services.grants import signed_grant

    now = datetime.now(UTC)
    signed = signed_grant(
        GrantStatement(
            kind="gate_exception",
            subject="model:credit:v2",
            granted_by="head-mrm-eva",
            ticket_ref="EXC-1",
            expires_at=now - timedelta(hours=1),
            terms={"gate": "kpi_delta", "requested_by": "olga"},
            signed_at=now,
        ),
        None,
        "exceptions",
        app=bootstrap.app(),
    )
    bootstrap.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.override,
            decision_outcome=DecisionOutcome.reject,
            decision_rationale="exception refused: exception_expiry: must be in the future",
            subject="model:credit:v2",
            actor="head-mrm-eva",
            details={"ticket_ref": "EXC-1", "gate": "kpi_delta", "requested_by": "olga", "refusal": "x", **signed},
        )
    )
    done = runner.invoke(app, ["audit", "verify"])
    assert done.exit_code == 0, done.output
    assert "grant signature broken" not in done.output and "1 refused grants" in done.output


# ------------------------------------------------------------------------------- verdict first
def test_a_failing_verify_says_so_first_and_never_says_intact(rg_home, wide):
    """A broken grant signature: the first line is the finding, nothing says "intact", exit 1."""
    from releasegate import bootstrap

    log = bootstrap.decision_log()
    log.append(deferral(1))
    log.append(
        NewDecision(
            decision_kind=DecisionKind.override,
            decision_outcome=DecisionOutcome.override,
            decision_rationale="r",
            subject="model:credit:v2",
            actor="head-mrm-eva",
            exception_expiry=datetime.now(UTC) + timedelta(days=1),
            details={"ticket_ref": "EXC-1", "gate": "kpi_delta", "requested_by": "olga", "signature": "00" * 64},
        )
    )
    done = runner.invoke(app, ["audit", "verify"])
    assert done.exit_code == 1
    first = _lines(done)[0]
    assert first.startswith("decision log NOT verified:") and "grant signature broken" in first
    assert "decision log intact" not in done.output and "valid service seal" not in done.stdout


def test_a_tampered_chain_is_the_first_line(rg_home, wide):
    from releasegate import bootstrap

    log = bootstrap.decision_log()
    ids = [log.append(deferral(i)).decision_id for i in range(3)]
    drop_every_guard(log)
    sql(log, "UPDATE decisions SET subject = 'flow_run:other' WHERE seq = 2")
    done = runner.invoke(app, ["audit", "verify"])
    assert done.exit_code == 1
    first = _lines(done)[0]
    assert first.startswith("decision log NOT verified: decision log tampered: record #2") and ids[1] in first
    assert "decision log intact" not in done.output
