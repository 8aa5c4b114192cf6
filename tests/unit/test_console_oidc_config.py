"""OIDC sign-in's governed side: ``oidc_groups`` in the approvers config (left out of the canonical form
while empty, validated, a one-admin change), the roles a group gives narrowed by the allow-lists, and
the console without an identity provider configured."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from releasegate.console.oidc import OidcRefused, identity
from releasegate.console_settings import ConsoleOidcSettings
from releasegate.policy.approvers import ApproverConfig, admins_needed, canonical, config_digest, differences
from tests.support.console import rig

BASE = ApproverConfig(pm=["anna"], risk=["carla"], auditors=["ida"], admins=["eva"])


def test_an_empty_mapping_leaves_the_digest_as_it_was() -> None:
    assert "oidc_groups" not in canonical(BASE)
    mapped = BASE.model_copy(update={"oidc_groups": {"credit-pm": "pm"}})
    assert canonical(mapped)["oidc_groups"] == {"credit-pm": "pm"}
    assert config_digest(mapped) != config_digest(BASE)


def test_a_mapping_change_is_named_and_takes_one_admin() -> None:
    mapped = ApproverConfig.model_validate({**BASE.model_dump(), "oidc_groups": {"credit-risk": "risk"}})
    assert differences(BASE, mapped) == ["oidc_groups.credit-risk added"]
    moved = mapped.model_copy(update={"oidc_groups": {"credit-risk": "pm"}})
    assert differences(mapped, moved) == ["oidc_groups.credit-risk risk -> pm"]
    assert admins_needed(BASE, mapped) == 1


def test_a_group_maps_to_a_known_role_only() -> None:
    with pytest.raises(ValidationError):
        ApproverConfig.model_validate({"oidc_groups": {"staff": "superuser"}})


def test_groups_narrow_the_roles_the_lists_give() -> None:
    assert BASE.granted("carla") == {"risk"}
    assert BASE.granted("carla", ["risk", "pm"]) == {"risk"}  # a group does not add pm
    assert BASE.granted("carla", ["pm"]) == set()
    assert BASE.granted("ida", ["auditor"]) == {"auditor"} and BASE.granted("zed", ["risk"]) == set()


def test_identity_reads_the_configured_claims() -> None:
    config = BASE.model_copy(update={"oidc_groups": {"g-risk": "risk", "g-audit": "auditor"}})
    s = ConsoleOidcSettings(issuer="https://idp", username_claim="email", groups_claim="roles")
    assert identity({"email": "carla", "roles": ["g-risk", "g-audit", "x"]}, s, config) == (
        "carla",
        ["auditor", "risk"],
    )
    assert identity({"email": "carla", "roles": "g-risk"}, s, config) == ("carla", ["risk"])
    with pytest.raises(OidcRefused, match="no user name in the 'email' claim"):
        identity({"roles": ["g-risk"]}, s, config)
    with pytest.raises(OidcRefused, match=r"carla's groups \(none\)"):
        identity({"email": "carla"}, s, config)


def test_without_an_identity_provider_the_oidc_routes_say_so() -> None:
    r = rig()
    assert "signin-oidc" not in r.client.get("/signin").text
    got = r.client.get("/signin/oidc", follow_redirects=False)
    assert got.status_code == 404 and "not configured" in got.text and "Traceback" not in got.text


def test_with_an_identity_provider_the_sign_in_page_offers_it() -> None:
    r = rig(oidc=ConsoleOidcSettings(issuer="https://idp.example"))
    assert 'href="/signin/oidc"' in r.client.get("/signin").text
