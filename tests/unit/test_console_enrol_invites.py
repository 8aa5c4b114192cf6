"""The console's enrolment needs an identity first: a session signed in as that name, or an admin's
one-time invitation code for it (checked at both requests, used once). Each refusal is HTTP 403, a
plain sentence, recorded. Over the in-memory fakes (``tests.support.console``)."""

from typing import Any

from releasegate.policy.passkeys import unb64url
from tests.support.console import Rig, rig
from tests.support.passkeys import SoftAuthenticator


def enrol(r: Rig, name: str, code: str | None, key: SoftAuthenticator) -> tuple[Any, Any]:
    r.client.get("/enrol")
    body = {"name": name} | ({"code": code} if code is not None else {})
    options = r.post("/enrol/options", body)
    if options.status_code != 200:
        return options, None
    answer = {"credential": key.create(unb64url(options.json()["challenge"], "c"))}
    return options, r.post("/enrol/verify", answer | ({"code": code} if code is not None else {}))


def refused(r: Rig, response: Any, words: str) -> None:
    assert response.status_code == 403, response.text
    assert words in response.json()["error"]
    last = r.journal.entries[-1]
    assert last["what"] == "enrol" and not last["accepted"] and last["field"] == "code"
    assert words in last["rule"]


def test_an_invitation_code_admits_one_enrolment_and_names_the_invitation():
    r = rig()
    dan = SoftAuthenticator()
    code = r.directory.invite("risk-dan")
    options, made = enrol(r, "risk-dan", code, dan)
    assert made.status_code == 200, made.text
    assert r.directory.proposals == [("risk-dan", dan.passkey())]
    assert r.directory.used == {"invitation-1": "proposal-1"}
    r.client.cookies.clear()
    again, _ = enrol(r, "risk-dan", code, SoftAuthenticator())  # a second use
    refused(r, again, "used already")
    assert len(r.directory.proposals) == 1


def test_enrolling_without_a_session_or_a_code_is_refused():
    r = rig()
    options, _ = enrol(r, "risk-dan", None, SoftAuthenticator())
    refused(r, options, "needs an identity first")
    options, _ = enrol(r, "risk-dan", "  ", SoftAuthenticator())
    refused(r, options, "needs an identity first")
    assert r.directory.proposals == []


def test_a_wrong_an_expired_or_another_names_code_is_refused():
    r = rig()
    r.directory.invite("risk-dan")
    wrong, _ = enrol(r, "risk-dan", "not-a-code", SoftAuthenticator())
    refused(r, wrong, "no invitation has this code")
    carla = r.directory.invite("risk-carla")
    other, _ = enrol(r, "risk-dan", carla, SoftAuthenticator())
    refused(r, other, "for another name")
    late = r.directory.invite("risk-dan", hours=1)
    r.clock.advance(hours=2)
    expired, _ = enrol(r, "risk-dan", late, SoftAuthenticator())
    refused(r, expired, "expired")
    assert r.directory.proposals == []


def test_the_code_is_checked_again_when_the_passkey_comes_back():
    r = rig()
    code = r.directory.invite("risk-dan", hours=1)
    r.clock.advance(minutes=59)
    r.client.get("/enrol")
    options = r.post("/enrol/options", {"name": "risk-dan", "code": code})
    assert options.status_code == 200
    r.clock.advance(minutes=2)  # expired between the two requests (the challenge is still fresh)
    answer = SoftAuthenticator().create(unb64url(options.json()["challenge"], "c"))
    refused(r, r.post("/enrol/verify", {"code": code, "credential": answer}), "expired")
    options = r.post("/enrol/options", {"name": "risk-dan", "code": code})
    refused(r, options, "expired")
    r.client.cookies.clear()
    fresh = r.directory.invite("risk-dan")
    r.client.get("/enrol")
    options = r.post("/enrol/options", {"name": "risk-dan", "code": fresh})
    answer = SoftAuthenticator().create(unb64url(options.json()["challenge"], "c"))
    refused(r, r.post("/enrol/verify", {"credential": answer}), "needs an identity first")  # no code
    assert r.directory.proposals == []


def test_someone_signed_in_adds_a_passkey_for_their_own_name_without_a_code():
    r = rig()
    assert r.sign_in("risk-carla").status_code == 200
    second = SoftAuthenticator()
    options, made = enrol(r, "pm-anna", None, second)  # the session's name wins over the typed one
    assert made.status_code == 200, made.text
    assert r.directory.proposals == [("risk-carla", second.passkey())] and r.directory.used == {}
    page = r.client.get("/enrol")
    assert 'id="code"' not in page.text


def test_the_invitation_link_fills_in_the_name_and_asks_for_the_code():
    r = rig()
    page = r.client.get("/enrol?name=risk-dan")
    assert 'value="risk-dan"' in page.text and 'id="code"' in page.text
