"""Trigger contracts: accepted inputs, refused inputs with the field named, never a crash."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from releasegate.policy.triggers import (
    EVENT_SCHEMAS,
    EventEnvelope,
    ManualTrigger,
    ReasonCode,
    ScheduleTrigger,
)

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

GOOD_EVENT = {
    "event_id": "evt-1",
    "event_type": "data.partition.arrived@v1",
    "occurred_at": "2026-11-23T07:00:00Z",
    "producer": "lake-loader",
    "idempotency_key": "partition:positions:2026-11-20",
    "payload": {"dataset": "positions", "business_date": "2026-11-20"},
}
GOOD_SCHEDULE = {
    "deployment_id": "eod-scoring",
    "schedule": {"kind": "cron", "cron": "30 18 * * 1-5"},
    "timezone": "Europe/Zurich",
    "effective_from": "2026-11-01T00:00:00+01:00",
}
GOOD_MANUAL = {"requested_by": "alice", "reason_code": "governance_run"}


def _fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


# ------------------------------------------------------------------------------------- events
def test_event_accepted_and_payload_typed():
    ev = EventEnvelope.model_validate(GOOD_EVENT)
    assert ev.payload == {"dataset": "positions", "business_date": "2026-11-20"}
    assert ev.typed_payload().business_date == date(2026, 11, 20)
    mv = EventEnvelope.model_validate(
        {
            **GOOD_EVENT,
            "event_type": "registry.model_version.created@v1",
            "payload": {"model_name": "credit", "version": "3", "source_environment": "staging"},
        }
    )
    assert mv.payload["version"] == "3"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"event_type": "data.partition.arrived"}, "event_type", "name@vN"),
        ({"event_type": "data.partition.arrived@v9"}, "event_type", "unknown version v9"),
        ({"event_type": "nobody.knows@v1"}, "event_type", "unknown event type"),
        ({"occurred_at": "2026-11-23T07:00:00"}, "occurred_at", "timezone-aware"),
        ({"idempotency_key": "  "}, "idempotency_key", "at least 1"),
        ({"producer": ""}, "producer", "at least 1"),
        ({"payload": {"dataset": "positions"}}, "business_date", "Field required"),
        ({"payload": {"dataset": "p", "business_date": "2026-13-01"}}, "business_date", "date"),
        ({"payload": {"dataset": "p", "business_date": "2026-11-20", "x": 1}}, "x", "Extra inputs"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
    ],
)
def test_event_refused_names_field_and_rule(change, field, words):
    with pytest.raises(ValidationError) as ei:
        EventEnvelope.model_validate({**GOOD_EVENT, **change})
    text = str(ei.value)
    assert field in text and words in text


def test_every_registered_schema_is_versioned():
    for name, versions in EVENT_SCHEMAS.items():
        assert versions and all(v >= 1 for v in versions), name


# ----------------------------------------------------------------------------------- schedule
def test_schedule_accepted_and_fires_in_its_timezone():
    trig = ScheduleTrigger.model_validate(GOOD_SCHEDULE)
    # Friday 2026-11-20 after 18:30 Zurich (UTC+1): the next run is Monday 18:30 Zurich = 17:30 UTC.
    runs = trig.next_runs(datetime(2026, 11, 20, 18, 0, tzinfo=UTC), count=2)
    assert runs == [datetime(2026, 11, 23, 17, 30, tzinfo=UTC), datetime(2026, 11, 24, 17, 30, tzinfo=UTC)]
    # In summer Zurich is UTC+2.
    assert trig.next_runs(datetime(2027, 7, 1, tzinfo=UTC))[0] == datetime(2027, 7, 1, 16, 30, tzinfo=UTC)


def test_schedule_never_fires_before_effective_from():
    trig = ScheduleTrigger.model_validate({**GOOD_SCHEDULE, "effective_from": "2026-12-01T00:00:00Z"})
    assert trig.next_runs(datetime(2026, 11, 1, tzinfo=UTC))[0] == datetime(2026, 12, 1, 17, 30, tzinfo=UTC)
    interval = ScheduleTrigger.model_validate(
        {**GOOD_SCHEDULE, "schedule": {"kind": "interval", "interval_seconds": 3600}}
    )
    first = interval.next_runs(datetime(2026, 11, 1, 0, 30, tzinfo=UTC), count=2)
    assert first == [datetime(2026, 11, 1, 1, 0, tzinfo=UTC), datetime(2026, 11, 1, 2, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"timezone": "Europe/Atlantis"}, "timezone", "IANA"),
        ({"schedule": {"kind": "cron", "cron": "61 * * * *"}}, "cron", "not a valid cron"),
        ({"schedule": {"kind": "cron", "cron": "* * *"}}, "cron", "5-field"),
        ({"schedule": {"kind": "interval", "interval_seconds": 5}}, "interval_seconds", "greater than"),
        ({"effective_from": "2026-11-01T00:00:00"}, "effective_from", "timezone-aware"),
        ({"deployment_id": ""}, "deployment_id", "at least 1"),
    ],
)
def test_schedule_refused(change, field, words):
    with pytest.raises(ValidationError) as ei:
        ScheduleTrigger.model_validate({**GOOD_SCHEDULE, **change})
    assert field in str(ei.value) and words in str(ei.value)


# ------------------------------------------------------------------------------------- manual
def test_manual_accepted():
    m = ManualTrigger.model_validate(GOOD_MANUAL)
    assert m.reason_code is ReasonCode.governance_run and m.target_environment.value == "dev"
    prod = ManualTrigger.model_validate(
        {**GOOD_MANUAL, "target_environment": "prod", "ticket_ref": "CHG-7", "approved_at": "2026-11-23T07:00:00Z"},
        context={"now": NOW},
    )
    assert prod.ticket_ref == "CHG-7"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"target_environment": "prod"}, "needs ticket_ref and approved_at"),
        ({"target_environment": "prod", "ticket_ref": "CHG-1"}, "needs approved_at"),
        ({"target_environment": "prod", "ticket_ref": " ", "approved_at": "2026-11-23T07:00:00Z"}, "needs ticket_ref"),
        ({"reason_code": "because"}, "reason_code"),
        ({"requested_by": " "}, "requested_by"),
        ({"approved_at": "2026-11-23T07:00:00"}, "timezone-aware"),
        ({"approved_at": (NOW + timedelta(hours=2)).isoformat()}, "future"),
    ],
)
def test_manual_refused(change, words):
    with pytest.raises(ValidationError) as ei:
        ManualTrigger.model_validate({**GOOD_MANUAL, **change}, context={"now": NOW})
    assert words in str(ei.value)


# --------------------------------------------------------------------------------- hypothesis
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


def _mutations(good: dict):
    keys = st.sampled_from(sorted(good) + ["unexpected"])
    return st.tuples(keys, json_values, st.booleans())


def _mutate(good, mutation):
    key, value, drop = mutation
    data = dict(good)
    if drop and key in data:
        del data[key]
    else:
        data[key] = value
    return data


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutation=_mutations(GOOD_EVENT))
def test_event_refusals_are_validation_errors(mutation):
    data = _mutate(GOOD_EVENT, mutation)
    try:
        EventEnvelope.model_validate(data)
    except ValidationError as exc:
        assert exc.errors() and _fields(exc)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutation=_mutations(GOOD_SCHEDULE))
def test_schedule_refusals_are_validation_errors(mutation):
    try:
        ScheduleTrigger.model_validate(_mutate(GOOD_SCHEDULE, mutation))
    except ValidationError as exc:
        assert exc.errors()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    mutation=_mutations(
        {**GOOD_MANUAL, "ticket_ref": "T-1", "approved_at": "2026-11-23T07:00:00Z", "target_environment": "prod"}
    )
)
def test_manual_refusals_are_validation_errors(mutation):
    good = {**GOOD_MANUAL, "ticket_ref": "T-1", "approved_at": "2026-11-23T07:00:00Z", "target_environment": "prod"}
    try:
        ManualTrigger.model_validate(_mutate(good, mutation), context={"now": NOW})
    except ValidationError as exc:
        assert exc.errors()


@settings(max_examples=200, deadline=None)
@given(
    cron=st.text(alphabet="0123456789*/-, LW#?abcdefghijklmnopqrstuvwxyzJANFEB", max_size=24), tz=st.text(max_size=20)
)
def test_arbitrary_cron_and_timezone_never_crash(cron, tz):
    try:
        ScheduleTrigger.model_validate({**GOOD_SCHEDULE, "schedule": {"kind": "cron", "cron": cron}, "timezone": tz})
    except ValidationError as exc:
        assert exc.errors()


@settings(max_examples=200, deadline=None)
@given(event_type=st.text(max_size=40))
def test_arbitrary_event_types_never_crash(event_type):
    try:
        EventEnvelope.model_validate({**GOOD_EVENT, "event_type": event_type})
    except ValidationError as exc:
        assert "event_type" in _fields(exc)


def test_schedule_in_the_skipped_and_repeated_hour_follows_the_dst_rule():
    """A 02:30 cron in Europe/Zurich: on 2027-03-28 the clocks jump 02:00 -> 03:00; the contract gives
    the same time as the run-start rule (``schedule_rules.dst_target``) and the docs: ``first`` runs at
    the jump (03:00 CEST = 01:00 UTC), ``shifted`` at 03:30 CEST, ``skip`` not that day. On 2026-10-25
    02:30 happens twice: ``first`` runs at the first pass (00:30 UTC), ``shifted`` at the second."""
    base = {
        **GOOD_SCHEDULE,
        "schedule": {"kind": "cron", "cron": "30 2 * * *"},
        "effective_from": "2026-01-01T00:00:00Z",
    }
    spring = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)

    def runs(rule, after, n=2):
        return ScheduleTrigger.model_validate({**base, "dst": rule}).next_runs(after, count=n)

    assert ScheduleTrigger.model_validate(base).next_runs(spring, 2) == runs("first", spring)
    assert runs("first", spring) == [datetime(2027, 3, 28, 1, 0, tzinfo=UTC), datetime(2027, 3, 29, 0, 30, tzinfo=UTC)]
    assert runs("shifted", spring)[0] == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert runs("skip", spring) == [datetime(2027, 3, 29, 0, 30, tzinfo=UTC), datetime(2027, 3, 30, 0, 30, tzinfo=UTC)]
    autumn = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    assert runs("first", autumn)[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert runs("shifted", autumn)[0] == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    # the run-start rule agrees: a run Prefect fires for that occurrence is moved to the same instant
    from releasegate.policy.schedule_rules import DstRule, dst_target, occurrence_of

    occ = occurrence_of("30 2 * * *", "Europe/Zurich", datetime(2027, 3, 28, 0, 30, tzinfo=UTC))
    assert occ is not None and occ.kind == "missing"
    assert dst_target(occ, DstRule.first) == runs("first", spring)[0]
