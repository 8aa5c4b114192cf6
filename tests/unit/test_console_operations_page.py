"""The console's operations page over fakes of its port: deferrals against the 30/60-minute SLA, gate
failures acknowledged from the page (as the signed-in name, with the CSRF token), incidents open and
closed; who may read it, and every refusal recorded."""

from datetime import timedelta

import pytest

from releasegate.console_ports import GateFailureView, IncidentView
from tests.support.console import NOW
from tests.support.console_ops import deferral, form_csrf, ops_rig


def failure(did: str, minutes: int, acknowledged: bool = False, incident: bool = False) -> GateFailureView:
    return GateFailureView(
        decision_id=did,
        at=NOW - timedelta(minutes=minutes),
        model_name="credit",
        candidate_version="4",
        outcome="hold",
        rationale="kpi_delta below the required +2%",
        acknowledged=acknowledged,
        incident=incident,
        waited_minutes=minutes,
    )


@pytest.fixture
def r():
    r = ops_rig()
    r.ops.open_deferrals = [
        deferral("run-ok", 12),
        deferral("run-alert", 41),
        deferral("run-late", 75, "WINDOW", False),
    ]
    r.ops.failures = [failure("gf-new", 10), failure("gf-old", 45, incident=True), failure("gf-done", 90, True)]
    r.ops.recorded = [
        IncidentView("inc-storm", NOW - timedelta(hours=2), "deferral_storm", "P1", "queue:backfill", "storm", "open"),
        IncidentView(
            "inc-gf",
            NOW - timedelta(hours=5),
            "gate_failure_unacknowledged",
            "P1",
            "promotion:x",
            "not acknowledged for 31 min",
            "closed",
            NOW - timedelta(hours=4),
            "ack-9",
        ),
    ]
    return r


def test_the_page_shows_each_deferral_against_the_sla_the_failures_and_the_incidents(r):
    r.sign_in("oncall-otto")
    page = r.client.get("/operations")
    assert page.status_code == 200
    html = page.text
    assert 'href="/operations"' in html and 'href="/audit"' in html  # the nav
    ok, alert, late = (
        html.split(f'data-run="{run}"')[1].split("</tr>")[0] for run in ("run-ok", "run-alert", "run-late")
    )
    assert 'class="badge ok"' in ok and "12 min of 30/60" in ok and "CAPACITY_LIMIT" in ok
    assert 'class="badge alert"' in alert and "41 min of 30/60" in alert
    assert 'class="badge incident"' in late and "not predicted" in late and "WINDOW" in late
    assert "08:09:00" in ok and "08:05:00" in ok  # predicted start, next evaluation
    assert '<rect x="0" y="2" width="32.0"' in ok  # 12 of 60 minutes: a fifth of the bar
    assert '<rect x="0" y="2" width="160.0"' in late  # past the incident SLA: full
    assert "Gate failures (2 to acknowledge)" in html
    assert html.count('class="ack-form"') == 2 and 'action="/operations/gate-failures/gf-done/ack"' not in html
    assert "P1 incident open" in html.split('id="gf-gf-old"')[1].split("</tr>")[0]
    assert "Incidents open (1)" in html and "Incidents closed (1)" in html and "ack-9" in html


@pytest.mark.parametrize("who", ["oncall-otto", "risk-carla", "eva", "audit-ida"])
def test_on_call_risk_admins_and_auditors_read_it(r, who):
    r.sign_in(who)
    assert r.client.get("/operations").status_code == 200


@pytest.mark.parametrize("who", ["pm-anna", "comp-chris"])
def test_anybody_else_is_refused_and_the_refusal_recorded(r, who):
    r.sign_in(who)
    page = r.client.get("/operations")
    assert page.status_code == 403 and "The operations page is for on-call, Risk, admins and auditors" in page.text
    assert r.journal.entries[-1] == r.journal.entries[-1] | {"accepted": False, "field": "role", "actor": who}


def test_the_page_needs_a_sign_in():
    r = ops_rig()
    page = r.client.get("/operations", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/signin")


def test_a_gate_failure_is_acknowledged_from_the_page_as_the_signed_in_name(r):
    r.sign_in("oncall-otto")
    token = form_csrf(r.client.get("/operations").text)
    done = r.client.post(
        "/operations/gate-failures/gf-new/ack",
        data={"csrf_token": token, "note": "retrain, TICKET-7"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/operations?acked=gf-new#gate-failures"
    assert r.ops.acks == [("gf-new", "oncall-otto", "retrain, TICKET-7")]
    after = r.client.get(done.headers["location"]).text
    assert (
        "Gate failure gf-new acknowledged (decision recorded)." in after and "Gate failures (1 to acknowledge)" in after
    )


def test_an_ack_without_the_csrf_token_is_refused_and_recorded(r):
    r.sign_in("oncall-otto")
    r.client.get("/operations")
    refused = r.client.post("/operations/gate-failures/gf-new/ack", data={"note": "x"})
    assert refused.status_code == 403 and "no valid CSRF token" in refused.text
    assert r.ops.acks == [] and r.journal.entries[-1]["field"] == "csrf_token"


def test_an_ack_of_an_answered_or_unknown_failure_is_refused_and_recorded(r):
    r.sign_in("risk-carla")
    token = form_csrf(r.client.get("/operations").text)
    for did, rule in (("gf-done", "already acknowledged"), ("nope", "is not a gate failure of the last 7 days")):
        refused = r.client.post(f"/operations/gate-failures/{did}/ack", data={"csrf_token": token})
        assert refused.status_code == 409 and rule in refused.text and "Traceback" not in refused.text
        assert r.journal.entries[-1]["field"] == "decision_id" and r.journal.entries[-1]["accepted"] is False
    assert r.ops.acks == []


def test_an_ack_by_someone_who_may_not_read_the_page_is_refused(r):
    r.sign_in("pm-anna")
    token = r.csrf()
    refused = r.client.post("/operations/gate-failures/gf-new/ack", data={"csrf_token": token})
    assert refused.status_code == 403 and r.ops.acks == [] and r.journal.entries[-1]["field"] == "role"


def test_an_auditor_reads_the_failures_and_cannot_acknowledge_them(r):
    r.sign_in("audit-ida")
    page = r.client.get("/operations").text
    assert "Gate failures (2 to acknowledge)" in page and 'class="ack-form"' not in page
    refused = r.client.post("/operations/gate-failures/gf-new/ack", data={"csrf_token": form_csrf(page)})
    assert refused.status_code == 403 and "an auditor reads the page and does not act on it" in refused.text
    assert r.ops.acks == [] and r.journal.entries[-1]["field"] == "role"
    assert r.journal.entries[-1]["accepted"] is False


def test_a_long_note_is_refused_naming_the_field(r):
    r.sign_in("oncall-otto")
    token = form_csrf(r.client.get("/operations").text)
    refused = r.client.post("/operations/gate-failures/gf-new/ack", data={"csrf_token": token, "note": "x" * 501})
    assert refused.status_code == 400 and "give at most 500" in refused.text and r.ops.acks == []
    assert r.journal.entries[-1]["field"] == "note"


def test_empty_lists_say_so():
    r = ops_rig()
    r.sign_in("oncall-otto")
    html = r.client.get("/operations").text
    assert "No run is deferred." in html and "No gate failure in the last 7 days." in html
    assert "No open incident in the last 7 days." in html
