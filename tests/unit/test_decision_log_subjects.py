"""The decision log read by a list of subjects in one query (the console's inbox restores every listed
promotion at once): the records of any listed subject, in log order, the same as one query per subject
would give; a long list read in chunks; sealed and forged records told apart as ``trusted`` does."""

import pytest

from releasegate.decisions import DecisionKind
from releasegate.store import decision_log
from releasegate.store.decision_log import DecisionLog
from releasegate.store.trust import SealedDecisionLog
from tests.support.records import deferral, promotion


def test_records_of_listed_subjects_come_in_log_order(clock, sqlite_url):
    log = DecisionLog(sqlite_url, clock=clock)
    for i in (0, 1, 2, 1, 3, 0):
        log.append(deferral(i))
    found = log.query(subjects=["flow_run:run-1", "flow_run:run-0", "flow_run:run-9"])
    assert [r.details["i"] for r in found] == [0, 1, 1, 0]
    assert found == [r for r in log.query() if r.subject in ("flow_run:run-0", "flow_run:run-1")]
    assert [r.details["i"] for r in log.query(subjects=["flow_run:run-0", "flow_run:run-1"], newest_first=True)] == [
        0,
        1,
        1,
        0,
    ]
    assert log.query(subjects=[]) == []  # an empty list asks for nothing, not for everything


def test_a_long_list_is_read_in_chunks_with_the_same_answer(clock, sqlite_url, monkeypatch):
    log = DecisionLog(sqlite_url, clock=clock)
    for i in range(12):
        log.append(deferral(i % 7))
    log.append(promotion(subject="flow_run:run-3"))
    subjects = [f"flow_run:run-{i}" for i in (6, 5, 4, 3, 2, 1, 0, 3)]
    whole = log.query(subjects=subjects)
    monkeypatch.setattr(decision_log, "SUBJECTS_PER_QUERY", 2)
    assert log.query(subjects=subjects) == whole and len(whole) == 13
    assert log.query(subjects=subjects, newest_first=True) == whole[::-1]
    assert log.query(subjects=subjects, limit=3) == whole[:3]
    assert log.query(subjects=subjects, newest_first=True, limit=2) == whole[::-1][:2]
    only = log.query(subjects=subjects, kind=DecisionKind.promotion)
    assert [r.decision_kind for r in only] == [DecisionKind.promotion]


def test_trusted_by_subjects_splits_sealed_from_forged(clock, sqlite_url):
    sealed = SealedDecisionLog(sqlite_url, clock=clock, key_loader=lambda: b"k" * 32)
    sealed.append(promotion(subject="promotion:a"))
    DecisionLog(sqlite_url, clock=clock).append(promotion(subject="promotion:b"))  # around the service path
    sealed.append(deferral(1))
    good, forged = sealed.trusted(subjects=["promotion:a", "promotion:b", "flow_run:run-1"])
    assert [r.subject for r in good] == ["promotion:a", "flow_run:run-1"]
    assert [r.subject for r in forged] == ["promotion:b"]


@pytest.mark.parametrize("subjects", [["x"], ("x",), iter(["x"]), {"x": 1}])
def test_any_iterable_of_subjects_is_taken(subjects, clock, sqlite_url):
    log = DecisionLog(sqlite_url, clock=clock)
    log.append(deferral(0).model_copy(update={"subject": "x"}))
    assert len(log.query(subjects=subjects)) == 1
