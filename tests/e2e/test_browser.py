"""The Prefect UI in a real browser: a manual governance run and a PM approval, each through the UI's forms.

A real Prefect server (``prefect server start`` on a free loopback port), the releasegate work pool and
queues (``infra_up``), the ``governance-run`` and ``promotion`` deployments and one real worker process
(``prefect worker start``) are started once for the module; Playwright drives Debian's chromium
(``/usr/bin/chromium``, headless) against the server's UI. The flows run in the worker's subprocesses and
write to the decision log under this module's RELEASEGATE_HOME, which the test process reads.

Screenshots of the important steps go to ``test-artifacts/browser/``.

Skipped when chromium or the ``playwright`` package is missing, except under CI (env ``CI``), where that
fails instead.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import approver_keys, drain_prefect_services

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# Deadlines, not expected durations: every wait is for a condition (a record, a state, a page element),
# and a busy CI machine may be slow. Playwright's own defaults (30 s for actions, 5 s for `expect`) are
# raised to ACTION_MS for every action and assertion of a test (fixture `page`).
WAIT_MS = 180_000  # the longest explicit UI wait
WAIT_S = WAIT_MS / 1000
ACTION_MS = 120_000
MODEL = "credit"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (Debian package chromium); the browser test drives that binary"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not importable ({exc}); pip install playwright==1.65.2 (no browser download needed)"
    return None


_MISSING = _missing()
if _MISSING and not os.environ.get("CI"):
    pytest.skip(_MISSING, allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def _browser_available():
    """Under CI a missing browser or playwright is a failure, not a skip (runs before the stack starts)."""
    if _MISSING:
        pytest.fail(f"CI is set and the browser test cannot run: {_MISSING}", pytrace=False)


# ----------------------------------------------------------------------------------------- the stack
@contextmanager
def on_server(api: str) -> Iterator[None]:
    """Point this process's Prefect client at the module's real server (not the session's test harness)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        yield


@dataclass
class Stack:
    home: Path
    api: str
    ui: str
    deployments: dict[str, Any]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """A real Prefect server, the releasegate pool and queues, two deployments and one worker process."""
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up
    from releasegate.store.db import dispose_engines
    from releasegate.tools.stack import base_env, free_port, start_prefect_server, start_worker

    home = tmp_path_factory.mktemp("browser") / "home"
    home.mkdir()
    # The shipped capacity policy without windows and with 1-2 s backoff (as tests.conftest.fast_capacity_policy).
    policy = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
        "windows": [],
        "backoff_seconds": [1, 2],
    }
    policy_file = home / "capacity.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    releasegate_env = {
        "RELEASEGATE_HOME": str(home),  # the decision log and the MLflow registry (SQLite) live here
        "RELEASEGATE_PROJECT_DIR": str(ROOT),
        "RELEASEGATE_CAPACITY_POLICY": str(policy_file),
        "RELEASEGATE_APPROVAL_POLL_SECONDS": "1",
    }
    procs = []
    with pytest.MonkeyPatch.context() as mp:
        # Each approver's key (their own machine: this process) and the block pinning the public keys
        # (the worker's flows read it): the form takes only signed approvals.
        releasegate_env["RELEASEGATE_APPROVERS"] = str(approver_keys(home.parent / "approvers", mp))
        releasegate_env["RELEASEGATE_KEY_DIR"] = str(home.parent / "approvers" / "keys")
        for k, v in releasegate_env.items():
            mp.setenv(k, v)
        for k in ("RELEASEGATE_DATABASE_URL", "RELEASEGATE_MLFLOW_TRACKING_URI", "RELEASEGATE_MLFLOW_REGISTRY_URI"):
            mp.delenv(k, raising=False)
        try:
            server, api = start_prefect_server(home, free_port())
            procs.append(server)
            with on_server(api):
                infra_up(capacity_from_file())
                from flows.governance_run import governance_run
                from flows.promotion import promotion

                deployments = {}
                for flow in (governance_run, promotion):
                    # Deployment name = flow name. The worker runs each flow run in a subprocess whose working
                    # directory must hold the entrypoint (flows/...): without a pull step that is a temp dir.
                    deployments[flow.name] = flow.to_deployment(
                        name=flow.name,
                        work_pool_name="releasegate",
                        work_queue_name="critical",
                        job_variables={"working_dir": str(ROOT)},
                    ).apply()
            assert set(deployments) == {"governance-run", "promotion"}
            worker_env = (
                base_env(home)
                | releasegate_env
                | {
                    "PREFECT_API_URL": api,
                    "PREFECT_WORKER_QUERY_SECONDS": "2",  # pick up new runs within 2 s (default 10)
                    "PREFECT_LOGGING_LEVEL": "INFO",  # run logs in the UI (tests/conftest.py sets WARNING)
                }
            )
            procs.append(start_worker(home, "browser", worker_env, cwd=ROOT))
            yield Stack(home=home, api=api, ui=api.removesuffix("/api"), deployments=deployments)
        finally:
            drain_prefect_services()  # while the server is up (tests/conftest.py says why)
            for p in reversed(procs):  # the worker stops its flow-run subprocesses, then the server goes
                p.stop()
            dispose_engines()


