"""Scheduling on the Prefect test harness: deferral in place, overrides, SLA sweeper, event intake.

Flow runs are created through the Prefect API from real deployments and executed by Prefect's engine
(``run_flow``, what a worker's subprocess runs). Where a test needs an EOD run to be *running*, its
state is set through the API exactly as the engine would; only the clock is fake.
"""

import json
import logging
import random
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkQueueFilter,
    WorkQueueFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import Pause
from prefect.flow_engine import run_flow
from prefect.states import Cancelled, Completed, Running, Scheduled
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.bootstrap import use_clock
from releasegate.cli import app
from releasegate.clock import FixedClock
from tests.conftest import ROOT, cancel_unfinished_pool_runs, prod_version

pytestmark = pytest.mark.prefect

# Prefect holds a run until its scheduled time (server rule WaitForScheduledTime), so the tests use a
# backoff of seconds; the fake clock and the real one then agree on when a deferred run may go again.
BASE_POLICY = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
    "windows": [],
    "backoff_seconds": [1, 2],
}


@pytest.fixture(scope="module")
def deployed(prefect_harness):
    """infra up + the gated deployments, once for the module."""
    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up

    infra_up(capacity_from_file(ROOT / "blocks" / "capacity_policy.yaml"))
    ids = {}
    for flow, name, queue in ((eod_scoring, "eod-scoring", "critical"), (backfill, "backfill", "bulk")):
        ids[name] = flow.to_deployment(name=name, work_pool_name="releasegate", work_queue_name=queue).apply()
    return ids


@pytest.fixture
def policy(tmp_path, monkeypatch):
    """Write a capacity policy for this test; flows read it instead of the block."""

    def write(**changes):
        path = tmp_path / "capacity.yaml"
        path.write_text(yaml.safe_dump(json.loads(json.dumps(BASE_POLICY | changes, default=str))))
        monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", str(path))
        return path

    write()
    return write


@pytest.fixture
def clock():
    c = FixedClock(datetime.now(UTC).replace(microsecond=0))
    with use_clock(c):
        yield c


@pytest.fixture(autouse=True)
def _cancel_leftovers(request):
    """Start from and leave an empty shared pool: other modules' runs must not block ours."""
    if "deployed" in request.fixturenames:
        request.getfixturevalue("prefect_harness")
        cancel_unfinished_pool_runs()
    yield
    if "deployed" in request.fixturenames:
        cancel_unfinished_pool_runs()


def create_run(deployment_id, **parameters):
    with get_client(sync_client=True) as c:
        return c.create_flow_run_from_deployment(deployment_id, parameters=parameters)


def read(run_id):
    with get_client(sync_client=True) as c:
        return c.read_flow_run(run_id)


def without_history(*deployment_ids):
    """Delete the completed runs of these (shared) deployments: the gateway expects a run to last as long
    as the deployment's last completed runs did, else as long as its policy's timeout. Scenarios that
    need the timeout must not depend on which other tests completed runs of the same deployment first."""
    with get_client(sync_client=True) as c:
        done = read_all_flow_runs(
            c,
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(deployment_ids))),
        )
        for run in done:
            c.delete_flow_run(run.id)


def execute(flow, run_id):
    """Run an API flow run in this process with Prefect's engine, as a worker would."""
    return run_flow(flow, flow_run=read(run_id), return_type="state")


def set_state(run_id, state):
    with get_client(sync_client=True) as c:
        c.set_flow_run_state(run_id, state, force=True)


def run_admitted(run_id):
    """A run running on a worker after the gateway admitted it: Running, with its admission label."""
    from releasegate.adapters import prefect_slots

    set_state(run_id, Running())
    prefect_slots.mark(str(run_id), prefect_slots.HELD)


def expect_deferred(flow, run_id, code):
    with pytest.raises(Pause):
        execute(flow, run_id)
    fr = read(run_id)
    assert fr.state_type == StateType.SCHEDULED and fr.state_name == "Deferred", fr.state
    assert fr.state.message == code
    deferral = bootstrap.scheduling_store().get_deferral(str(run_id))
    assert deferral.status == "open" and deferral.reason_code == code
    assert fr.state.state_details.scheduled_time == deferral.next_evaluation_at
    return fr, deferral


def defer_backfill_behind_due_eod(deployed, policy, clock):
    """A PRIORITY_CONFLICT deferral under the shipped (reservation) rule: a pool of one slot, an EOD run
    due now holds it, so a backfill, which would still be running then, is deferred to the end of EOD's
    reservation. Returns (eod, backfill, deferral)."""
    from flows.backfill import backfill

    policy(pool_concurrency_limit=1)
    without_history(deployed["eod-scoring"])  # EOD reserves its slot for its policy's timeout
    with get_client(sync_client=True) as c:
        eod = c.create_flow_run_from_deployment(
            deployed["eod-scoring"],
            parameters={"model_name": "credit", "business_date": "2026-11-20"},
            state=Scheduled(scheduled_time=clock.now()),
        )
    bf = create_run(deployed["backfill"], start_date="2026-11-20", end_date="2026-11-20")
    _, deferral = expect_deferred(backfill, bf.id, "PRIORITY_CONFLICT")
    assert deferral.next_evaluation_at > clock.now()  # the reservation's end, not a backoff
    return eod, bf, deferral


