"""The console (FastAPI TestClient over in-memory fakes of its ports, a software authenticator): passkey
sign-in and enrolment, the inbox with its charts, approvals signed with a passkey, and every refusal
recorded and shown as a sentence (no CSRF token, expired session, wrong role, altered statement, other key)."""

from releasegate.console.sessions import COOKIE
from releasegate.policy.passkeys import unb64url
from tests.support.console import rig
from tests.support.passkeys import SoftAuthenticator


def test_healthz_needs_no_sign_in_and_the_inbox_does():
    r = rig()
    assert r.client.get("/healthz").json() == {"status": "ok"}
    inbox = r.client.get("/inbox", follow_redirects=False)
    assert inbox.status_code == 303 and inbox.headers["location"].startswith("/signin")
    anonymous = r.post("/approvals/run-risk", {}, csrf=False)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "Sign in first."
    assert r.journal.entries[-1]["field"] == "session" and r.journal.entries[-1]["actor"] == "<anonymous>"


def test_a_promotion_nobody_eligible_can_approve_says_so():
    from dataclasses import replace

    r = rig()
    pending = r.desk.pending
    r.desk.pending = lambda: [  # type: ignore[method-assign]
        replace(i, no_eligible_approver="no eligible RISK approver for credit v4: risk-carla is an owner")
        for i in pending()
    ]
    r.sign_in("risk-carla")
    assert "Nobody can give this approval: no eligible RISK approver for credit v4" in r.client.get("/inbox").text


def test_sign_in_sets_a_strict_http_only_cookie_records_it_and_shows_the_inbox_with_charts():
    r = rig()
    done = r.sign_in("risk-carla")
    assert done.status_code == 200 and done.json()["next"] == "/inbox"
    cookie = done.headers["set-cookie"].lower()
    assert "frame-ancestors 'none'" in done.headers["content-security-policy"]
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie  # http://localhost
    assert r.journal.entries[-1] | {"rationale": ""} == {
        "what": "signin",
        "actor": "risk-carla",
        "accepted": True,
        "rationale": "",
    }
    page = r.client.get("/inbox").text
    assert "credit v4 awaits RISK_GATE_PASS" in page and "run-pm" not in page  # only what waits for RISK
    assert page.count("<svg") == 3 and "required +2.00%" in page and "income" in page
    assert "limit 0.2000" in page and "#b3261e" in page  # income's PSI 0.25 over the limit, drawn as such
    assert "Requested by <b>ml-engineer</b>" in page and "owner-olga" in page
    assert 'class="approve-form"' in page


def test_sign_in_with_a_key_that_is_not_pinned_is_refused_and_recorded():
    r = rig()
    r.keys["risk-carla"] = SoftAuthenticator()  # her laptop was replaced; the new key is not pinned
    refused = r.sign_in("risk-carla")
    assert refused.status_code == 403 and "not the passkey pinned for 'risk-carla'" in refused.json()["error"]
    assert r.journal.entries[-1]["accepted"] is False and r.journal.entries[-1]["field"] == "credential_id"
    assert r.client.get("/inbox", follow_redirects=False).status_code == 303
    r.client.get("/signin")
    nobody = r.post("/signin/options", {"name": "mallory"})
    assert nobody.status_code == 403 and "No passkey is pinned for 'mallory'" in nobody.json()["error"]


def test_a_post_without_the_csrf_token_is_refused_and_recorded():
    r = rig()
    r.sign_in("risk-carla")
    bare = r.client.post("/approvals/run-risk/statement", json={"reference": "REV-2"})
    assert bare.status_code == 403 and "CSRF" in bare.json()["error"]
    forged = r.client.post("/approvals/run-risk", json={}, headers={"X-CSRF-Token": "guessed"})
    assert forged.status_code == 403
    assert [e["field"] for e in r.journal.entries if not e["accepted"]] == ["csrf_token", "csrf_token"]
    assert r.client.post("/signout", data={}).status_code == 403  # the sign-out form carries it too


def test_an_expired_session_is_refused_and_recorded():
    r = rig()
    r.sign_in("risk-carla")
    r.clock.advance(minutes=16)
    late = r.post("/approvals/run-risk/statement", {"reference": "REV-2"})
    assert late.status_code == 401 and "expired after 15 minutes idle" in late.json()["error"]
    assert r.journal.entries[-1]["field"] == "session" and not r.journal.entries[-1]["accepted"]
    again = r.client.get("/inbox", follow_redirects=False)
    assert again.status_code == 303  # signed out: sign in again
    # activity keeps a session alive
    r.sign_in("risk-carla")
    for _ in range(3):
        r.clock.advance(minutes=10)
        assert r.client.get("/inbox").status_code == 200


def test_a_risk_approval_signed_with_the_passkey_resumes_the_run_with_a_token_the_run_verifies():
    r = rig()
    r.sign_in("risk-carla")
    done = r.approve("run-risk", "risk-carla")
    assert done.status_code == 200, done.text
    assert done.json()["message"].startswith("RISK_GATE_PASS by risk-carla")
    [(run, sent)] = r.desk.submitted
    assert run == "run-risk" and sent["role"] == "risk" and sent["token"].startswith("rg-webauthn-v1.")
    assert sent["approver"] == "risk-carla" and sent["reference"] == "REV-2"


