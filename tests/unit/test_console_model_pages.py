"""The console's model pages over the real read view: the inventory and a model page behind sign-in,
their charts (SVG with titles, thresholds and the rollback / retrain days marked), the links to the halt
switch and to each version's evidence pack, the pack as a zip that verifies offline; refusals named and
recorded (no role, a bad name or version, an unknown model or version)."""

import io
import zipfile

from releasegate.policy.evidence_pack import verify_pack
from tests.support.model_pages import console_rig


def test_signed_out_the_model_pages_send_to_the_sign_in(tmp_path):
    r, _, _ = console_rig(tmp_path)
    for url in ("/models", "/models/credit", "/models/credit/versions/2/evidence"):
        got = r.client.get(url, follow_redirects=False)
        assert got.status_code == 303 and got.headers["location"].startswith("/signin")


def test_the_inventory_lists_every_governed_model_with_its_row(tmp_path):
    r, _, _ = console_rig(tmp_path)
    assert r.sign_in("audit-ida").status_code == 200
    page = r.client.get("/models")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/models">Models</a>' in html  # the nav link
    assert '<a href="/models/credit">credit</a>' in html
    for shown in ("owner-olga, owner-omar", "high", "v1", "hold v3", "2026-11-23 21:00 UTC"):
        assert shown in html, shown


def test_a_model_page_draws_its_charts_and_links_the_halt_switch_and_the_packs(tmp_path):
    r, _, h = console_rig(tmp_path)
    r.sign_in("pm-anna")
    html = r.client.get("/models/credit").text
    for chart in ("kpi", "psi", "missing", "failures", "latency", "champion"):
        assert f'id="chart-{chart}"' in html, chart
    assert html.count('<svg class="chart" role="img"') == 6 and html.count("<title>") >= 6
    assert "roc_auc per business date (higher is better)" in html
    assert (
        f"{h.retrain_day.isoformat()}: led to a retrain" in html
        and f"{h.rollback_day.isoformat()}: led to a rollback" in html
    )
    assert 'class="threshold"' in html and "threshold 0.2" in html
    assert "income 0.310" in html  # the worst feature named
    assert 'href="/models/credit/halt"' in html
    for v in ("3", "2", "1"):
        assert f'href="/models/credit/versions/{v}/evidence"' in html
    assert "rollback final: v2 -&gt; v1" in html and "exception for v3" in html


def test_the_evidence_pack_of_a_version_downloads_as_a_zip_that_verifies(tmp_path):
    r, _, _ = console_rig(tmp_path)
    r.sign_in("risk-carla")
    got = r.client.get("/models/credit/versions/2/evidence")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert 'filename="credit-v2-evidence.zip"' in got.headers["content-disposition"]
    z = zipfile.ZipFile(io.BytesIO(got.content))
    files = {n.rsplit("/", 1)[1]: z.read(n) for n in z.namelist()}
    assert set(files) == {"evidence.json", "evidence.html", "evidence.sig"}
    findings, facts = verify_pack(files, None)
    assert findings == [] and facts


def test_refusals_are_named_and_recorded(tmp_path):
    r, _, _ = console_rig(tmp_path)
    r.sign_in("pm-anna")
    cases = [
        ("/models/credit/versions/9/evidence", 404, "version", "holds no promotion of credit v9"),
        ("/models/credit/versions/two/evidence", 400, "version", "is not a version number"),
        ("/models/nope", 404, "name", "in the manifest or the decision log"),
        ("/models/bad%20name", 400, "name", "is not a model name"),
    ]
    for url, status, field, sentence in cases:
        got = r.client.get(url)
        assert got.status_code == status and sentence in got.text, (url, got.text[-400:])
        last = r.journal.entries[-1]
        assert last["accepted"] is False and last["field"] in (field, "VERSION") and last["path"].startswith("/models")


def test_a_signed_in_user_without_a_console_role_is_refused(tmp_path):
    r, _, _ = console_rig(tmp_path)
    r.sign_in("pm-anna")
    config = r.directory.config_now
    r.directory.config_now = config.model_copy(update={"pm": ["owner-olga"]})  # pm-anna loses her only role
    got = r.client.get("/models")
    assert got.status_code == 403 and "holds no console role" in got.text
    assert r.journal.entries[-1]["field"] == "role" and r.journal.entries[-1]["actor"] == "pm-anna"


def test_without_a_model_reader_the_pages_say_so(tmp_path):
    from tests.support.console import rig

    r = rig()
    r.sign_in("audit-ida")
    got = r.client.get("/models")
    assert got.status_code == 404 and "serves no model pages" in got.text
