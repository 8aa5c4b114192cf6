"""The approvals desk's reads: the paused runs are read once and kept while nothing changed (the count
of paused runs, the decision log's head), read again when something did; the runs on a page are always
read again, and one that no longer waits for the role is never shown. The runs here are in-memory
stand-ins for what the Prefect adapter returns (their views); the log is a real sealed SQLite log."""

from datetime import UTC, datetime, timedelta

from releasegate.adapters.prefect_manual import RunView
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.handshake import Role
from releasegate.services.approval_desk import PrefectApprovalDesk
from releasegate.store.trust import SealedDecisionLog
from tests.support.records import deferral

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def view(n: int, role: str = "risk") -> RunView:
    return RunView(
        id=f"00000000-0000-0000-0000-{n:012d}",
        name=f"run-{n}",
        deployment="promotion/promotion",
        parameters={"model_name": "credit", "candidate_version": str(n), "requested_by": "ml-engineer"},
        state_type="PAUSED",
        state_name="Paused",
        message="",
        scheduled_time=None,
        awaiting_role=role,
        final=False,
        completed=False,
        paused_since=T0 + timedelta(minutes=n),
    )


class Runs:
    """What Prefect holds now: run views by id; counts the full reads."""

    def __init__(self, views: list[RunView]) -> None:
        self.now = {v.id: v for v in views}
        self.full_reads = 0

    def paused(self) -> list[RunView]:
        self.full_reads += 1
        return sorted(self.now.values(), key=lambda v: v.paused_since or T0)

    def among(self, ids: list[str]) -> tuple[int, list[RunView]]:
        return len(self.now), [self.now[i] for i in ids if i in self.now]


def _no_refusal(*args, **kwargs) -> str:
    raise AssertionError("these reads record no refusal")


def desk(runs: Runs, log: SealedDecisionLog, clock: list[float]) -> PrefectApprovalDesk:
    config = ApproverConfig(pm=["pm-anna"], risk=["risk-carla"])
    return PrefectApprovalDesk(
        log,
        paused=runs.paused,
        among=runs.among,
        resume=lambda run_id, run_input: None,
        config=lambda: config,
        model_spec=lambda model: None,
        version_users=lambda model, version: [],
        record_approval=_no_refusal,
        now=lambda: clock[0],
    )


def test_the_paused_runs_are_kept_until_the_count_or_the_log_changes_or_they_age(clock, sqlite_url):
    log = SealedDecisionLog(sqlite_url, clock=clock, key_loader=lambda: b"k" * 32)
    log.append(deferral(0))
    runs, now = Runs([view(n) for n in range(1, 8)] + [view(20, "pm")]), [0.0]
    d = desk(runs, log, now)
    items, total = d.page([Role.risk], 0, 5)
    assert total == 7 and [i.run_id for i in items] == [view(n).id for n in range(1, 6)]
    assert all(i.awaiting is Role.risk for i in items)
    d.page([Role.risk], 5, 5)
    assert runs.full_reads == 1  # nothing changed: the kept read
    log.append(deferral(1))
    assert d.page([Role.risk], 5, 5)[1] == 7 and runs.full_reads == 2  # the log's head moved
    runs.now[view(30).id] = view(30)
    assert d.page([Role.risk], 0, 5)[1] == 8 and runs.full_reads == 3  # one more paused run
    now[0] = 31.0
    d.page(None, 0, 5)
    assert runs.full_reads == 4  # older than max_age_s


def test_a_shown_run_that_no_longer_waits_for_the_role_is_not_shown(clock, sqlite_url):
    log = SealedDecisionLog(sqlite_url, clock=clock, key_loader=lambda: b"k" * 32)
    log.append(deferral(0))
    runs, now = Runs([view(n) for n in range(1, 4)]), [0.0]
    d = desk(runs, log, now)
    d.page([Role.risk], 0, 5)
    runs.now[view(2).id] = view(2, "compliance")  # resumed and paused again, nothing recorded, same count
    items, total = d.page([Role.risk], 0, 5)
    assert [i.run_id for i in items] == [view(1).id, view(3).id] and total == 2 and runs.full_reads == 2
    assert d.item(view(2).id).awaiting is Role.compliance
    del runs.now[view(3).id]
    assert d.item(view(3).id) is None
