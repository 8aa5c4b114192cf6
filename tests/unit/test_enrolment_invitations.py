"""Enrolment invitations on the real sealed decision log (SQLite): an admin signs a one-time code for a
name on a list (only its hash is recorded); the code admits one enrolment for that name until it expires,
while the admin's signature is good against the config in force. The CLI's refusals are one line, exit 2,
recorded."""

import pytest
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.clock import FixedClock
from releasegate.policy.approvers import ConfigRefused
from tests.support.passkeys import SoftAuthenticator


@pytest.fixture
def governed(rg_home):
    from releasegate.adapters.config import from_file
    from releasegate.services.approvers import trust_first

    trust_first(bootstrap.app(), from_file("approvers"), "releasegate:infra-up", "file")
    return rg_home


def invitations(status: str = "invited") -> list:
    recs, _ = bootstrap.decision_log().trusted(kind="approvers_config", subject="approvers-config")
    return [r for r in recs if r.details.get("status") == status]


def test_an_invitation_admits_one_enrolment_naming_it(governed):
    from releasegate.services.approvers import propose_enrolment
    from releasegate.services.invitations import check_invitation, code_sha256, invite

    app = bootstrap.app()
    did, code, expires = invite(app, "risk-carla", "head-mrm-eva", 24)
    [rec] = invitations()
    assert rec.decision_id == did and rec.actor == "head-mrm-eva"
    d = rec.details
    assert d["name"] == "risk-carla" and d["admin"] == "head-mrm-eva" and d["expires_at"] == expires.isoformat()
    assert d["code_sha256"] == code_sha256(code) and code not in str(rec.details) + rec.decision_rationale
    assert d["signature"]["statement"]["action"] == "invite"
    assert check_invitation(app, "risk-carla", code) == did
    with pytest.raises(ConfigRefused, match="another name"):
        check_invitation(app, "pm-anna", code)
    with pytest.raises(ConfigRefused, match="no invitation has this code"):
        check_invitation(app, "risk-carla", code + "x")
    pid, _ = propose_enrolment("risk-carla", SoftAuthenticator().passkey(), "console:risk-carla", app, did)
    [proposal] = invitations("proposed")
    assert proposal.decision_id == pid and proposal.details["invitation_decision_id"] == did
    with pytest.raises(ConfigRefused, match="used already"):
        check_invitation(app, "risk-carla", code)


def test_an_invitation_expires(governed):
    import dataclasses

    from releasegate.services.invitations import check_invitation, invite

    app = bootstrap.app()
    _, code, expires = invite(app, "pm-anna", "cro-omar", 1)
    later = dataclasses.replace(app, clock=FixedClock(expires))
    with pytest.raises(ConfigRefused, match="expired"):
        check_invitation(later, "pm-anna", code)


def test_an_invitation_signed_by_an_admin_no_longer_in_force_is_refused(governed):
    from releasegate.services.invitations import check_invitation, invite

    app = bootstrap.app()
    _, code, _ = invite(app, "pm-anna", "cro-omar", 24)
    [rec] = invitations()
    sig = rec.details["signature"]
    assert sig["statement"]["admin"] == "cro-omar"
    # the config in force without omar as admin: his invitation's signature is no longer good
    from releasegate.services import invitations as inv

    current = inv.history(app, "console")[-1].config
    problem = inv._signature_problem(
        sig, current.model_copy(update={"admins": ["head-mrm-eva"]}), rec.details["digest"]
    )
    assert problem is not None and problem.field == "by"
    assert check_invitation(app, "pm-anna", code) == rec.decision_id  # still good against the config in force


def test_the_cli_invites_and_refuses_in_one_recorded_line(governed, wide):
    from releasegate.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["approvers", "invite", "risk-carla", "--by", "head-mrm-eva", "--hours", "48"])
    assert done.exit_code == 0, done.output
    code = done.output.split("out of band): ")[1].split()[0]
    assert "/enrol?name=risk-carla" in done.output and len(code) >= 20
    from releasegate.services.invitations import check_invitation

    assert check_invitation(bootstrap.app(), "risk-carla", code) == invitations()[0].decision_id
    for args, field in [
        (["mallory", "--by", "head-mrm-eva"], "name"),
        (["risk-carla", "--by", "pm-anna"], "by"),
        (["risk-carla", "--by", "head-mrm-eva", "--key", str(governed / "missing.pem")], "key"),
    ]:
        done = runner.invoke(app, ["approvers", "invite", *args])
        lines = [line for line in done.output.splitlines() if line.strip()]
        assert done.exit_code == 2 and len(lines) == 1, done.output
        assert lines[0].startswith(f"refused: {field}:"), done.output
        assert "Traceback" not in done.output
    shown = runner.invoke(app, ["approvers", "show"])
    assert f"invitation {invitations()[0].decision_id} for risk-carla by head-mrm-eva: until" in shown.output
    refused = invitations("refused")
    assert [r.details["field"] for r in refused] == ["name", "by", "key"]
    assert len(invitations()) == 1
