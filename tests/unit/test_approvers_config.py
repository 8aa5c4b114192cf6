"""The governed approvers config's rules (``policy.approvers``) and approver independence
(``policy.handshake``): pure, with real Ed25519 keys."""

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate.policy.approvers import (
    ApproverConfig,
    ConfigStatement,
    admins_needed,
    canonical,
    change_problem,
    config_digest,
    differences,
    sign_config,
)
from releasegate.policy.handshake import (
    ApprovalFields,
    ApprovalRefused,
    Handshake,
    Role,
    check_approval,
    ineligible,
    no_eligible_approver,
)
from releasegate.policy.signatures import public_hex

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
KEYS = {n: Ed25519PrivateKey.generate() for n in ("eva", "omar", "pm-anna", "pm-ben", "risk-carla", "mallory")}


def pub(name: str) -> str:
    return public_hex(KEYS[name].public_key())


def config(**kw) -> ApproverConfig:
    base = dict(
        pm=["pm-anna", "pm-ben"],
        risk=["risk-carla"],
        admins=["eva", "omar"],
        keys={n: pub(n) for n in ("eva", "omar", "pm-anna", "pm-ben", "risk-carla")},
    )
    return ApproverConfig(**(base | kw))


def sig(current: ApproverConfig, proposed: ApproverConfig, admin: str, key_of: str | None = None, **over):
    statement = ConfigStatement(
        action="propose",
        digest=config_digest(proposed),
        previous_digest=config_digest(current),
        admin=admin,
        signed_at=NOW,
    )
    if over:
        statement = statement.model_copy(update=over)
    return sign_config(statement, KEYS[key_of or admin]).record()


def test_digest_ignores_key_case_and_differences_name_the_fields():
    a = config()
    upper = config(keys={k: v.upper() for k, v in a.keys.items()})
    assert config_digest(a) == config_digest(upper)
    b = config(pm=["pm-anna", "mallory"], keys=a.keys | {"pm-anna": pub("mallory"), "mallory": pub("mallory")})
    assert differences(a, b) == ["pm +mallory -pm-ben", "keys.mallory added", "keys.pm-anna replaced"]


def test_an_allow_list_change_needs_one_admin_a_key_change_or_new_admin_two():
    a = config()
    lists = config(risk=["risk-carla", "risk-dan"])
    rekey = config(keys=a.keys | {"pm-anna": pub("mallory")})
    new_admin = config(admins=["eva", "omar", "pm-ben"])
    assert (admins_needed(a, lists), admins_needed(a, rekey), admins_needed(a, new_admin)) == (1, 2, 2)
    assert change_problem(a, lists, [sig(a, lists, "eva")]) is None
    assert "needs 2 different admins" in str(change_problem(a, rekey, [sig(a, rekey, "eva")]))
    assert "needs 2 different admins" in str(change_problem(a, rekey, [sig(a, rekey, "eva")] * 2))
    assert change_problem(a, rekey, [sig(a, rekey, "eva"), sig(a, rekey, "omar")]) is None


def test_only_admins_of_the_config_in_force_sign_with_the_key_it_pins_over_this_change():
    a = config()
    lists = config(risk=["risk-carla", "risk-dan"])
    assert "not an admin" in str(change_problem(a, lists, [sig(a, lists, "pm-anna")]))
    # an admin's name with another key (one the proposal itself would pin) proves nothing
    assert "not admin 'eva''s pinned key" in str(change_problem(a, lists, [sig(a, lists, "eva", key_of="mallory")]))
    # signed for another proposal, or against a config no longer in force: not replayable
    other = config(pm=["pm-anna"])
    assert "digest" in str(change_problem(a, lists, [sig(a, other, "eva")]))
    assert "previous_digest" in str(change_problem(a, lists, [sig(other, lists, "eva")]))
    # altered after signing
    forged = sig(a, lists, "eva") | {"signature": "0" * 128}
    assert "signature" in str(change_problem(a, lists, [forged]))


def handshake(**kw) -> Handshake:
    c = config()
    base = dict(
        model="credit",
        candidate_version="7",
        requested_by="registry-event",
        tech_report_ref="artifact:x",
        tech_pass=True,
        allow_lists=c.allow_lists(),
        keys=c.keys,
    )
    return Handshake(**(base | kw))


def fields(name: str) -> ApprovalFields:
    return ApprovalFields(approver=name, reference="REV-1")


def test_an_owner_or_whoever_staged_the_candidate_may_not_approve():
    h = handshake(owners=["pm-ben"], staged_by={"pm-anna": "MLflow user of the version"})
    with pytest.raises(ApprovalRefused, match="is an owner of credit"):
        check_approval(h, Role.pm, fields("pm-ben"))
    with pytest.raises(ApprovalRefused, match="staged the candidate"):
        check_approval(h, Role.pm, fields("pm-anna"))
    # the placeholder requester is no one: it neither blocks nor stands for the person who staged it
    check_approval(handshake(), Role.pm, fields("pm-anna"))


def test_no_eligible_approver_names_each_listed_person_and_why():
    h = handshake(owners=["pm-ben"], staged_by={"pm-anna": "submit_candidate caller"})
    assert ineligible(h, Role.pm) == {
        "pm-anna": "staged the candidate (submit_candidate caller)",
        "pm-ben": "is an owner of credit (models[credit].owners)",
    }
    reason = no_eligible_approver(h, Role.pm)
    assert reason is not None and reason.startswith("no eligible PM approver for credit v7: pm-anna staged")
    assert no_eligible_approver(h, Role.risk) is None
    # a listed name without a pinned key cannot sign either
    unpinned = handshake(keys={k: v for k, v in config().keys.items() if k != "risk-carla"})
    assert "risk-carla has no pinned key" in str(no_eligible_approver(unpinned, Role.risk))
    assert no_eligible_approver(handshake(allow_lists={Role.pm: []}), Role.pm) is not None


def test_emails_left_out_of_the_digest_while_empty_and_named_when_changed():
    base = ApproverConfig(pm=["pm-anna"], risk=["risk-carla"])
    assert "emails" not in canonical(base)
    with_mail = base.model_copy(update={"emails": {"pm-anna": "anna@bank.example"}})
    assert config_digest(with_mail) != config_digest(base)
    assert differences(base, with_mail) == ["emails.pm-anna added"]


@pytest.mark.parametrize("address", ["anna", "anna@bank", "a b@bank.example", "anna@bank.example\r\nBcc: x@y.z"])
def test_an_email_that_is_not_an_address_is_refused_naming_it(address):
    with pytest.raises(ValueError, match="emails.pm-anna"):
        ApproverConfig(pm=["pm-anna"], emails={"pm-anna": address})