# --------------------------------------------------------------------------------------- the browser
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, stack, request):
    context = browser.new_context(
        base_url=stack.ui, viewport={"width": 1400, "height": 1000}, timezone_id="UTC", locale="en-US"
    )
    from playwright.sync_api import expect

    context.set_default_timeout(ACTION_MS)
    context.set_default_navigation_timeout(ACTION_MS)
    expect.set_options(timeout=ACTION_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        expect.set_options(timeout=5_000)  # Playwright's default
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        last = ARTIFACTS / f"last-{request.node.name}"  # where the test ended, passed or not
        try:
            pg.screenshot(path=f"{last}.png", full_page=True)
            last.with_suffix(".html").write_text(pg.content())
        except Exception as exc:  # pragma: no cover - the page may be gone
            print(f"no final screenshot: {exc}")
        context.close()


@pytest.fixture(scope="module")
def shots() -> Callable[..., Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str, full_page: bool = True) -> Path:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:  # let the page's lazy parts (logs, graph) load; the UI polls, so this is best effort
            page.wait_for_load_state("networkidle", timeout=5_000)
        except PlaywrightTimeout:
            pass
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        print(f"screenshot: {path}")
        return path

    return shot


def field(scope, label: str):
    """One field of a schema form (run parameters, run input): the innermost block holding its label.

    Fields whose type is a union (``str | None``, ``datetime | None``) have tabs and no accessible name.
    """
    pattern = re.compile(rf"^{re.escape(label)}( \(Optional\))?$")
    return scope.locator("div.group").filter(has=scope.page.locator("label", has_text=pattern)).last


def choose(scope, label: str, option: str) -> None:
    """Pick an option of a schema form's select (a button "Select <label>" opening a listbox)."""
    from playwright.sync_api import expect

    select = scope.get_by_role("button", name=f"Select {label}", exact=True)
    select.click()
    scope.page.get_by_role("listbox").get_by_role("option", name=option, exact=True).click()
    expect(select).to_have_text(option)


def ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def pick_datetime(page, field_, when: datetime) -> None:
    """Fill a date-time field through its picker: calendar day, then hour and minute columns (browser in UTC).

    The picker's AM/PM buttons are not used: in Prefect 3.8.8's UI a click on the period already shown
    still shifts the time by 12 hours. A day picked in the calendar starts at midnight (AM), and picking
    an hour keeps the period, so a morning time needs no AM click.
    """
    from playwright.sync_api import expect

    assert when.tzinfo is UTC and 1 <= when.hour <= 11 and when.minute % 5 == 0, when
    field_.get_by_role("tab", name="date-time", exact=True).click()  # Optional[datetime]: switch from None
    expect(field_.get_by_role("button", name="Select timezone")).to_have_text("UTC")
    field_.get_by_role("button", name="MM/DD/YYYY hh:mm aa").click()
    picker = page.get_by_role("dialog")
    picker.get_by_label("Choose the Year").select_option(str(when.year))
    picker.get_by_label("Choose the Month").select_option(str(when.month - 1))
    day = re.compile(rf"{when:%B} {ordinal(when.day)}, {when.year}$")
    picker.get_by_role("button", name=day).click()
    hours, minutes = (
        picker.locator('[data-slot="scroll-area"]').nth(0),
        picker.locator('[data-slot="scroll-area"]').nth(1),
    )
    hours.get_by_role("button", name=str(when.hour), exact=True).click()
    minutes.get_by_role("button", name=str(when.minute), exact=True).click()
    page.keyboard.press("Escape")
    expect(picker).to_be_hidden()
    expect(field_.get_by_role("tabpanel").get_by_role("button").first).to_have_text(f"{when:%m/%d/%Y %I:%M %p}")


def open_ui(page) -> str:
    """Open the server's root URL, as a person would; returns the base URL of the UI it lands on.

    Prefect 3.8.8 serves two UIs: "/" redirects to the default one, the React UI under ``/v2`` (its
    sidebar offers "Switch to V1 UI"); the selectors here are for that UI.
    """
    from playwright.sync_api import expect

    page.goto("/")
    expect(page).to_have_url(re.compile(r"^https?://[^/]+/v2(/|$)"))
    expect(page.get_by_role("link", name="Deployments")).to_be_visible()
    return re.match(r"^https?://[^/]+/v2", page.url).group(0)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_S, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_state(api: str, run_id):
    from prefect import get_client

    with on_server(api), get_client(sync_client=True) as c:
        return c.read_flow_run(run_id).state


def deployment_runs(api: str, deployment_id, **parameters) -> list:
    """The deployment's flow runs whose parameters include ``parameters``, as the Prefect API has them."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with on_server(api), get_client(sync_client=True) as c:
        runs = c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return [r for r in runs if all(r.parameters.get(k) == v for k, v in parameters.items())]


def pause_count(api: str, run_id) -> int:
    from prefect import get_client
    from prefect.client.schemas.objects import StateType

    with on_server(api), get_client(sync_client=True) as c:
        return sum(1 for s in c.read_flow_run_states(run_id) if s.type == StateType.PAUSED)


# ------------------------------------------------------------------------------------------- tests
def test_governance_run_from_the_custom_run_form(stack, page, shots):
    from playwright.sync_api import expect

    from releasegate import bootstrap

    approved_at = (datetime.now(UTC) - timedelta(days=1)).replace(hour=9, minute=30, second=0, microsecond=0)
    ticket = f"CHG-{os.getpid()}"

    ui = open_ui(page)
    page.get_by_role("link", name="Deployments").click()
    page.get_by_role("link", name="governance-run", exact=True).and_(
        page.locator('[href*="/deployments/deployment/"]')
    ).click()
    expect(page).to_have_url(re.compile(rf"/deployments/deployment/{stack.deployments['governance-run']}"))
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Custom run").click()
    expect(page).to_have_url(re.compile(r"/run\b"))

    form = page.get_by_role("main")
    form.get_by_role("textbox", name="requested_by", exact=True).fill("ops-lena")
    choose(form, "reason_code", "governance_run")
    ticket_field = field(form, "ticket_ref")
    ticket_field.get_by_role("tab", name="str", exact=True).click()  # Optional[str]: switch from None
    ticket_field.get_by_role("textbox").fill(ticket)
    pick_datetime(page, field(form, "approved_at"), approved_at)
    expect(form.get_by_role("button", name="Select target_environment")).to_have_text("dev")
    shots(page, "01-governance-run-form-filled")

    submit = form.get_by_role("button", name="Submit", exact=True)
    # The submitted run as the Prefect API has it (the UI's "View run" toast is transient: not waited for).
    # On a busy machine the UI once ignored the click (form still shown, no run after 180 s).
    runs = submit_until(
        submit,
        lambda: deployment_runs(stack.api, stack.deployments["governance-run"], ticket_ref=ticket),
        still_open=lambda: bool(re.search(r"/run\b", page.url)) and submit.is_visible(),
        what=f"a flow run with ticket_ref {ticket}",
    )
    run = min(runs, key=lambda r: r.created)  # a re-submit the UI did act on late would be the second
    run_id = str(run.id)
    page.goto(f"{ui}/runs/flow-run/{run_id}")
    expect(page).to_have_url(re.compile(rf"/runs/flow-run/{run_id}(\?|$)"))
    expect(page.get_by_role("main")).to_contain_text(run.name, timeout=WAIT_MS)
    shots(page, "02-governance-run-submitted")

    log = bootstrap.decision_log()
    [rec] = wait_for(
        f"the worker to run {run_id} and record its manual_run decision",
        lambda: log.query(kind="manual_run", subject=f"flow_run:{run_id}"),
    )
    assert rec.decision_outcome.value == "accept", rec.decision_rationale
    assert rec.actor == "releasegate:governance-run"
    d = rec.details
    assert (d["requested_by"], d["reason_code"], d["ticket_ref"], d["target_environment"]) == (
        "ops-lena",
        "governance_run",
        ticket,
        "dev",
    )
    assert datetime.fromisoformat(d["approved_at"]) == approved_at
    wait_for(f"{run_id} to complete", lambda: run_state(stack.api, run_id).is_completed())
    page.reload()
    expect(page.get_by_role("main").get_by_text("Completed", exact=True).first).to_be_visible(timeout=WAIT_MS)
    shots(page, "03-governance-run-completed")


def token_for(api: str, run_id, role: str, approver: str, reference: str) -> str:
    """What the approver runs on their own machine before filling the form (a real process: Playwright's
    event loop in this one would turn Prefect's sync calls into coroutines)."""
    import subprocess

    from releasegate.tools.stack import exe

    args = ["approve", str(run_id), "--role", role, "--by", approver, "--ref", reference, "--token-only"]
    env = os.environ | {"PREFECT_API_URL": api, "COLUMNS": "4000"}
    done = subprocess.run([exe("releasegate"), *args], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return "".join(done.stdout.split())


def resume_with_approval(
    page,
    shots,
    step: str,
    role: str,
    approver: str,
    reference: str,
    statement: str,
    token: str,
    resumed: Callable[[], bool],
) -> None:
    """On a paused promotion run's page: Resume (in the run's menu), fill the approval form with the
    signed token, submit.

    Done when ``resumed()`` (the API: the run took the input) holds, not when the dialog closes: on a
    busy machine the UI once kept the dialog open for 2 minutes after a click it had not acted on. So the
    submit is clicked again while the dialog is still open and the run has not resumed (a second submit
    to a run that did resume is refused by Prefect and changes nothing)."""
    from playwright.sync_api import expect

    main = page.get_by_role("main")
    expect(main.get_by_text("Paused", exact=True).first).to_be_visible(timeout=WAIT_MS)
    main.get_by_role("button", name="Open menu").first.click()
    page.get_by_role("menuitem", name="Resume", exact=True).click()
    form = page.get_by_role("dialog", name="Resume Flow Run")
    expect(form).to_contain_text(f"{role.upper()}_GATE_PASS")  # the pause's description: whose approval
    form.get_by_role("textbox", name=re.compile(r"^Approver")).fill(approver)
    choose(form, "Decision", "approve")
    form.get_by_role("textbox", name=re.compile(r"^Reference")).fill(reference)
    form.get_by_role("textbox", name=re.compile(r"^Statement")).fill(statement)
    form.get_by_role("textbox", name=re.compile(r"^Token")).fill(token)
    choose(form, "Role", role)
    shots(page, f"{step}-resume-form-{role}", full_page=False)
    submit = form.get_by_role("button", name="Resume", exact=True)
    submit_until(submit, resumed, still_open=form.is_visible, what=f"the run to take the {role} approval")


def submit_until(submit, done: Callable[[], Any], still_open: Callable[[], bool], what: str, every: float = 30):
    """Click ``submit``, then wait for ``done()`` (the API's answer, not the UI's). While it is not done
    and the form is ``still_open()``, click again every ``every`` seconds, checking ``done()`` just before:
    on a busy machine the Prefect UI has kept a form open for minutes after a click it did not act on."""
    submit.click()
    deadline, clicked = time.monotonic() + WAIT_S, time.monotonic()
    while not (result := done()):
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S:.0f} s"
        time.sleep(1)
        if time.monotonic() - clicked > every and still_open():
            if not done():
                submit.click(timeout=ACTION_MS)
            clicked = time.monotonic()
    return result


def test_pm_approval_through_the_resume_form(stack, page, shots):
    from credit_example.training import log_and_register, train
    from playwright.sync_api import expect
    from prefect import get_client

    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry as registry

    version = log_and_register(train(seed=11), MODEL, "staging")  # no champion: a first release
    with on_server(stack.api), get_client(sync_client=True) as c:
        run = c.create_flow_run_from_deployment(
            stack.deployments["promotion"],
            parameters={"model_name": MODEL, "candidate_version": version, "requested_by": "ml-engineer"},
        )
    subject = f"promotion:{run.id}"
    log = bootstrap.decision_log()

    def approvals(role: str):
        return [r for r in log.query(kind="approval", subject=subject) if r.details.get("role") == role]

    wait_for(f"promotion run {run.id} to pause for PM approval", lambda: run_state(stack.api, run.id).is_paused())
    [tech] = approvals("tech")
    assert tech.details["outcome"] == "promote"

    page.goto(f"{open_ui(page)}/runs/flow-run/{run.id}")
    expect(page.get_by_role("main").get_by_text("Paused", exact=True).first).to_be_visible(timeout=WAIT_MS)
    shots(page, "04-promotion-paused")
    pauses = pause_count(stack.api, run.id)

    def took_input(role: str):  # the approval record of ``role`` exists: the run resumed with the input
        return lambda: bool(approvals(role))

    token = token_for(stack.api, run.id, "pm", "pm-anna", "PM-REV-42")
    resume_with_approval(
        page, shots, "05", "pm", "pm-anna", "PM-REV-42", "KPI target accepted", token, took_input("pm")
    )
    [pm] = wait_for("the PM approval record", lambda: approvals("pm"))
    assert pm.decision_outcome.value == "accept", pm.details
    assert (pm.details["approver"], pm.details["reference"], pm.details["decision"]) == (
        "pm-anna",
        "PM-REV-42",
        "approve",
    )
    assert pm.details["statement"] == "KPI target accepted" and not pm.details.get("refusal")
    assert pm.details["signed_statement"]["run_id"] == str(run.id) and pm.details["signature"]

    # Risk approves too, through the same form, so that the run ends (promoted) rather than waiting.
    wait_for(
        "the run to pause again for Risk",
        lambda: pause_count(stack.api, run.id) > pauses and run_state(stack.api, run.id).is_paused(),
    )
    page.reload()
    token = token_for(stack.api, run.id, "risk", "risk-carla", "RISK-REV-7")
    resume_with_approval(
        page, shots, "06", "risk", "risk-carla", "RISK-REV-7", "risk accepted", token, took_input("risk")
    )
    state = wait_for(
        f"promotion run {run.id} to finish",
        lambda: (s := run_state(stack.api, run.id)).is_final() and s,
    )
    assert state.is_completed(), state.message
    [risk] = approvals("risk")
    assert risk.decision_outcome.value == "accept" and risk.details["approver"] == "risk-carla"
    final = [r for r in log.query(kind="promotion", subject=subject) if r.details.get("status") == "final"]
    assert len(final) == 1 and final[0].decision_outcome.value == "accept"
    assert final[0].pm_gate_ref.startswith("PM_GATE_PASS:pm-anna")
    assert registry.aliases(registry.model_name("prod", MODEL)).get("champion") == final[0].details["prod_version"]
    page.reload()
    expect(page.get_by_role("main").get_by_text("Completed", exact=True).first).to_be_visible(timeout=WAIT_MS)
    shots(page, "07-promotion-completed")