# ---------------------------------------------------------------------------------- deferral
def test_priority_window_rule_backfill_waits_for_running_eod_then_starts(deployed, rg_home, policy, clock):
    """``admission: priority_window`` (the first rule, still selectable): a running EOD run holds every
    backfill back, whatever the pool's free slots; each deferral asks again after the backoff."""
    from flows.backfill import backfill

    policy(admission="priority_window")

    eod = create_run(deployed["eod-scoring"], model_name="credit", business_date="2026-11-20")
    run_admitted(eod.id)  # the EOD run is running on a worker
    bf = create_run(deployed["backfill"], start_date="2026-11-19", end_date="2026-11-20")
    fr, deferral = expect_deferred(backfill, bf.id, "PRIORITY_CONFLICT")
    assert deferral.next_evaluation_at == clock.now() + timedelta(seconds=1)
    [rec] = bootstrap.decision_log().query(kind="deferral")
    assert rec.details["deferral_reason_code"] == "PRIORITY_CONFLICT"
    assert rec.details["evidence"]["blocking_runs"] == [str(eod.id)]

    # Still running at the next evaluation: deferred again, the first deferral time is kept.
    clock.advance(seconds=1)
    _, again = expect_deferred(backfill, bf.id, "PRIORITY_CONFLICT")
    assert again.attempts == 2 and again.first_deferred_at == deferral.first_deferred_at
    assert again.next_evaluation_at == clock.now() + timedelta(seconds=2)

    set_state(eod.id, Completed())  # EOD finished
    clock.advance(seconds=2)
    state = execute(backfill, bf.id)
    assert state.is_completed(), state
    assert read(bf.id).state_type == StateType.COMPLETED
    closed = bootstrap.scheduling_store().get_deferral(str(bf.id))
    assert closed.status == "admitted" and closed.closed_at == clock.now()
    assert bootstrap.scheduling_store().completed(["backfill"], [date(2026, 11, 19), date(2026, 11, 20)]) == {
        ("backfill", date(2026, 11, 19)),
        ("backfill", date(2026, 11, 20)),
    }


def test_change_freeze_defers_until_the_freeze_ends(deployed, rg_home, policy, clock):
    from flows.backfill import backfill

    end = clock.now() + timedelta(hours=6)
    policy(
        windows=[
            {
                "name": "quarter-close",
                "kind": "change_freeze",
                "start": clock.now() - timedelta(hours=1),
                "end": end,
                "deployments": ["backfill"],
            }
        ]
    )
    bf = create_run(deployed["backfill"], start_date="2026-11-20", end_date="2026-11-20")
    fr, deferral = expect_deferred(backfill, bf.id, "CHANGE_FREEZE")
    assert deferral.next_evaluation_at == end and fr.next_scheduled_start_time == end


def test_upstream_not_ready_until_eod_for_that_date_completes(deployed, rg_home, policy, clock):
    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring

    policy(deployments=BASE_POLICY["deployments"] | {"backfill": {"queue": "bulk", "upstreams": ["eod-scoring"]}})
    bf = create_run(deployed["backfill"], start_date="2026-11-20", end_date="2026-11-20")
    _, deferral = expect_deferred(backfill, bf.id, "UPSTREAM_NOT_READY")
    assert "eod-scoring@2026-11-20" in deferral.explanation

    prod_version("credit", seed=1, alias="champion")  # EOD scores prod.credit@champion
    eod = create_run(deployed["eod-scoring"], model_name="credit", business_date="2026-11-20")
    assert execute(eod_scoring, eod.id).is_completed()  # the real EOD run, gated and admitted
    clock.advance(seconds=2)
    assert execute(backfill, bf.id).is_completed()


def test_full_pool_gives_capacity_limit(deployed, rg_home, policy, clock):
    from flows.eod_scoring import eod_scoring

    policy(pool_concurrency_limit=2)
    holders = [create_run(deployed["backfill"], start_date="2026-11-20", end_date="2026-11-20") for _ in range(2)]
    for h in holders:
        run_admitted(h.id)
    eod = create_run(deployed["eod-scoring"], model_name="credit", business_date="2026-11-20")
    expect_deferred(eod_scoring, eod.id, "CAPACITY_LIMIT")


