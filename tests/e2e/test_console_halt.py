"""The halt switch in a real browser: an on-call engineer requests a model's halt in one browser context,
Risk confirms it in another; the model's schedule in Prefect is paused; the requester cannot confirm
the resume they requested. Passkeys (Chrome DevTools Protocol virtual authenticators) for sign-in, as
in ``test_console_passkeys``: each enrols with an admin's one-time code, two admins approve.

A real Prefect server with the model's scheduled EOD deployment, and ``releasegate console`` as its own
process over this module's RELEASEGATE_HOME (the real halt desk: the sealed log, the governed approvers
config, MLflow, the Prefect API). Screenshots go to ``test-artifacts/console/``. Skipped when chromium
or ``playwright`` is missing, except under CI (env ``CI``), where that fails instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import approver_keys, drain_prefect_services
from tests.support.browser import AUTHENTICATOR, CHROMIUM, fail_if_missing, on_server, require

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
ACTION_MS = 120_000
MODEL = "credit"


_MISSING = require()


@pytest.fixture(scope="module", autouse=True)
def _browser_available():
    fail_if_missing(_MISSING)


@dataclass
class Stack:
    api: str
    console: str
    eod: Any  # the model's scheduled EOD deployment's id


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    from prefect.schedules import Cron

    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up
    from releasegate.store.db import dispose_engines
    from releasegate.tools.stack import base_env, exe, free_port, spawn, start_prefect_server, wait_http

    home = tmp_path_factory.mktemp("halt-console") / "home"
    home.mkdir()
    env = {"RELEASEGATE_HOME": str(home), "RELEASEGATE_PROJECT_DIR": str(ROOT)}
    procs = []
    with pytest.MonkeyPatch.context() as mp:
        folder = home.parent / "approvers"
        env["RELEASEGATE_APPROVERS"] = str(approver_keys(folder, mp, extra={"oncall": ["ops-olga"]}))
        env["RELEASEGATE_KEY_DIR"] = str(folder / "keys")
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("RELEASEGATE_DATABASE_URL", "RELEASEGATE_MLFLOW_TRACKING_URI", "RELEASEGATE_MLFLOW_REGISTRY_URI"):
            mp.delenv(k, raising=False)
        try:
            server, api = start_prefect_server(home, free_port())
            procs.append(server)
            with on_server(api):
                infra_up(capacity_from_file())
                from flows.eod_scoring import eod_scoring

                eod = eod_scoring.to_deployment(
                    name=MODEL,
                    work_pool_name="releasegate",
                    work_queue_name="critical",
                    parameters={"model_name": MODEL},
                    tags=["eod", f"model:{MODEL}"],
                    schedules=[Cron("30 18 * * 1-5", timezone="Europe/Zurich")],
                ).apply()
            full = base_env(home) | env | {"PREFECT_API_URL": api}
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
            yield Stack(api=api, console=url, eod=eod)
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
    name: str
    context: Any
    page: Any

    def enrol(self, code: str) -> str:
        from playwright.sync_api import expect

        self.page.goto(f"/enrol?name={self.name}")
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

    def submit(self, reason: str, ticket: str | None = None) -> None:
        self.page.fill("#reason", reason)
        if ticket is not None:
            self.page.fill("#ticket", ticket)
        self.page.click("#halt-submit")
        self.page.wait_for_load_state()


@pytest.fixture
def people(browser, stack, request) -> Iterator[Callable[[str], Person]]:
    from playwright.sync_api import expect

    made: list[Person] = []
    expect.set_options(timeout=ACTION_MS)

    def person(name: str) -> Person:
        context = browser.new_context(base_url=stack.console, viewport={"width": 1100, "height": 800})
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
            p.context.close()


def schedules_active(stack: Stack) -> list[bool]:
    from prefect import get_client

    with on_server(stack.api), get_client(sync_client=True) as c:
        return [s.active for s in c.read_deployment(stack.eod).schedules]


def test_oncall_requests_a_halt_and_risk_confirms_it_in_another_browser(stack, people):
    from playwright.sync_api import expect

    from releasegate import bootstrap
    from releasegate.services.approvers import approve as admin_approves
    from releasegate.services.approvers import governed_config
    from releasegate.services.invitations import invite
    from tests.support.promotion import install_champion, register

    champion = install_champion(register())
    olga, carla = people("ops-olga"), people("risk-carla")
    governed_config("infra-up", bootstrap.app())
    for who in (olga, carla):
        _, code, _ = invite(bootstrap.app(), who.name, "head-mrm-eva", 24)
        proposal = who.enrol(code)
        admin_approves(bootstrap.app(), proposal, "head-mrm-eva")
        assert admin_approves(bootstrap.app(), proposal, "cro-omar") is not None
        who.sign_in()
    assert schedules_active(stack) == [True]

    # on-call requests the halt: recorded, nothing in force yet
    olga.page.goto(f"/models/{MODEL}/halt")
    expect(olga.page.locator("#halt-state")).to_have_attribute("data-status", "none")
    olga.page.fill("#ticket", "INC-2041")
    olga.submit("EOD scores of credit drift since the new bureau feed")
    expect(olga.page.locator("#done")).to_contain_text("halt REQUESTED")
    expect(olga.page.locator("#halt-state")).to_have_attribute("data-status", "requested")
    shot(olga.page, "halt-01-requested")
    assert schedules_active(stack) == [True]

    # Risk, in another browser context, sees the open request and confirms it
    carla.page.goto(f"/models/{MODEL}/halt")
    expect(carla.page.locator("#halt-form")).to_contain_text("Requested by ops-olga")
    shot(carla.page, "halt-02-confirm-form")
    carla.submit("confirmed with the model owner")
    expect(carla.page.locator("#done")).to_contain_text("halt CONFIRMED")
    expect(carla.page.locator("#halt-state")).to_have_attribute("data-status", "halted")
    expect(carla.page.locator("#halt-state")).to_contain_text(f"champion pinned at v{champion}")
    shot(carla.page, "halt-03-halted")
    assert schedules_active(stack) == [False]

    log = bootstrap.decision_log()
    steps = log.query(kind="halt", subject=f"model:{MODEL}")
    assert [(r.details["step"], r.actor) for r in steps] == [
        ("request_halt", "ops-olga"),
        ("confirm_halt", "risk-carla"),
    ]
    assert all(log.is_trusted(r) for r in steps)

    # on-call requests the resume, and cannot confirm it herself: refused as a sentence, recorded
    olga.page.goto(f"/models/{MODEL}/halt")
    olga.submit("bureau feed fixed", "INC-2041")
    expect(olga.page.locator("#done")).to_contain_text("resume REQUESTED")
    olga.submit("bureau feed fixed", "INC-2041")
    expect(olga.page.locator("[role=alert]")).to_contain_text("a second person confirms")
    shot(olga.page, "halt-04-own-resume-refused")
    refusals = log.query(kind="refusal", subject=f"model:{MODEL}")
    assert refusals and refusals[-1].actor == "ops-olga" and refusals[-1].details["field"] == "by"
    assert schedules_active(stack) == [False]
