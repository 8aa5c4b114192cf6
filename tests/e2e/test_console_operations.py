"""The console's operations and audit pages in a real browser, over a real Prefect server, a real MLflow
registry and the decision log: an on-call engineer and an auditor enrol passkeys (an admin's invitation,
two admins approve), a backfill run is deferred by the capacity gateway behind a due EOD run (a real
Prefect run in the state ``Deferred``), a promotion is held by its gates (a real gate failure); the
on-call signs in, sees both on ``/operations`` and acknowledges the gate failure from the page (the
acknowledgement is then in the log, by them); the auditor opens ``/audit``, starts a verification of the
chain, sees it recorded intact, and downloads the export.

``releasegate console`` runs as its own process over this module's RELEASEGATE_HOME and Prefect server
(the real ports of ``bootstrap.console_app``); Playwright drives Debian's chromium with a virtual
authenticator. Screenshots go to ``test-artifacts/console/`` (``ops-*.png``). Skipped when chromium or
``playwright`` is missing, except under CI (env ``CI``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import approver_keys, drain_prefect_services
from tests.support.browser import AUTHENTICATOR, CHROMIUM, fail_if_missing, on_server, require

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
ACTION_MS = 120_000


_MISSING = require()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A Prefect server with the releasegate pool (one slot) and the EOD and backfill deployments, and
    ``releasegate console`` over the same home; this process talks to that server too."""
    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up
    from releasegate.store.db import dispose_engines
    from releasegate.tools.stack import base_env, exe, free_port, spawn, start_prefect_server, wait_http

    fail_if_missing(_MISSING)
    home = tmp_path_factory.mktemp("console-ops") / "home"
    home.mkdir()
    policy = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
        "windows": [],
        "backoff_seconds": [1, 2],
        "pool_concurrency_limit": 1,
    }
    (home / "capacity.yaml").write_text(yaml.safe_dump(policy))
    env = {
        "RELEASEGATE_HOME": str(home),
        "RELEASEGATE_PROJECT_DIR": str(ROOT),
        "RELEASEGATE_CAPACITY_POLICY": str(home / "capacity.yaml"),
    }
    procs = []
    with pytest.MonkeyPatch.context() as mp:
        extra = {"oncall": ["oncall-otto"], "auditors": ["audit-ida"]}
        env["RELEASEGATE_APPROVERS"] = str(approver_keys(home.parent / "approvers", mp, extra))
        env["RELEASEGATE_KEY_DIR"] = str(home.parent / "approvers" / "keys")
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("RELEASEGATE_DATABASE_URL", "RELEASEGATE_MLFLOW_TRACKING_URI", "RELEASEGATE_MLFLOW_REGISTRY_URI"):
            mp.delenv(k, raising=False)
        try:
            server, api = start_prefect_server(home, free_port())
            procs.append(server)
            mp.setenv("PREFECT_API_URL", api)
            with on_server(api):
                infra_up(capacity_from_file())
                ids = {
                    "eod-scoring": eod_scoring.to_deployment(
                        name="eod-scoring", work_pool_name="releasegate", work_queue_name="critical"
                    ).apply(),
                    "backfill": backfill.to_deployment(
                        name="backfill", work_pool_name="releasegate", work_queue_name="bulk"
                    ).apply(),
                }
                port = free_port()
                full = base_env(home) | env | {"PREFECT_API_URL": api}
                console = spawn(
                    "console",
                    [exe("releasegate"), "console", "--host", "localhost", "--port", str(port)],
                    full,
                    home / "logs",
                    cwd=ROOT,
                )
                procs.append(console)
                url = f"http://localhost:{port}"
                wait_http(f"{url}/healthz", proc=console.popen, log=Path(console.log))
                yield {"home": home, "api": api, "console": url, "ids": ids}
        finally:
            drain_prefect_services()
            for p in reversed(procs):
                p.stop()
            dispose_engines()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _deferred_backfill(ids: dict[str, Any]) -> str:
    """The gateway defers a backfill behind an EOD run due now (a pool of one slot): a real Prefect run,
    executed by Prefect's engine here as a worker would, left ``Deferred``."""
    from datetime import UTC, datetime

    from prefect import get_client
    from prefect.exceptions import Pause
    from prefect.flow_engine import run_flow
    from prefect.states import Scheduled

    from flows.backfill import backfill

    with get_client(sync_client=True) as c:
        c.create_flow_run_from_deployment(
            ids["eod-scoring"],
            parameters={"model_name": "credit", "business_date": "2026-11-20"},
            state=Scheduled(scheduled_time=datetime.now(UTC)),
        )
        bf = c.create_flow_run_from_deployment(
            ids["backfill"], parameters={"start_date": "2026-11-20", "end_date": "2026-11-20"}
        )
        with pytest.raises(Pause):
            run_flow(backfill, flow_run=c.read_flow_run(bf.id), return_type="state")
        assert c.read_flow_run(bf.id).state_name == "Deferred"
    return str(bf.id)