def test_a_run_admitted_from_a_stale_snapshot_is_deferred_when_another_took_the_last_slot(
    deployed, rg_home, policy, clock, caplog
):
    """Atomic admission: the snapshot shows a free pool, but a run on another worker already holds the
    pool's leased slots (it is not Running yet). The policy admits, the slot request fails, the run is
    deferred with CAPACITY_LIMIT naming the Prefect limit. Once the slots are back it is admitted, holds
    one slot of the pool's and its queue's limit while its body runs, and gives both back at the end."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.concurrency.sync import concurrency

    from flows.backfill import backfill
    from releasegate.adapters import prefect_slots
    from releasegate.adapters.config import capacity_from_file

    config = capacity_from_file(policy(pool_concurrency_limit=2))
    prefect_slots.ensure_limits(config)
    pool, queue = prefect_slots.pool_limit(config), prefect_slots.queue_limit(config, "bulk")
    run = create_run(deployed["backfill"], start_date="2026-11-21", end_date="2026-11-21")
    caplog.set_level(logging.INFO, logger="prefect.flow_runs")
    with concurrency(pool, occupy=2, strict=True, lease_duration=60):  # the other worker's run
        _, deferral = expect_deferred(backfill, run.id, "CAPACITY_LIMIT")
        assert prefect_slots.held_slots(config)[queue] == 0  # a lost race holds nothing
    [rec] = bootstrap.decision_log().query(kind="deferral", subject=f"flow_run:{run.id}")
    assert rec.details["evidence"]["limit"] == pool
    assert "took the last slot" in rec.decision_rationale
    assert deferral.next_evaluation_at == clock.now() + timedelta(seconds=1)  # the backoff

    set_state(run.id, Scheduled(scheduled_time=datetime.now(UTC)))
    with get_client(sync_client=True) as c:  # a cap left from an older policy: corrected at admission
        c.update_global_concurrency_limit(pool, GlobalConcurrencyLimitUpdate(limit=5))
    assert execute(backfill, run.id).is_completed()
    with get_client(sync_client=True) as c:
        assert c.read_global_concurrency_limit_by_name(pool).limit == 2
    assert prefect_slots.held_slots(config) == dict.fromkeys(prefect_slots.held_slots(config), 0)
    messages = [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs"]
    assert any(m.startswith("capacity gateway: admitted") for m in messages), messages
    [released] = [m for m in messages if m.startswith(prefect_slots.RELEASING)]
    assert pool in released and queue in released


def test_reservation_admits_backfills_that_fit_and_defers_the_rest_to_the_reservations_end(
    deployed, rg_home, policy, clock
):
    """admission: reservation. An EOD run due in 10 min holds one slot of a pool of 3: a backfill starts
    at once while a slot stays free for EOD; with two running, the next is deferred to the end of EOD's
    reservation, which the deferral names; EOD then starts on time."""
    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring
    from releasegate.adapters.prefect_gate import expected_durations

    policy(admission="reservation", pool_concurrency_limit=3)
    # The storm is judged 10 min before EOD is due; the Prefect server holds a run until its scheduled
    # time in real time, so the fake clock starts 10 min back and EOD is due at real now.
    clock.advance(minutes=-10)
    # a deployment of its own: no run history, so the backfills' durations are unknown (assumed to
    # outlast any reservation) whatever other tests completed
    storm = backfill.to_deployment(name="backfill-storm", work_pool_name="releasegate", work_queue_name="bulk").apply()
    due = clock.now() + timedelta(minutes=10)
    with get_client(sync_client=True) as c:
        eod = c.create_flow_run_from_deployment(
            deployed["eod-scoring"],
            parameters={"model_name": "credit", "business_date": "2026-11-20"},
            state=Scheduled(scheduled_time=due),
        )
        eod_expected = expected_durations(bootstrap.app(), c, {str(deployed["eod-scoring"]): "eod-scoring"})[
            str(deployed["eod-scoring"])
        ]
    assert eod_expected is not None  # its history, or its runtime policy's timeout

    holder = create_run(storm, start_date="2026-11-20", end_date="2026-11-20")
    run_admitted(holder.id)
    fits = create_run(storm, start_date="2026-11-20", end_date="2026-11-20")
    assert execute(backfill, fits.id).is_completed()  # 1 running + EOD's reserved slot + this one = 3

    set_state(create_run(storm, start_date="2026-11-20", end_date="2026-11-20").id, Running())
    late = create_run(storm, start_date="2026-11-20", end_date="2026-11-20")
    _, deferral = expect_deferred(backfill, late.id, "PRIORITY_CONFLICT")
    assert deferral.next_evaluation_at == due + timedelta(seconds=eod_expected)  # the reservation's end
    [rec] = bootstrap.decision_log().query(kind="deferral", subject=f"flow_run:{late.id}")
    assert rec.details["evidence"]["blocking_runs"] == [str(eod.id)]
    assert "eod-scoring" in rec.decision_rationale and "reservation" in rec.decision_rationale

    clock.advance(minutes=10)  # EOD is due: two backfills hold slots, its own slot is free
    prod_version("credit", seed=1, alias="champion")
    assert execute(eod_scoring, eod.id).is_completed()
    assert bootstrap.scheduling_store().get_deferral(str(eod.id)) is None  # never deferred


# ---------------------------------------------------------------------------- sweeper, override
def test_sweeper_escalates_at_30_and_60_minutes(deployed, rg_home, policy, clock):
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_deferrals import sweep

    _, bf, _ = defer_backfill_behind_due_eod(deployed, policy, clock)
    cfg = load_gateway_config()

    clock.advance(minutes=29)
    first = sweep(bootstrap.app(), cfg)
    assert first.escalations == [] and first.woken == []  # EOD still holds the only slot: nothing to wake
    clock.advance(minutes=1)
    [alert] = sweep(bootstrap.app(), cfg).escalations
    assert alert["level"] == "alert" and alert["event"] == "releasegate.deferral.sla-breached"
    assert sweep(bootstrap.app(), cfg).escalations == []  # once per level
    clock.advance(minutes=30)
    [incident] = sweep(bootstrap.app(), cfg).escalations
    assert incident["level"] == "incident" and incident["event"] == "releasegate.incident.opened"
    recs = bootstrap.decision_log().query(kind="deferral")
    assert [r.details.get("sla_escalation") for r in recs] == [None, "alert", "incident"]
    assert all(r.details.get("event_id") for r in recs[1:])
    assert bootstrap.scheduling_store().get_deferral(str(bf.id)).sla_state == "incident"
    # the notification is the queue's storm incident, one per level, which each run's record names
    storm = bootstrap.decision_log().query(kind="incident", subject_prefix="deferral-storm:")
    assert [(s.subject, s.details["storm_state"], s.details["open_deferrals"]) for s in storm] == [
        ("deferral-storm:releasegate/bulk", "alert", 1),
        ("deferral-storm:releasegate/bulk", "incident", 1),
    ]
    assert {r.details["storm_incident"] for r in recs[1:]} == {storm[0].decision_id}
    assert recs[2].details["event_id"] == storm[1].details["event_id"]

    set_state(bf.id, Cancelled())  # an ended run's deferral is closed by the sweeper
    report = sweep(bootstrap.app(), cfg)
    assert report.closed == [str(bf.id)] and report.open_deferrals == 0
    assert [(s["queue"], s["state"]) for s in report.storms] == [("bulk", "closed")]  # the queue drained


def test_each_sweeper_escalation_is_notified_once_with_the_deferrals_facts(deployed, rg_home, policy, clock):
    """What the sweep reports is what the on-call notice says (``services.escalation_notices``), sent
    once per escalation level and channel across sweeps, each attempt in the sealed log."""
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_deferrals import sweep
    from releasegate.promotion_ports import Notifications
    from releasegate.services.escalation_notices import notify_escalations
    from releasegate.services.notification_log import LoggedNotifications
    from tests.support.notices import FakeNotifier

    _, bf, _ = defer_backfill_behind_due_eod(deployed, policy, clock)
    cfg, app, chat = load_gateway_config(), bootstrap.app(), FakeNotifier("webhook")
    n = Notifications((chat,), LoggedNotifications(app.log), "https://console.example")
    clock.advance(minutes=30)
    for _ in range(2):  # the sweeper runs every minute
        report = sweep(app, cfg)
        notify_escalations(n, lambda which: ("ops-bob",), report.escalations, report.storms)
    clock.advance(minutes=30)
    report = sweep(app, cfg)
    notify_escalations(n, lambda which: ("ops-bob",), report.escalations, report.storms)
    deferral_notices = [x for x in chat.sent if x.key.startswith("deferral:")]
    assert [x.key for x in deferral_notices] == [f"deferral:{bf.id}:alert", f"deferral:{bf.id}:incident"]
    assert all("backfill" in x.summary and "Reason: PRIORITY_CONFLICT" in x.facts for x in deferral_notices)
    link = "https://console.example/operations#deferrals"
    assert all(x.link == link and x.approvers == ("ops-bob",) for x in deferral_notices)
    storms = [x.key for x in chat.sent if x.key.startswith("storm:")]  # the queue's storm alert, then incident
    assert len(storms) == len(set(storms)) == 2 and storms[0].endswith(":alert") and storms[1].endswith(":incident")
    recs = bootstrap.decision_log().query(kind="notification")
    assert sorted(r.details["key"] for r in recs if r.details["key"].startswith("deferral:")) == sorted(
        x.key for x in deferral_notices
    )


def test_sweeper_wakes_a_deferral_once_the_blocking_run_ended(deployed, rg_home, policy, clock):
    """A backfill is deferred for an hour behind an EOD run due now; EOD ends sooner, so the sweeper asks
    the gateway again, wakes the run at its first deferral time (its place in Prefect's queue), records
    why, and the run is admitted without waiting for the planned time."""
    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_deferrals import sweep

    # An EOD deployment without history or runtime policy: its reservation has no known end, so the
    # backfill is deferred for the backoff, an hour here (whatever other tests left in the history).
    policy(pool_concurrency_limit=1, backoff_seconds=[3600])
    unplanned = eod_scoring.to_deployment(
        name="eod-unplanned", work_pool_name="releasegate", work_queue_name="critical"
    ).apply()
    with get_client(sync_client=True) as c:
        eod = c.create_flow_run_from_deployment(
            unplanned,
            parameters={"model_name": "credit", "business_date": "2026-11-20"},
            state=Scheduled(scheduled_time=clock.now()),
        )
    bf = create_run(deployed["backfill"], start_date="2026-11-20", end_date="2026-11-20")
    _, deferral = expect_deferred(backfill, bf.id, "PRIORITY_CONFLICT")
    assert deferral.next_evaluation_at == clock.now() + timedelta(hours=1)
    clock.advance(minutes=5)
    assert sweep(bootstrap.app(), load_gateway_config()).woken == []  # EOD is still due: nothing fits
    set_state(eod.id, Completed())  # EOD ended long before the deferral's planned evaluation
    report = sweep(bootstrap.app(), load_gateway_config())
    assert report.woken == [str(bf.id)]
    fr = read(bf.id)
    assert fr.state_type == StateType.SCHEDULED and fr.state.message == "WOKEN PRIORITY_CONFLICT"
    assert fr.state_name == "Woken"  # not "Scheduled": Prefect's late-runs service keeps its name and message
    assert fr.state.state_details.scheduled_time == deferral.first_deferred_at  # keeps its place
    woke = bootstrap.decision_log().query(kind="deferral", subject=f"flow_run:{bf.id}")[-1]
    assert woke.decision_outcome.value == "accept" and "woken early" in woke.decision_rationale
    assert woke.details["next_evaluation_at"] == deferral.next_evaluation_at.isoformat()
    assert sweep(bootstrap.app(), load_gateway_config()).woken == []  # woken once: it is no longer Deferred
    assert execute(backfill, bf.id).is_completed()
    assert bootstrap.scheduling_store().get_deferral(str(bf.id)).status == "admitted"


def test_a_wake_moves_only_the_deferral_the_sweep_read_and_puts_back_a_state_that_came_between(
    deployed, rg_home, policy, clock
):
    """Prefect has no compare-and-set on run states, so the wake re-reads the run, moves it only if it is
    still in the deferral the sweep saw and not due within the margin, and if a state came in between its
    read and its move (here an operator's cancel, the read made stale on purpose), puts that state back."""
    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring
    from releasegate.adapters.prefect_deferrals import WAKE_MARGIN, _move_woken

    policy(pool_concurrency_limit=1, backoff_seconds=[3600])
    unplanned = eod_scoring.to_deployment(
        name="eod-unplanned", work_pool_name="releasegate", work_queue_name="critical"
    ).apply()
    with get_client(sync_client=True) as c:
        c.create_flow_run_from_deployment(
            unplanned,
            parameters={"model_name": "credit", "business_date": "2026-11-20"},
            state=Scheduled(scheduled_time=clock.now()),
        )
    store = bootstrap.scheduling_store()

    def deferred_backfill():
        bf = create_run(deployed["backfill"], start_date="2026-11-20", end_date="2026-11-20")
        expect_deferred(backfill, bf.id, "PRIORITY_CONFLICT")
        return bf, store.get_deferral(str(bf.id)), read(bf.id)

    class StaleRead:  # the real client, whose next read of the run returns what the sweep read
        def __init__(self, client, seen):
            self.client, self.seen = client, seen

        def read_flow_run(self, run_id):
            return self.seen

        def __getattr__(self, name):
            return getattr(self.client, name)

    with get_client(sync_client=True) as c:
        bf, d, seen = deferred_backfill()
        set_state(bf.id, Scheduled(name="Deferred", scheduled_time=d.next_evaluation_at, message="CHANGE_FREEZE"))
        assert not _move_woken(c, d, seen, clock.now())  # re-deferred since the sweep read it
        assert read(bf.id).state.message == "CHANGE_FREEZE"

        bf, d, seen = deferred_backfill()
        almost = seen.next_scheduled_start_time - WAKE_MARGIN + timedelta(seconds=1)
        assert not _move_woken(c, d, seen, almost)  # due within the margin: left to its worker

        set_state(bf.id, Cancelled())  # an operator cancels it after the sweep's re-read
        assert not _move_woken(StaleRead(c, seen), d, seen, clock.now())
        back = read(bf.id)
        assert back.state_type == StateType.CANCELLED  # put back: the wake did not revive it
        history = sorted(c.read_flow_run_states(bf.id), key=lambda st: st.timestamp)
        assert [st.name for st in history[-3:]] == ["Cancelled", "Woken", "Cancelled"]  # Prefect accepted the move

        bf, d, seen = deferred_backfill()
        assert _move_woken(c, d, seen, clock.now())
        assert read(bf.id).state_name == "Woken"


def test_a_deferred_eod_keeps_its_reservation_at_its_next_evaluation(deployed, rg_home, policy, clock):
    """Under the reservation rule a deferred higher-priority run still holds its reservation (at the time
    Prefect will offer it again, not its first expected start), so neither the gate nor the sweeper's
    wake hands its slot to a backfill; a run waiting for an upstream plans no start and holds none, and
    the priority-window rule ignores deferred runs as before."""
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_gate import build_snapshot
    from releasegate.policy.capacity import RunRequest

    eod = create_run(deployed["eod-scoring"], model_name="credit", business_date="2026-11-20")
    nxt = clock.now() + timedelta(minutes=20)
    set_state(eod.id, Scheduled(name="Deferred", scheduled_time=nxt, message="CAPACITY_LIMIT"))
    probe = RunRequest(flow_run_id="", deployment="", queue="bulk")

    def reserved(**changes):
        policy(**changes)
        with get_client(sync_client=True) as c:
            snap = build_snapshot(bootstrap.app(), c, load_gateway_config(), None, probe, clock.now())
        return {u.flow_run_id: u.expected_start for u in snap.upcoming}

    assert reserved(admission="reservation") == {str(eod.id): nxt}
    assert reserved(admission="priority_window") == {}
    set_state(eod.id, Scheduled(name="Deferred", scheduled_time=nxt, message="UPSTREAM_NOT_READY"))
    assert reserved(admission="reservation") == {}
    far = clock.now() + timedelta(hours=5)  # beyond the reservation horizon (4 h)
    set_state(eod.id, Scheduled(name="Deferred", scheduled_time=far, message="CHANGE_FREEZE"))
    assert reserved(admission="reservation") == {}


def test_a_run_in_a_paused_queue_reserves_nothing_until_the_queue_is_resumed(deployed, rg_home, policy, clock):
    """Prefect offers a paused work queue's runs to no worker, so an EOD run due in a paused ``critical``
    queue would hold its slots for as long as the pause lasts: the gateway leaves it out of the
    reservations (and the priority window) until the queue is resumed."""
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_gate import build_snapshot
    from releasegate.policy.capacity import RunRequest

    with get_client(sync_client=True) as c:
        eod = c.create_flow_run_from_deployment(
            deployed["eod-scoring"],
            parameters={"model_name": "credit", "business_date": "2026-11-20"},
            state=Scheduled(scheduled_time=clock.now() + timedelta(minutes=5)),
        )
    probe = RunRequest(flow_run_id="", deployment="", queue="bulk")

    def reserved():
        with get_client(sync_client=True) as c:
            snap = build_snapshot(bootstrap.app(), c, load_gateway_config(), None, probe, clock.now())
        return [u.flow_run_id for u in snap.upcoming]

    def pause(paused: bool):
        with get_client(sync_client=True) as c:
            [q] = c.read_work_queues(
                work_pool_name="releasegate",
                work_queue_filter=WorkQueueFilter(name=WorkQueueFilterName(any_=["critical"])),
            )
            c.update_work_queue(q.id, is_paused=paused)

    for rule in ("reservation", "priority_window"):
        policy(admission=rule)
        assert reserved() == [str(eod.id)]
        pause(True)
        try:
            assert reserved() == [], rule
        finally:
            pause(False)
        assert reserved() == [str(eod.id)]


def test_override_needs_a_ticket_and_starts_the_run(deployed, rg_home, policy, clock):
    from flows.backfill import backfill

    _, bf, _ = defer_backfill_behind_due_eod(deployed, policy, clock)

    runner = CliRunner()
    refused = runner.invoke(app, ["deferrals", "override", str(bf.id), "--by", "ops-bob", "--reason", "late data"])
    assert refused.exit_code == 1 and "ticket" in refused.output
    [rej] = bootstrap.decision_log().query(kind="override")
    assert rej.decision_outcome.value == "reject" and "ticket" in rej.decision_rationale
    assert read(bf.id).state_name == "Deferred"  # nothing moved

    ok = runner.invoke(
        app,
        [
            "deferrals",
            "override",
            str(bf.id),
            "--ticket",
            "CHG-42",
            "--by",
            "ops-bob",
            "--reason",
            "regulator deadline",
        ],
    )
    assert ok.exit_code == 0, ok.output
    granted = bootstrap.decision_log().query(kind="override")[-1]
    assert granted.decision_outcome.value == "override" and granted.details["ticket_ref"] == "CHG-42"
    assert granted.exception_expiry == clock.now() + timedelta(minutes=240)
    fr = read(bf.id)
    assert fr.state_name == "Scheduled" and fr.next_scheduled_start_time <= clock.now() + timedelta(seconds=1)
    # EOD is still due and holds the only slot, but the override admits the backfill.
    assert execute(backfill, bf.id).is_completed()
    listed = runner.invoke(app, ["deferrals", "--all", "--json"])
    assert json.loads(listed.stdout)[0]["status"] == "overridden"


def test_an_override_is_signed_by_someone_on_the_overrides_list_with_their_pinned_key(deployed, rg_home, policy, clock):
    """Overrides are signed grants: not on the `overrides` allow-list, signed with a key that is not the
    granter's pinned key, or with an exception_expiry in the past, each refused naming field and rule,
    recorded, and the run stays deferred; a sealed but unsigned grant admits nothing; a signed one does,
    and `audit verify` re-verifies its signature."""
    from flows.backfill import backfill
    from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
    from releasegate.store.keys import create_key, key_path

    _, bf, _ = defer_backfill_behind_due_eod(deployed, policy, clock)
    keys = bootstrap.settings().key_dir
    create_key(keys, "mallory")
    runner = CliRunner()
    base = ["deferrals", "override", str(bf.id), "--ticket", "CHG-9", "--reason", "regulator deadline"]
    cases = [
        (["--by", "mallory"], "by: 'mallory' is not on the overrides allow-list"),
        (["--by", "ops-lena", "--key", str(key_path(keys, "mallory"))], "key: the grant is signed with a key"),
        (["--by", "ops-bob", "--expires-in-minutes", "-5"], "exception_expiry: must lie in the future"),
    ]
    for args, said in cases:
        out = runner.invoke(app, base + args)
        assert out.exit_code == 1 and said in " ".join(out.output.split()), out.output
    refused = bootstrap.decision_log().query(kind="override")
    assert len(refused) == 3 and all(r.decision_outcome is DecisionOutcome.reject for r in refused)
    assert read(bf.id).state_name == "Deferred"

    bootstrap.decision_log().append(  # a sealed grant without a signature (as written before signed grants)
        NewDecision(
            decision_kind=DecisionKind.override,
            decision_outcome=DecisionOutcome.override,
            decision_rationale="deferral overridden by ops-bob: r",
            subject=f"flow_run:{bf.id}",
            actor="ops-bob",
            exception_expiry=clock.now() + timedelta(hours=1),
            details={"ticket_ref": "CHG-1", "reason": "r"},
        )
    )
    set_state(bf.id, Scheduled(scheduled_time=datetime.now(UTC)))
    expect_deferred(backfill, bf.id, "PRIORITY_CONFLICT")  # the unsigned grant admitted nothing

    ok = runner.invoke(app, base + ["--by", "ops-bob"])
    assert ok.exit_code == 0, ok.output
    granted = bootstrap.decision_log().query(kind="override")[-1]
    assert granted.details["signed_grant"]["subject"] == f"flow_run:{bf.id}" and granted.details["signature"]
    assert execute(backfill, bf.id).is_completed()
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0 and "1 signed exceptions/overrides" in " ".join(verified.output.split())


# ------------------------------------------------------------------------------- event intake
def partition_event(i: int, business_date: str = "2026-11-20", dataset: str = "positions") -> dict:
    return {
        "event_id": f"evt-{i}-{random.random()}",
        "event_type": "data.partition.arrived@v1",
        "occurred_at": "2026-11-23T07:00:00Z",
        "producer": "lake-loader",
        "idempotency_key": f"partition:{dataset}:{i}",
        "payload": {"dataset": dataset, "business_date": business_date},
    }


def _runs_with_key_prefix(prefix: str) -> int:
    with get_client(sync_client=True) as c:
        runs = read_all_flow_runs(c, deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["backfill"])))
    return sum(1 for r in runs if (r.idempotency_key or "").startswith(prefix))


