"""The console's OIDC sign-in against a real OpenID provider process (``oidc-provider-mock``): groups
mapped to roles in the governed approvers config, the allow-list still in force, and every refusal
(no mapped group, a tampered state, a code or an ID token for another client, another issuer, a stale
nonce, an expired token) refused as a sentence and recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from releasegate.console.oidc import OidcRefused, Provider, check_id_token
from releasegate.console_settings import ConsoleOidcSettings
from tests.support.console import Rig, rig
from tests.support.oidc import Idp, provider

USERS = {
    "u-anna": {"preferred_username": "pm-anna", "groups": ["credit-pm", "staff"]},
    "u-carla": {"preferred_username": "risk-carla", "groups": ["credit-pm"]},
    "u-ida": {"preferred_username": "audit-ida", "groups": ["audit"]},
    "u-zed": {"preferred_username": "zed", "groups": ["credit-risk"]},  # mapped group, on no allow-list
    "u-mallory": {"preferred_username": "mallory", "groups": ["staff"]},  # no mapped group
}
GROUPS = {"credit-pm": "pm", "credit-risk": "risk", "audit": "auditor"}


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    with provider(USERS) as p:
        yield p


@pytest.fixture
def r(idp: Idp) -> Rig:
    settings = ConsoleOidcSettings(issuer=idp.issuer, client_id="releasegate-console", client_secret="s3cret")
    return rig(oidc=settings, oidc_groups=GROUPS, now=datetime.now(UTC))


def sign_in(r: Rig, idp: Idp, sub: str, **override: str) -> httpx.Response:
    start = r.client.get("/signin/oidc", follow_redirects=False)
    assert start.status_code == 303, start.text
    answer = idp.authorize(start.headers["location"], sub, **override)
    assert answer.status_code == 302, answer.text
    return r.client.get(answer.headers["location"], follow_redirects=False)


def refusals(r: Rig) -> list[dict[str, Any]]:
    return [e for e in r.journal.entries if e["what"] == "signin" and not e["accepted"]]


def test_the_redirect_carries_state_nonce_and_an_s256_challenge(r: Rig) -> None:
    start = r.client.get("/signin/oidc", follow_redirects=False)
    q = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert q["state"] and q["nonce"] and q["client_id"] == "releasegate-console"
    assert q["redirect_uri"] == "http://localhost:4300/signin/oidc/callback" and "openid" in q["scope"]
    cookie = start.headers["set-cookie"].lower()
    assert "rg_oidc=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_groups_mapped_to_roles_land_on_the_inbox_with_those_roles(r: Rig, idp: Idp) -> None:
    back = sign_in(r, idp, "u-anna")
    assert back.status_code == 200 and 'url=/inbox"' in back.text and "Signed in as pm-anna" in back.text
    inbox = r.client.get("/inbox", follow_redirects=False)
    assert inbox.status_code == 200 and "PM" in inbox.text and "run-pm" in inbox.text
    assert "run-risk" not in inbox.text  # not a RISK approver, and no group maps her to it
    signin = r.journal.entries[-1]
    assert signin["what"] == "signin" and signin["accepted"] and signin["actor"] == "pm-anna"
    assert signin["method"] == "oidc" and signin["roles"] == ["pm"] and signin["issuer"] == idp.issuer


def test_an_auditor_group_reads_every_item(r: Rig, idp: Idp) -> None:
    assert sign_in(r, idp, "u-ida").status_code == 200
    inbox = r.client.get("/inbox").text
    assert "AUDITOR" in inbox and "run-pm" in inbox and "run-risk" in inbox


def test_a_group_role_does_not_bypass_the_allow_list(r: Rig, idp: Idp) -> None:
    assert sign_in(r, idp, "u-zed").status_code == 200  # signed in: credit-risk maps to risk
    inbox = r.client.get("/inbox").text
    assert "run-risk" not in inbox and "run-pm" not in inbox  # but zed is on no allow-list


def test_a_listed_approver_acts_only_in_the_roles_her_groups_give(r: Rig, idp: Idp) -> None:
    assert sign_in(r, idp, "u-carla").status_code == 200  # on the RISK list; her group maps to PM only
    assert "run-risk" not in r.client.get("/inbox").text
    got = r.post("/approvals/run-risk/statement", {"decision": "approve", "reference": "REV-9"})
    assert got.status_code == 403 and got.json()["field"] == "role"
    assert "RISK role" in got.json()["error"] and r.desk.refusals[-1][0] == "run-risk"


def test_a_user_with_no_mapped_group_is_refused_and_recorded(r: Rig, idp: Idp) -> None:
    back = sign_in(r, idp, "u-mallory")
    assert back.status_code == 403 and "Traceback" not in back.text
    assert "none of mallory&#39;s groups (staff) maps to a role" in back.text
    [refusal] = refusals(r)
    assert refusal["actor"] == "mallory" and refusal["field"] == "groups" and refusal["method"] == "oidc"
    assert r.client.get("/inbox", follow_redirects=False).status_code == 303  # not signed in


def test_a_tampered_state_is_refused_and_recorded(r: Rig, idp: Idp) -> None:
    start = r.client.get("/signin/oidc", follow_redirects=False)
    answer = idp.authorize(start.headers["location"], "u-anna")
    parts = urlsplit(answer.headers["location"])
    q = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"state": "forged"}
    back = r.client.get(f"{parts.path}?{urlencode(q)}", follow_redirects=False)
    assert back.status_code == 403 and "state mismatch" in back.text
    assert [e["field"] for e in refusals(r)] == ["state"]
    assert r.client.get("/inbox", follow_redirects=False).status_code == 303


def test_an_answer_without_a_sign_in_started_here_is_refused(r: Rig, idp: Idp) -> None:
    back = r.client.get("/signin/oidc/callback?code=abc&state=xyz", follow_redirects=False)
    assert back.status_code == 403 and "no sign-in with the identity provider is in progress" in back.text
    assert [e["field"] for e in refusals(r)] == ["state"]


def test_the_same_answer_is_taken_once(r: Rig, idp: Idp) -> None:
    start = r.client.get("/signin/oidc", follow_redirects=False)
    back_url = idp.authorize(start.headers["location"], "u-anna").headers["location"]
    assert r.client.get(back_url, follow_redirects=False).status_code == 200
    again = r.client.get(back_url, follow_redirects=False)
    assert again.status_code == 403 and [e["field"] for e in refusals(r)] == ["state"]


def test_a_code_issued_to_another_client_is_refused(r: Rig, idp: Idp) -> None:
    back = sign_in(r, idp, "u-anna", client_id="other-app")
    assert back.status_code == 403 and "did not exchange the code" in back.text
    assert [e["field"] for e in refusals(r)] == ["code"]


def _token_for(idp: Idp, client_id: str, nonce: str, sub: str = "u-anna") -> dict[str, Any]:
    """An ID token the real provider issues to ``client_id`` (another application), its access token."""
    query = {
        "client_id": client_id,
        "redirect_uri": "http://localhost:9999/cb",
        "response_type": "code",
        "scope": "openid profile",
        "state": "s",
        "nonce": nonce,
    }
    answer = idp.authorize(f"{idp.issuer}/oauth2/authorize?{urlencode(query)}", sub)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    token = httpx.post(
        f"{idp.issuer}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": query["redirect_uri"]},
        auth=(client_id, "x"),
        timeout=10,
    )
    token.raise_for_status()
    return dict(token.json())


def test_an_id_token_for_another_audience_or_issuer_is_refused(idp: Idp) -> None:
    keys = Provider(ConsoleOidcSettings(issuer=idp.issuer)).keys()
    token = _token_for(idp, "other-app", nonce="n-1")
    now = datetime.now(UTC)
    check = {"keys": keys, "nonce": "n-1", "access_token": token["access_token"], "now": now}
    ok = check_id_token(token["id_token"], issuer=idp.issuer, client_id="other-app", **check)  # type: ignore[arg-type]
    assert ok["preferred_username"] == "pm-anna" and ok["groups"] == ["credit-pm", "staff"]
    cases = {
        "aud": {"issuer": idp.issuer, "client_id": "releasegate-console"},
        "iss": {"issuer": idp.issuer.replace("127.0.0.1", "localhost"), "client_id": "other-app"},
    }
    for field, where in cases.items():
        with pytest.raises(OidcRefused) as refused:
            check_id_token(token["id_token"], **where, **check)  # type: ignore[arg-type]
        assert refused.value.field == field
    with pytest.raises(OidcRefused, match="nonce is not this sign-in's"):
        check_id_token(token["id_token"], issuer=idp.issuer, client_id="other-app", **(check | {"nonce": "n-2"}))  # type: ignore[arg-type]
    with pytest.raises(OidcRefused, match="expired"):
        check_id_token(
            token["id_token"], issuer=idp.issuer, client_id="other-app", **(check | {"now": now + timedelta(hours=2)})
        )  # type: ignore[arg-type]
    head, body, sig = token["id_token"].split(".")
    with pytest.raises(OidcRefused) as refused:
        check_id_token(f"{head}.{body}.{sig[:-4]}AAAA", issuer=idp.issuer, client_id="other-app", **check)  # type: ignore[arg-type]
    assert refused.value.field == "signature"


def test_an_issuer_that_does_not_answer_is_refused_and_recorded(idp: Idp) -> None:
    settings = ConsoleOidcSettings(issuer=f"{idp.issuer}/tenant-a")  # no discovery document there
    r = rig(oidc=settings, oidc_groups=GROUPS, now=datetime.now(UTC))
    start = r.client.get("/signin/oidc", follow_redirects=False)
    assert start.status_code == 502 and "did not answer" in start.text and "Traceback" not in start.text
    assert [e["field"] for e in refusals(r)] == ["issuer"]


def test_an_oidc_user_enrols_a_passkey_without_an_invitation(r: Rig, idp: Idp) -> None:
    from releasegate.policy.passkeys import unb64url
    from tests.support.passkeys import SoftAuthenticator

    assert sign_in(r, idp, "u-anna").status_code == 200
    r.client.get("/enrol")
    options = r.post("/enrol/options", {"name": "risk-carla"})  # the signed-in name is the one enrolled
    assert options.status_code == 200, options.text
    key = SoftAuthenticator()
    made = r.post("/enrol/verify", {"credential": key.create(unb64url(options.json()["challenge"], "c"))})
    assert made.status_code == 200, made.text
    assert r.directory.proposals == [("pm-anna", key.passkey())] and r.directory.used == {}
