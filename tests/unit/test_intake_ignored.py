"""A registration into staging/prod that no route acts on is counted, not logged as a rejected event;
an event type without any route is still a refusal. Real SQLite decision log and store."""

from datetime import UTC, datetime

from releasegate.services.intake import Route, ignored_counts, intake_event
from releasegate.store.decision_log import DecisionLog
from releasegate.store.scheduling_store import SchedulingStore

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
ROUTES = [
    Route(
        event_type="registry.model_version.created@v1",
        deployment="retrain",
        match={"source_environment": "dev"},
        parameters={"model_name": "{{ payload.model_name }}"},
    )
]


def created(env: str, version: str, event_type: str = "registry.model_version.created@v1") -> dict:
    return {
        "event_id": f"registry-watcher:{env}.m:{version}",
        "event_type": event_type,
        "occurred_at": "2026-11-23T07:00:00Z",
        "producer": "registry-watcher",
        "idempotency_key": f"model-version:{env}.m:{version}",
        "payload": {"model_name": "m", "version": version, "source_environment": env},
    }


def test_registrations_nothing_routes_are_counted_not_recorded(sqlite_url):
    log, store = DecisionLog(sqlite_url), SchedulingStore(sqlite_url)
    runs: list[str] = []

    def create_run(deployment, parameters, key):
        runs.append(key)
        return f"run-{len(runs)}"

    def intake(raw):
        return intake_event(raw, routes=ROUTES, store=store, log=log, create_run=create_run, now=NOW)

    before = ignored_counts().get("registry.model_version.created@v1", 0)
    for env, version in (("staging", "1"), ("prod", "1"), ("staging", "2")):
        result = intake(created(env, version))
        assert (result.status, result.decision_id) == ("ignored", None)
    assert log.query(kind="event") == [] and runs == []  # no `event reject` noise in the audit log
    assert ignored_counts()["registry.model_version.created@v1"] == before + 3

    assert intake(created("dev", "3")).status == "created"  # the routed one still goes through
    refused = intake(created("dev", "4", event_type="registry.model_version.deleted@v1"))
    assert refused.status == "refused" and refused.decision_id is not None  # no route at all: misconfigured
    records = log.query(kind="event")
    assert [r.decision_outcome.value for r in records].count("reject") == 1  # the refusal alone
    assert not any("ignored" in r.decision_rationale for r in records)
