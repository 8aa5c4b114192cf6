"""The console's audit page over a fake of its port: the head, the last checkpoints, the newest
verification (started explicitly, with the CSRF token, its expected duration shown), a streamed export
and a link per model version to its evidence pack; who may read it, and every refusal recorded."""

from datetime import timedelta

import pytest

from releasegate.console_ports import CheckpointView, EvidenceLink, VerifyStatus
from tests.support.console import NOW
from tests.support.console_ops import form_csrf, ops_rig


@pytest.fixture
def r():
    r = ops_rig(records=2_000)
    r.audit.checkpoints = [
        CheckpointView("checkpoint-000000001990-x.json", 1990, "a" * 64, NOW - timedelta(minutes=5)),
        CheckpointView(
            "checkpoint-000000001000-x.json", 1000, "b" * 64, NOW - timedelta(hours=1), "the log was rewritten"
        ),
    ]
    r.audit.versions = [EvidenceLink("credit", "4", "promoted", NOW), EvidenceLink("fraud model", "12", "hold", NOW)]
    return r


@pytest.mark.parametrize("who", ["audit-ida", "eva", "risk-carla", "comp-chris"])
def test_auditors_admins_risk_and_compliance_read_it(r, who):
    r.sign_in(who)
    assert r.client.get("/audit").status_code == 200


@pytest.mark.parametrize("who", ["pm-anna", "oncall-otto"])
def test_anybody_else_is_refused_and_the_refusal_recorded(r, who):
    r.sign_in(who)
    page = r.client.get("/audit")
    assert page.status_code == 403 and "The audit page is for auditors, admins, Risk and Compliance" in page.text
    assert r.journal.entries[-1]["field"] == "role" and r.journal.entries[-1]["actor"] == who
    assert r.client.get("/audit/export").status_code == 403


def test_the_page_shows_the_head_the_checkpoints_and_links_each_version_to_its_evidence(r):
    r.sign_in("audit-ida")
    html = r.client.get("/audit").text
    assert "2,000 records" in html and "The last checkpoints (2 of 2)" in html
    assert "#1990" in html and "honoured" in html and "not honoured</span> the log was rewritten" in html
    assert "The newest checkpoint vouches for the chain up to #1990" in html
    assert 'href="/models/credit/versions/4/evidence"' in html
    assert 'href="/models/fraud%20model/versions/12/evidence"' in html
    assert "No verification was started from the console yet." in html and 'action="/audit/verify"' in html


def test_a_verification_is_started_explicitly_with_the_csrf_token(r):
    r.sign_in("audit-ida")
    refused = r.client.post("/audit/verify", data={})
    assert refused.status_code == 403 and r.audit.started == [] and r.journal.entries[-1]["field"] == "csrf_token"
    token = form_csrf(r.client.get("/audit").text)
    started = r.client.post("/audit/verify", data={"csrf_token": token}, follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"] == "/audit#verification"
    assert r.audit.started == ["audit-ida"]
    html = r.client.get("/audit").text
    assert "running</span> since 08:00:00 UTC, started by audit-ida" in html and 'action="/audit/verify"' not in html


def test_the_last_verification_and_how_long_the_next_takes(r):
    r.audit.verify = VerifyStatus(
        state="intact", started_at=NOW, finished_at=NOW, by="eva", records=1_000, seconds=0.5, decision_id="d-9"
    )
    r.sign_in("audit-ida")
    html = r.client.get("/audit").text
    assert "intact</span> 1000 records" in html and "by eva in 0.5 s" in html and "d-9" in html
    assert "about 1.0 s at the last verification" in html  # 2,000 records at that pace
    r.audit.verify = VerifyStatus(
        state="broken", finished_at=NOW, finding="decision log tampered: #7", decision_id="d-10"
    )
    assert "NOT verified</span> decision log tampered: #7" in r.client.get("/audit").text


def test_the_export_streams_the_jsonl_as_a_download():
    r = ops_rig(records=50_000)
    r.sign_in("audit-ida")
    with r.client.stream("GET", "/audit/export") as response:
        assert response.status_code == 200
        assert response.headers["content-disposition"] == 'attachment; filename="decision-log-50000.jsonl"'
        lines = response.iter_lines()
        assert next(lines) == '{"type": "record", "seq": 1}'
        assert r.audit.lines_read < 50_000  # not built in memory before the first line left
        lines = 1 + sum(1 for _ in lines)
    assert lines == 50_000 and r.audit.lines_read == 50_000
