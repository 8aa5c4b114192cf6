"""The governance console in a real browser, with passkeys (Chrome DevTools Protocol virtual
authenticators): an admin invites two approvers, each enrols with the invitation's one-time code, admins
approve each enrolment, a promotion pauses, the PM approves in one browser context and Risk in another,
the Prefect run resumes and completes, champion set.

A real Prefect server, the releasegate pool, the ``promotion`` deployment and one worker process are
started for the module, and ``releasegate console`` as its own process (the real approvals desk: the
paused runs from the Prefect API, the governed approvers config and the decision log under this module's
RELEASEGATE_HOME). Playwright drives Debian's chromium (``/usr/bin/chromium``, headless) on
``http://localhost`` (a secure context: WebAuthn works without TLS there). Screenshots of the sign-in,
the inbox and the gate report with its charts go to ``test-artifacts/console/``.

Skipped when chromium or the ``playwright`` package is missing, except under CI (env ``CI``), where that
fails instead.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import approver_keys, drain_prefect_services
from tests.support.browser import AUTHENTICATOR, CHROMIUM, fail_if_missing, on_server, require

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
WAIT_S = 240.0  # deadlines, not expected durations (a busy machine may be slow)
ACTION_MS = 120_000
MODEL = "credit"


_MISSING = require()


@pytest.fixture(scope="module", autouse=True)
def _browser_available():
    """Under CI a missing browser or playwright is a failure, not a skip (runs before the stack starts)."""
    fail_if_missing(_MISSING)


@dataclass
class Stack:
    home: Path
    api: str
    console: str  # http://localhost:<port>
    promotion: Any  # the deployment's id
    env: dict[str, str]  # what a releasegate process of this stack runs with


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up
    from releasegate.store.db import dispose_engines
    from releasegate.tools.stack import base_env, exe, free_port, spawn, start_prefect_server, start_worker, wait_http

    home = tmp_path_factory.mktemp("console") / "home"
    home.mkdir()
    policy = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
        "windows": [],
        "backoff_seconds": [1, 2],
    }
    policy_file = home / "capacity.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    env = {
        "RELEASEGATE_HOME": str(home),
        "RELEASEGATE_PROJECT_DIR": str(ROOT),
        "RELEASEGATE_CAPACITY_POLICY": str(policy_file),
        "RELEASEGATE_APPROVAL_POLL_SECONDS": "1",
    }
    procs = []
    with pytest.MonkeyPatch.context() as mp:
        env["RELEASEGATE_APPROVERS"] = str(approver_keys(home.parent / "approvers", mp))  # admins' keys too
        env["RELEASEGATE_KEY_DIR"] = str(home.parent / "approvers" / "keys")
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("RELEASEGATE_DATABASE_URL", "RELEASEGATE_MLFLOW_TRACKING_URI", "RELEASEGATE_MLFLOW_REGISTRY_URI"):
            mp.delenv(k, raising=False)
        try:
            server, api = start_prefect_server(home, free_port())
            procs.append(server)
            with on_server(api):
                infra_up(capacity_from_file())
                from flows.promotion import promotion

                deployment = promotion.to_deployment(
                    name=promotion.name,
                    work_pool_name="releasegate",
                    work_queue_name="critical",
                    job_variables={"working_dir": str(ROOT)},
                ).apply()
            full = base_env(home) | env | {"PREFECT_API_URL": api, "PREFECT_WORKER_QUERY_SECONDS": "2"}
            procs.append(start_worker(home, "console", full, cwd=ROOT))
            port = free_port()
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
            yield Stack(home=home, api=api, console=url, promotion=deployment, env=full)
        finally:
            drain_prefect_services()
            for p in reversed(procs):
                p.stop()
            dispose_engines()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield b
        finally:
            b.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@dataclass
class Person:
    """One approver: their own browser context, with a virtual platform authenticator in it."""

    name: str
    context: Any
    page: Any

    def enrol(self, code: str) -> str:
        """Follow the invitation's link (it fills in the name) and type the admin's one-time code."""
        from playwright.sync_api import expect

        self.page.goto(f"/enrol?name={self.name}")
        expect(self.page.locator("#name")).to_have_value(self.name)
        self.page.fill("#code", code)
        self.page.click("#enrol")
        message = self.page.locator("#message")
        expect(message).to_contain_text("takes effect when two admins approve it")
        return str(message.get_attribute("data-proposal"))

    def sign_in(self) -> None:
        self.page.goto("/signin")
        self.page.fill("#name", self.name)
        self.page.click("#signin")
        self.page.wait_for_url("**/inbox")

    def approve(self, run_id: str, reference: str, statement: str) -> str:
        from playwright.sync_api import expect

        item = self.page.locator(f'[id="{run_id}"]')
        item.locator("input[name=reference]").fill(reference)
        item.locator("input[name=statement_text]").fill(statement)
        item.get_by_role("button", name="Approve and sign with passkey").click()
        message = item.locator(".message")
        expect(message).not_to_be_empty()
        return str(message.text_content())


@pytest.fixture
def people(browser, stack, request) -> Iterator[Callable[[str], Person]]:
    from playwright.sync_api import expect

    made: list[Person] = []
    expect.set_options(timeout=ACTION_MS)

    def person(name: str) -> Person:
        context = browser.new_context(base_url=stack.console, viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(ACTION_MS)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        made.append(Person(name, context, page))
        return made[-1]

    try:
        yield person
    finally:
        expect.set_options(timeout=5_000)
        for p in made:
            try:
                shot(p.page, f"last-{request.node.name}-{p.name}")
            except Exception as exc:  # pragma: no cover - the page may be gone
                print(f"no final screenshot: {exc}")
            p.context.close()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_S, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_state(api: str, run_id):
    from prefect import get_client

    with on_server(api), get_client(sync_client=True) as c:
        return c.read_flow_run(run_id).state


def test_approvers_enrol_passkeys_and_approve_a_promotion_in_the_console(stack, people):
    from prefect import get_client

    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.services.approvers import approve as admin_approves
    from releasegate.services.approvers import governed_config
    from releasegate.services.invitations import invite
    from tests.support.promotion import WEAKER_BY_3PCT, install_champion, register

    # 1. An admin invites two approvers (a one-time code each); each enrols a passkey with the code; two
    #    admins approve each enrolment (a key change). A code admits one enrolment only.
    anna, carla = people("pm-anna"), people("risk-carla")
    governed_config("infra-up", bootstrap.app())  # as `releasegate infra up`: the first config trusted once
    for who in (anna, carla):
        invitation, code, _ = invite(bootstrap.app(), who.name, "head-mrm-eva", 24)
        proposal = who.enrol(code)
        recs, _ = bootstrap.decision_log().trusted(kind="approvers_config", subject="approvers-config")
        [enrolment] = [r for r in recs if r.decision_id == proposal]
        assert enrolment.details["invitation_decision_id"] == invitation
        shot(who.page, f"01-enrolled-{who.name}")
        assert admin_approves(bootstrap.app(), proposal, "head-mrm-eva") is None  # one admin is not enough
        assert admin_approves(bootstrap.app(), proposal, "cro-omar") is not None  # in force now

    # 2. A promotion pauses for the PM (a candidate ~3 % better than the champion).
    install_champion(register(without=WEAKER_BY_3PCT))
    version = register()
    with on_server(stack.api), get_client(sync_client=True) as c:
        run = c.create_flow_run_from_deployment(
            stack.promotion,
            parameters={"model_name": MODEL, "candidate_version": version, "requested_by": "ml-engineer"},
        )
    run_id = str(run.id)
    log = bootstrap.decision_log()

    def approvals(role: str) -> list:
        recs = log.query(kind="approval", subject=f"promotion:{run_id}")
        return [r for r in recs if r.details.get("role") == role and not r.details.get("refusal")]

    wait_for(f"run {run_id} to pause for PM approval", lambda: run_state(stack.api, run_id).is_paused())

    # 3. The PM signs in, reads the gate report in the inbox and approves with her passkey.
    anna.page.goto("/signin")
    shot(anna.page, "02-sign-in")
    anna.sign_in()
    item = anna.page.locator(f'[id="{run_id}"]')
    assert f"{MODEL} v{version} awaits PM_GATE_PASS" in str(item.locator("h2").text_content())
    assert item.locator("svg.chart").count() >= 2  # KPI vs champion with the delta, PSI per feature
    shot(anna.page, "03-inbox-pm")
    item.screenshot(path=str(ARTIFACTS / "04-gate-report.png"))
    said = anna.approve(run_id, "PM-REV-42", "KPI target accepted")
    assert said.startswith("PM_GATE_PASS by pm-anna"), said
    shot(anna.page, "05-pm-approved")

    # 4. Risk (another browser context, another passkey) follows the link a notice carries while signed
    #    out: the console asks her to sign in, then shows that promotion alone; after signing in, one
    #    click (approve and sign) gives the approval (the goal: at most three).
    wait_for("the run to wait for Risk", lambda: approvals("pm") and run_state(stack.api, run_id).is_paused())
    carla.page.goto(f"/inbox?run={run_id}#{run_id}")
    carla.page.wait_for_url(lambda url: "/signin" in url)
    carla.page.fill("#name", carla.name)
    carla.page.click("#signin")
    carla.page.wait_for_url(lambda url: f"/inbox?run={run_id}" in url)
    wait_for(
        "the link to show the Risk item", lambda: carla.page.reload() or carla.page.locator(f'[id="{run_id}"]').count()
    )
    assert carla.page.locator("section.item").count() == 1
    said = carla.approve(run_id, "RISK-REV-7", "risk accepted")
    assert said.startswith("RISK_GATE_PASS by risk-carla"), said
    shot(carla.page, "06-risk-approved")

    # 5. The run resumes and completes; the champion is set; both approvals are passkey-signed records.
    state = wait_for(f"run {run_id} to finish", lambda: (s := run_state(stack.api, run_id)).is_final() and s)
    assert state.is_completed(), state.message
    for role, who in (("pm", "pm-anna"), ("risk", "risk-carla")):
        [rec] = approvals(role)
        assert rec.decision_outcome.value == "accept" and rec.details["approver"] == who
        assert rec.details["signature_scheme"] == "webauthn" and rec.details["webauthn"]["assertion"]["signature"]
    final = [
        r for r in log.query(kind="promotion", subject=f"promotion:{run_id}") if r.details.get("status") == "final"
    ]
    assert len(final) == 1 and final[0].decision_outcome.value == "accept"
    assert registry.aliases(registry.model_name("prod", MODEL)).get("champion") == final[0].details["prod_version"]
    signins = log.query(kind="event", subject="console:signin")
    assert {r.actor for r in signins} >= {"pm-anna", "risk-carla"}

    # 6. `audit verify` re-verifies the passkey approvals offline.
    from releasegate.tools.stack import exe

    done = subprocess.run(
        [exe("releasegate"), "audit", "verify"], env=stack.env | {"COLUMNS": "200"}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signed approvals" in done.stdout and "re-verified" in done.stdout