def test_wrong_role_auditor_and_owner_are_refused_as_sentences_and_recorded():
    r = rig()
    r.sign_in("pm-anna")  # a PM cannot act as RISK
    e = r.post("/approvals/run-risk/statement", {"reference": "REV-2"})
    assert e.status_code == 403 and "'pm-anna' is not on the risk allow-list" in e.json()["error"]
    assert r.desk.refusals[-1][0] == "run-risk" and "allow-list" in r.desk.refusals[-1][1]
    r.client.cookies.clear()
    r.sign_in("audit-ida")  # an auditor reads and cannot approve
    page = r.client.get("/inbox").text
    assert "run-pm" in page and "run-risk" in page and "approve-form" not in page and "AUDITOR" in page
    e = r.approve("run-risk", "audit-ida")
    assert e.status_code == 403 and "Auditors read and cannot approve" in e.json()["error"]
    r.client.cookies.clear()
    r.sign_in("owner-olga")  # on the PM list, but an owner of the model
    assert "You cannot approve this promotion: owner-olga is an owner of credit" in r.client.get("/inbox").text
    e = r.approve("run-pm", "owner-olga")
    assert e.status_code == 403 and "independence: 'owner-olga' is an owner of credit" in e.json()["error"]
    assert len(r.desk.refusals) == 3 and not r.desk.submitted


def test_an_altered_statement_and_another_key_are_refused_and_recorded():
    r = rig()
    r.sign_in("risk-carla")
    e = r.approve("run-risk", "risk-carla", alter={"reference": "REV-OTHER"})
    assert e.status_code == 403 and "altered after signing" in e.json()["error"]
    assert e.json()["field"] == "challenge"
    e = r.approve("run-risk", "risk-carla", alter={"run_id": "run-pm"})
    assert e.status_code == 403 and e.json()["field"] == "run_id"  # a replay on another run
    e = r.approve("run-risk", "mallory")  # signed with a key that is not her pinned passkey
    assert e.status_code == 403 and "not the passkey pinned for 'risk-carla'" in e.json()["error"]
    e = r.approve("run-risk", "risk-carla", alter={"approver": "risk-dan"})
    assert e.status_code == 403 and "signed in as 'risk-carla'" in e.json()["error"]
    assert len(r.desk.refusals) == 4 and not r.desk.submitted


def test_enrolment_records_a_proposal_that_takes_effect_only_once_approved():
    r = rig()
    dan = r.keys["risk-dan"] = SoftAuthenticator()
    code = r.directory.invite("risk-dan")  # an admin's one-time invitation (releasegate approvers invite)
    r.client.get("/enrol")
    options = r.post("/enrol/options", {"name": "risk-dan", "code": code})
    assert options.status_code == 200 and options.json()["authenticatorSelection"]["userVerification"] == "required"
    made = r.post("/enrol/verify", {"code": code, "credential": dan.create(unb64url(options.json()["challenge"], "c"))})
    assert made.status_code == 200, made.text
    assert "proposal-1" in made.json()["message"] and "two admins" in made.json()["message"]
    assert r.directory.proposals == [("risk-dan", dan.passkey())]
    r.client.get("/signin")
    assert r.post("/signin/options", {"name": "risk-dan"}).status_code == 403  # not in force yet
    r.directory.approve_all()
    assert r.sign_in("risk-dan").status_code == 200
    # a name on no list, and a registration answered for another challenge
    r.client.cookies.clear()
    r.client.get("/enrol")
    assert r.post("/enrol/options", {"name": "mallory"}).status_code == 403
    carla = r.directory.invite("risk-carla")
    r.post("/enrol/options", {"name": "risk-carla", "code": carla})
    bad = r.post("/enrol/verify", {"code": carla, "credential": SoftAuthenticator().create(b"another challenge")})
    assert bad.status_code == 400 and "not accepted" in bad.json()["error"]
    assert r.post("/enrol/verify", {"credential": {}}).status_code == 400  # no enrolment in progress


def test_a_sign_in_cannot_be_replayed_with_a_copy_of_the_cookie():
    r = rig()
    r.client.get("/signin")
    options = r.post("/signin/options", {"name": "risk-carla"})
    before = dict(r.client.cookies)  # the cookie holding the pending challenge
    answer = {"credential": r.keys["risk-carla"].browser_json(unb64url(options.json()["challenge"], "c"))}
    assert r.post("/signin/verify", answer).status_code == 200
    r.client.cookies.clear()
    for k, v in before.items():
        r.client.cookies.set(k, v)
    again = r.post("/signin/verify", answer)
    assert again.status_code == 400 and again.json()["field"] == "challenge"
    assert r.client.post("/signout", data={}).status_code == 403  # no session, no token: refused


def test_the_session_cookie_cannot_be_forged():
    r = rig()
    r.client.cookies.set(COOKIE, "eyJ1c2VyIjoicmlzay1jYXJsYSJ9.forged")
    assert r.client.get("/inbox", follow_redirects=False).status_code == 303


def test_an_inbox_item_is_the_target_of_the_notices_deep_link():
    r = rig()
    r.sign_in("risk-carla")
    page = r.client.get("/inbox").text
    mine = [i for i in r.desk.pending() if f'data-run="{i.run_id}"' in page]
    assert mine and all(f'<section class="item" id="{i.run_id}"' in page for i in mine)  # /inbox#<run id>
