"""The console's model pages in a real browser: a validator signs in, opens the inventory and a model
page with its charts, and downloads a version's evidence pack.

The console (``create_app``) is served by uvicorn on loopback over the real read view
(``services.model_pages``) of a SQLite decision log holding, through the service path, a model's
history of 60 business dates (``releasegate.testing.model_history``: EOD verdicts with the measures
``services.eod`` records, a retrain, a promotion, a rollback, a held promotion and an exception); the
approvals desk and directory are the unit tests' fakes (``tests.support.console``). The validator signs
in with her passkey (a software authenticator, the WebAuthn ceremony over HTTP) and the browser carries
that session. Playwright drives Debian's chromium (``/usr/bin/chromium``, headless). Screenshots go to
``test-artifacts/console/`` and, for the how-to, ``docs/how-to/img/console/``.

Skipped when chromium or the ``playwright`` package is missing, except under CI (env ``CI``).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from releasegate.console.sessions import COOKIE
from releasegate.policy.evidence_pack import verify_pack
from tests.support.browser import CHROMIUM, fail_if_missing, require
from tests.support.model_pages import console_rig, spec

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
DOCS_IMG = ROOT / "docs" / "how-to" / "img" / "console"


_MISSING = require()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path):
    """The console with the model pages, served on a loopback port; (base URL, rig, history)."""
    import uvicorn

    fail_if_missing(_MISSING)
    r, _, history = console_rig(tmp_path, models=[spec(), spec("fraud", risk_tier="standard", owners=["owner-fred"])])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(r.client.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the console did not start"
    try:
        yield f"http://localhost:{port}", r, history
    finally:
        server.should_exit = True
        thread.join(10)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    shutil.copyfile(ARTIFACTS / f"{name}.png", DOCS_IMG / f"{name}.png")


def test_a_validator_reads_the_inventory_a_model_page_and_downloads_a_pack(served):
    from playwright.sync_api import sync_playwright

    base, r, history = served
    assert r.sign_in("audit-ida").status_code == 200  # her passkey, the WebAuthn ceremony
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            context.add_cookies([{"name": COOKIE, "value": r.client.cookies[COOKIE], "url": base}])
            page = context.new_page()
            page.goto(f"{base}/models")
            assert page.locator("#who").inner_text() == "audit-ida"
            row = page.locator("#model-credit")
            assert "v1" in row.inner_text() and "hold v3" in row.inner_text()
            shot(page, "10-models-inventory")

            page.click("text=credit")
            page.wait_for_url(f"{base}/models/credit")
            for chart in ("kpi", "psi", "missing", "failures", "latency", "champion"):
                assert page.locator(f"#chart-{chart} svg").is_visible(), chart
            markers = page.locator("#chart-psi g.marker > title").all_text_contents()
            assert f"{history.retrain_day.isoformat()}: led to a retrain" in markers
            assert f"{history.rollback_day.isoformat()}: led to a rollback" in markers
            assert page.locator('a[href="/models/credit/halt"]').count() == 1
            shot(page, "11-model-page")
            page.locator("#chart-kpi").screenshot(path=str(ARTIFACTS / "12-model-kpi-chart.png"))
            shutil.copyfile(ARTIFACTS / "12-model-kpi-chart.png", DOCS_IMG / "12-model-kpi-chart.png")

            with page.expect_download() as got:
                page.click('a[href="/models/credit/versions/2/evidence"]')
            download = got.value
            assert download.suggested_filename == "credit-v2-evidence.zip"
            z = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))
            findings, _ = verify_pack({n.rsplit("/", 1)[1]: z.read(n) for n in z.namelist()}, None)
            assert findings == []
        finally:
            browser.close()


@pytest.mark.prefect
def _export_and_alter(model: str, version: str, folder, env: dict[str, str]) -> None:
    """``releasegate evidence export`` then ``verify`` in their own processes; one byte of the JSON pack
    altered is named by ``verify``."""
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "releasegate", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    made = cli("evidence", "export", model, version, "--out", str(folder))
    assert made.returncode == 0, made.stderr[-2000:]
    ok = cli("evidence", "verify", str(folder))
    assert ok.returncode == 0 and ok.stdout.startswith("evidence pack verified"), ok.stdout + ok.stderr
    pack = folder / "evidence.json"
    original = pack.read_text()
    at = original.index('"model": "') + len('"model": "')
    pack.write_text(original[:at] + ("X" if original[at] != "X" else "Y") + original[at + 1 :])
    bad = cli("evidence", "verify", str(folder))
    assert bad.returncode == 1 and "evidence.json: altered after signing" in bad.stderr, bad.stdout + bad.stderr
    pack.write_text(original)


def test_the_model_pages_over_the_demos_real_monitoring_history(tmp_path, monkeypatch):
    """``releasegate demo`` (ephemeral Prefect, SQLite MLflow) scores business dates with real EOD runs,
    drifts and rolls back; the console's model pages over that home (``bootstrap.model_pages``) chart
    them, and each demo model's champion gets an evidence pack that verifies (and names an altered byte)."""
    import subprocess
    import sys
    from dataclasses import replace

    import uvicorn

    from tests.support.console import rig

    home = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "RELEASEGATE_"))}
    env |= {"RELEASEGATE_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "releasegate", "demo", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    monkeypatch.setenv("RELEASEGATE_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    from releasegate import bootstrap

    service = bootstrap.model_pages(bootstrap.app())
    page_of = {m: service.page(m) for m in ("credit", "diabetes")}
    for model, found in page_of.items():
        assert found is not None and found.days, model
        assert any(d.led_to == "rollback" for d in found.days), model  # the injected drift rolled it back
        assert found.days[-1].kpi.value is not None and found.days[-1].psi.threshold is not None
    for model, found in page_of.items():  # each demo model's champion gets a pack that verifies offline
        _export_and_alter(model, str(found.row.champion), tmp_path / f"pack-{model}", env)
    r = rig(now=datetime.now(UTC))  # the demo's records are of today
    console = r.client.app.state.console
    console.ports = replace(console.ports, models=service)
    assert r.sign_in("audit-ida").status_code == 200
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(r.client.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    from playwright.sync_api import sync_playwright

    base = f"http://localhost:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": COOKIE, "value": r.client.cookies[COOKIE], "url": base}])
                page = context.new_page()
                page.goto(f"{base}/models")
                assert page.locator("#model-credit").count() == page.locator("#model-diabetes").count() == 1
                shot(page, "13-demo-models-inventory")
                page.goto(f"{base}/models/diabetes")
                for chart in ("kpi", "psi", "champion"):
                    assert page.locator(f"#chart-{chart} svg").is_visible(), chart
                assert "led to a rollback" in " ".join(page.locator("#chart-psi g.marker > title").all_text_contents())
                shot(page, "14-demo-model-page")
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