def _held_promotion() -> str:
    """A candidate ~1 % better than the champion: held by the KPI gate (a gate failure). Its decision id."""
    from flows.promotion import promotion
    from tests.support.promotion import MODEL, WEAKER_BY_1PCT, install_champion, register

    install_champion(register(WEAKER_BY_1PCT))
    # in this thread (Prefect's settings, this module's server, are this thread's): a hold never pauses
    state = promotion(model_name=MODEL, candidate_version=register(), requested_by="ml-engineer", return_state=True)
    result = state.result()
    assert result["outcome"] == "hold", result
    return str(result["decision_id"])


def ack_seq(decision_id: str) -> int:
    from releasegate import bootstrap

    return bootstrap.decision_log().seqs_of([decision_id])[decision_id]


def test_on_call_acknowledges_a_gate_failure_and_the_auditor_verifies_the_log(stack, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from releasegate import bootstrap
    from releasegate.services.approvers import approve as admin_approves
    from releasegate.services.approvers import governed_config
    from releasegate.services.invitations import invite

    expect.set_options(timeout=ACTION_MS)
    run_id = _deferred_backfill(stack["ids"])
    failure = _held_promotion()
    governed_config("infra-up", bootstrap.app())  # the first config trusted once, as `infra up` does

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        pages = {}
        try:
            for name in ("oncall-otto", "audit-ida"):
                context = browser.new_context(
                    base_url=stack["console"], viewport={"width": 1400, "height": 1000}, accept_downloads=True
                )
                context.set_default_timeout(ACTION_MS)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("WebAuthn.enable")
                cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
                _, code, _ = invite(bootstrap.app(), name, "head-mrm-eva", 24)
                page.goto(f"/enrol?name={name}")
                page.fill("#code", code)
                page.click("#enrol")
                message = page.locator("#message")
                expect(message).to_contain_text("takes effect when two admins approve it")
                proposal = str(message.get_attribute("data-proposal"))
                admin_approves(bootstrap.app(), proposal, "head-mrm-eva")
                assert admin_approves(bootstrap.app(), proposal, "cro-omar") is not None
                page.goto("/signin")
                page.fill("#name", name)
                page.click("#signin")
                page.wait_for_url("**/inbox")
                pages[name] = page

            # the on-call: the deferral against its SLA, the gate failure, acknowledged from the page
            otto = pages["oncall-otto"]
            otto.goto("/operations")
            row = otto.locator(f'tr[data-run="{run_id}"]')
            expect(row).to_contain_text("PRIORITY_CONFLICT")
            expect(row.locator(".badge")).to_have_text("ok")
            assert row.locator("svg.slabar").count() == 1
            failed = otto.locator(f'[id="gf-{failure}"]')
            expect(failed).to_contain_text("credit")
            shot(otto, "ops-01-operations")
            failed.locator("input[name=note]").fill("retrain with the new bureau features, OPS-12")
            failed.get_by_role("button", name="Acknowledge as oncall-otto").click()
            expect(otto.locator("#note")).to_contain_text(f"Gate failure {failure} acknowledged")
            expect(otto.locator(f'[id="gf-{failure}"] .badge')).to_have_text("acknowledged")
            shot(otto, "ops-02-acknowledged")
            [ack] = [
                r
                for r in bootstrap.decision_log().query(kind="gate_failure_ack")
                if r.details.get("acknowledged_decision_id") == failure
            ]
            assert ack.actor == "oncall-otto" and ack.details["note"].startswith("retrain with")

            # the on-call may not open the audit page: refused and recorded
            refused = otto.goto("/audit")
            assert refused is not None and refused.status == 403
            [refusal] = [
                r
                for r in bootstrap.decision_log().query(kind="refusal", subject="console:refusal")
                if r.actor == "oncall-otto"
            ]
            assert refusal.details["field"] == "role"

            # the auditor: checkpoints, a verification started and recorded, the export downloaded
            from releasegate.services.audit import take_checkpoint

            s = bootstrap.settings()  # as `releasegate audit checkpoint` does, into <home>/checkpoints
            taken = take_checkpoint(
                bootstrap.decision_log(), s.signing_key(), bootstrap.clock(), s.resolved_checkpoint_dir
            )
            ida = pages["audit-ida"]
            ida.goto("/audit")
            expect(ida.locator("tr.checkpoint")).to_contain_text(f"#{taken.checkpoint.last_seq}")
            expect(ida.locator("tr.checkpoint .badge")).to_have_text("honoured")
            ida.get_by_role("button", name="Verify the chain now").click()
            for _ in range(120):
                if "intact" in str(ida.locator("#verification p.verify").text_content()):
                    break
                ida.wait_for_timeout(500)
                ida.reload()
            expect(ida.locator("#verification .badge")).to_have_text("intact")
            expect(ida.locator("#evidence")).to_contain_text("credit")
            shot(ida, "ops-03-audit")
            with ida.expect_download() as info:
                ida.click("#export")
            exported = tmp_path / "export.jsonl"
            info.value.save_as(exported)
            lines = [json.loads(line) for line in exported.read_text().splitlines()]
            seqs = [x["seq"] for x in lines if x["type"] == "record"]
            assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= ack_seq(ack.decision_id)
            assert any(x["record"]["decision_id"] == ack.decision_id for x in lines if x["type"] == "record")
            assert [x["last_seq"] for x in lines if x["type"] == "checkpoint"] == [taken.checkpoint.last_seq]
        finally:
            browser.close()