def test_events_with_30_percent_duplicates_from_8_threads(deployed, rg_home, clock):
    """Correctness of dedupe under concurrency: one run per key. (Throughput is measured by
    bench/intake_bench.py, not here: a 500-event version took 60-170 s on a busy 2-core machine.)"""
    from releasegate.adapters.prefect_runs import send_event

    unique, redeliveries = 70, 30
    events = [partition_event(i) for i in range(unique)]
    deliveries = events + [
        dict(random.Random(i).choice(events), event_id=f"redelivery-{i}") for i in range(redeliveries)
    ]
    random.Random(7).shuffle(deliveries)
    results, errors = [], []
    lock = threading.Lock()

    def worker(chunk):
        try:
            out = [send_event(bootstrap.app(), e) for e in chunk]
            with lock:
                results.extend(out)
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(deliveries[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    created = [r for r in results if r.status == "created"]
    dupes = [r for r in results if r.status == "duplicate"]
    assert len(results) == unique + redeliveries and len(created) == unique and len(dupes) == redeliveries
    by_key = {}
    for r in created:
        by_key.setdefault(r.flow_run_id, 0)
        by_key[r.flow_run_id] += 1
    assert len(by_key) == unique  # one run per key
    assert {r.flow_run_id for r in dupes} <= set(by_key)
    assert _runs_with_key_prefix("backfill:partition:positions:") == unique  # what Prefect holds
    # One accept decision (written before its run) and one "created" record per key (intake.py).
    statuses = [r.details["status"] for r in bootstrap.decision_log().query(kind="event", limit=10_000)]
    assert len(statuses) == 2 * unique and statuses.count("accepted") == statuses.count("created") == unique
    assert bootstrap.decision_log().verify().ok


def test_conflicting_redelivery_is_refused_and_recorded(deployed, rg_home, clock, tmp_path):
    first = partition_event(9001)
    conflict = dict(first, payload={"dataset": "positions", "business_date": "2026-11-21"})
    path = tmp_path / "events.json"
    runner = CliRunner()

    path.write_text(json.dumps(first))
    created = runner.invoke(app, ["events", "send", str(path), "--json"])
    assert created.exit_code == 0, created.output
    out = json.loads(created.stdout)
    assert out["status"] == "created" and out["flow_run_id"]
    assert read(out["flow_run_id"]).parameters == {"start_date": "2026-11-20", "end_date": "2026-11-20"}

    dup = json.loads(runner.invoke(app, ["events", "send", str(path), "--json"]).stdout)
    assert dup == {"status": "duplicate", "flow_run_id": out["flow_run_id"], "deployment": "backfill"}

    path.write_text(json.dumps(conflict))
    refused = runner.invoke(app, ["events", "send", str(path), "--json"])
    assert refused.exit_code == 1
    body = json.loads(refused.stdout)
    assert body["status"] == "refused" and body["flow_run_id"] is None
    assert "different payload" in body["reason"]
    rejects = [r for r in bootstrap.decision_log().query(kind="event") if r.decision_outcome.value == "reject"]
    assert len(rejects) == 1 and rejects[0].details["idempotency_key"] == first["idempotency_key"]
    assert _runs_with_key_prefix(f"backfill:{first['idempotency_key']}") == 1


def test_invalid_event_is_refused_naming_the_field(deployed, rg_home, clock, tmp_path):
    bad = dict(partition_event(9100), event_type="data.partition.arrived@v7")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = CliRunner().invoke(app, ["events", "send", str(path), "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "refused" and "event_type" in body["reason"] and "v7" in body["reason"]
    assert bootstrap.scheduling_store().lookup("backfill", bad["idempotency_key"]) is None  # nothing claimed


def test_event_for_an_undeployed_deployment_says_what_to_run(deployed, rg_home, clock, tmp_path, monkeypatch):
    routes = tmp_path / "routes.yaml"
    route = {"event_type": "data.partition.arrived@v1", "deployment": "nightly"}
    routes.write_text(yaml.safe_dump({"routes": [route]}))
    monkeypatch.setenv("RELEASEGATE_EVENT_ROUTES", str(routes))
    path = tmp_path / "event.json"
    path.write_text(json.dumps(partition_event(9200)))
    result = CliRunner().invoke(app, ["events", "send", str(path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "'nightly' is not deployed on the Prefect API" in result.output and "releasegate deploy" in result.output
    assert bootstrap.scheduling_store().lookup("nightly", "partition:positions:9200") is None  # nothing claimed
    assert bootstrap.decision_log().query(kind="event") == []  # nothing recorded


# ------------------------------------------------------------------------------ infra, report
def test_infra_up_is_idempotent(deployed, rg_home):
    result = CliRunner().invoke(app, ["infra", "up"])
    assert result.exit_code == 0, result.output
    for obj in ("work pool releasegate", "queue critical", "queue bulk"):
        [line] = [ln for ln in result.output.splitlines() if obj in ln]
        assert "unchanged" in line, line
    # the MLflow store and the decision log are made ready before any worker runs a flow
    out = " ".join(result.output.split())
    assert "mlflow tracking store │ ready" in out and "decision log │ ready" in out, out
    with get_client(sync_client=True) as c:
        queues = {q.name: q for q in c.read_work_queues(work_pool_name="releasegate")}
        pool = c.read_work_pool("releasegate")
    assert (queues["critical"].priority, queues["bulk"].priority) == (1, 10)
    assert queues["critical"].concurrency_limit == 2 and pool.concurrency_limit == 4
    with get_client(sync_client=True) as c:  # the atomic admission slots mirror the caps
        assert c.read_global_concurrency_limit_by_name("rg-pool-releasegate").limit == 4
        assert c.read_global_concurrency_limit_by_name("rg-queue-releasegate-bulk").limit == 2


def test_report_prints_kpis(deployed, rg_home, policy, clock):
    from flows.backfill import backfill
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_deferrals import sweep

    eod, bf, _ = defer_backfill_behind_due_eod(deployed, policy, clock)
    set_state(eod.id, Completed())
    clock.advance(minutes=45)
    # EOD ended before its reservation did: the sweeper wakes the backfill (Prefect would otherwise hold
    # it until its planned evaluation, which follows EOD's expected duration, up to its timeout)
    assert sweep(bootstrap.app(), load_gateway_config()).woken == [str(bf.id)]
    # the KPI report is under test, not admission: a wider pool, so that runs other modules' schedules
    # created in the shared test server cannot hold the one slot when the woken backfill starts
    policy(pool_concurrency_limit=4)
    assert execute(backfill, bf.id).is_completed()
    result = CliRunner().invoke(app, ["report", "--json", "--since", (clock.now() - timedelta(hours=2)).isoformat()])
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    declared = len(yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"])
    assert rep["deployments"] == rep["deployments_with_policy"] == declared
    assert rep["deferrals"] == 1 and rep["deferral_minutes_max"] == 45.0 and rep["deferrals_over_sla"] == 1
    assert rep["started_runs"] >= 2


def test_infra_up_applies_the_sla_automations(deployed, rg_home):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    runner = CliRunner()
    first = runner.invoke(app, ["infra", "up", "--oncall-webhook", "http://127.0.0.1:9/oncall"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["infra", "up", "--oncall-webhook", "http://127.0.0.1:9/oncall"])
    assert again.exit_code == 0 and "skipped" not in again.output
    block_id = CustomWebhookNotificationBlock.load("releasegate-oncall")._block_document_id
    with get_client(sync_client=True) as c:
        for name, event in (
            ("releasegate-deferral-sla-breached", "releasegate.deferral.sla-breached"),
            ("releasegate-incident-opened", "releasegate.incident.opened"),
        ):
            [auto] = c.read_automations_by_name(name)  # updated, never duplicated
            assert auto.trigger.expect == {event}
            assert auto.actions[0].type == "send-notification" and auto.actions[0].block_document_id == block_id


def test_runs_waiting_behind_a_cap_are_deferrals_with_a_predicted_start(deployed, rg_home, policy, clock):
    """Backfills due while the bulk queue's two slots are taken: no worker takes them (Prefect holds them
    behind the cap), so the gateway never sees them. The sweeper records each as a QUEUE_LIMIT deferral
    once, from when it was due, with its predicted start, and leaves its Prefect state alone."""
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_deferrals import sweep

    policy(pool_concurrency_limit=4)  # bulk keeps its cap of 2
    without_history(deployed["backfill"])  # each backfill is expected to run for its policy's timeout
    holders = [create_run(deployed["backfill"], start_date="2026-11-20", end_date="2026-11-20") for _ in range(2)]
    for h in holders:
        run_admitted(h.id)
    waiting = [
        create_run(deployed["backfill"], start_date="2026-11-2" + str(i), end_date="2026-11-2" + str(i))
        for i in range(3)
    ]
    states_before = {str(w.id): read(w.id).state_id for w in waiting}
    clock.advance(minutes=3)
    cfg = load_gateway_config()
    report = sweep(bootstrap.app(), cfg)
    assert sorted(c["flow_run_id"] for c in report.cap_waits) == sorted(str(w.id) for w in waiting)
    assert {c["reason_code"] for c in report.cap_waits} == {"QUEUE_LIMIT"}
    store = bootstrap.scheduling_store()
    for w in waiting:
        d = store.get_deferral(str(w.id))
        assert d.status == "open" and d.reason_code == "QUEUE_LIMIT"
        assert d.first_deferred_at <= read(w.id).expected_start_time + timedelta(seconds=1)  # since it was due
        assert d.next_evaluation_at > clock.now()  # the predicted start lies ahead
        assert read(w.id).state_id == states_before[str(w.id)]  # Prefect's state untouched
    # the third waits for a slot that the first two free up: predicted later
    predicted = sorted(store.get_deferral(str(w.id)).next_evaluation_at for w in waiting)
    assert predicted[2] > predicted[0]
    assert sweep(bootstrap.app(), cfg).cap_waits == []  # once per wait, not per sweep
    recs = [r for r in bootstrap.decision_log().query(kind="deferral") if r.details.get("held_by") == "prefect-cap"]
    assert len(recs) == 3 and all(r.details["predicted_start_at"] for r in recs)
    res = CliRunner().invoke(app, ["deferrals", "--json"])
    assert res.exit_code == 0, res.output
    listed = {d["flow_run_id"]: d for d in json.loads(res.stdout)}
    assert all(
        listed[str(w.id)]["reason_code"] == "QUEUE_LIMIT" and listed[str(w.id)]["predicted_start_at"] for w in waiting
    )
    # `watch` shows the wait and its predicted start (Prefect shows only Scheduled or Late)
    last = max(waiting, key=lambda w: store.get_deferral(str(w.id)).next_evaluation_at)
    res = CliRunner().invoke(app, ["watch", str(last.id), "--timeout", "0"])
    assert res.exit_code == 3, res.output  # still waiting at the timeout
    predicted_at = store.get_deferral(str(last.id)).next_evaluation_at
    assert "deferred (QUEUE_LIMIT): waits for a slot, the queue cap is full" in res.output
    assert f"predicted start {predicted_at:%Y-%m-%d %H:%M:%S} UTC" in res.output
