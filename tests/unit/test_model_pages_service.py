"""The model pages' read view (``services.model_pages``) over a real SQLite log of a model's history:
the inventory row (champion and since when after a rollback, last promotion, open holds and exceptions,
next EOD, the halt hook), the timeline, the EOD days with thresholds and what they led to, the champion
history; unsealed records are not believed; the queries stay few whatever the number of models."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from releasegate import records
from releasegate.decisions import DecisionOutcome
from releasegate.store.decision_log import DecisionLog
from releasegate.testing.model_history import promote
from tests.support.model_pages import NOW, pages, spec


def test_the_inventory_row_tells_champion_since_when_holds_exceptions_and_next_eod(tmp_path):
    service, h = pages(tmp_path, halted=lambda m: "halted by oncall-otto: INC-7" if m == "credit" else None)
    [row] = service.inventory()
    assert row.name == "credit" and row.risk_tier == "high"
    assert row.owners == ["owner-olga", "owner-omar"]  # the manifest's and the governed config's
    assert row.champion == "1"  # rolled back from v2
    assert row.champion_since == datetime.combine(
        h.rollback_day + timedelta(days=1), datetime.min.time(), UTC
    ) + timedelta(hours=1)
    assert row.last_promotion is not None and (row.last_promotion.version, row.last_promotion.outcome) == ("3", "hold")
    assert row.open_holds == 1 and row.open_exceptions == 1
    # 0 22 * * 1-5 in Berlin after Monday 2026-11-23 08:00 UTC: that evening, 21:00 UTC
    assert row.next_eod == datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
    assert row.eod_schedule == "0 22 * * 1-5 (Europe/Berlin)"
    assert row.halted == "halted by oncall-otto: INC-7"


def test_an_acknowledged_hold_and_an_expired_exception_are_not_open(tmp_path):
    service, h = pages(tmp_path)
    hold = next(r for r in service.log.query(kind="promotion") if r.details.get("promotion_outcome") == "hold")
    service.log.append(
        records.gate_failure_ack(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="held v3 seen; a new candidate is on its way",
            subject=hold.subject,
            actor="owner-olga",
            details={"acknowledged_decision_id": hold.decision_id, "model_name": "credit"},
        )
    )
    later = replace(service, clock=type(service.clock)(NOW + timedelta(days=400)))
    [row] = later.inventory()
    assert row.open_holds == 0 and row.open_exceptions == 0


def test_a_model_page_has_its_days_thresholds_markers_timeline_and_champion_history(tmp_path):
    service, h = pages(tmp_path)
    page = service.page("credit")
    assert page is not None and page.kpi == "roc_auc" and page.kpi_direction == "higher"
    assert len(page.days) == h.days and page.days[0].business_date == h.first.isoformat()
    led = {d.business_date: d.led_to for d in page.days if d.led_to}
    assert led == {h.retrain_day.isoformat(): "retrain", h.rollback_day.isoformat(): "rollback"}
    spike = next(d for d in page.days if d.business_date == h.retrain_day.isoformat())
    assert spike.psi.value == 0.31 and spike.psi.threshold == 0.2 and spike.worst_features[0] == ("income", 0.31)
    drop = next(d for d in page.days if d.business_date == h.rollback_day.isoformat())
    assert drop.kpi.threshold is not None and abs(drop.kpi.threshold - 0.76) < 1e-9  # baseline 0.80 less 5 %
    assert drop.kpi.value is not None and drop.kpi.value < drop.kpi.threshold and drop.kpi.breached
    assert drop.failures.threshold == 0.01 and drop.latency.threshold == 250.0 and drop.missing.threshold == 0.05
    assert [(s.version, s.how) for s in page.champion_history] == [
        ("1", "promotion"),
        ("2", "promotion"),
        ("1", "rollback"),
    ]
    kinds = {e.kind for e in page.timeline}
    assert {"promotion", "approval", "rollback", "retrain", "exception", "monitoring"} <= kinds
    assert [e.at for e in page.timeline] == sorted((e.at for e in page.timeline), reverse=True)
    watched = [e for e in page.timeline if e.kind == "monitoring"]
    assert len(watched) == 2  # only the verdicts that asked for more than watching
    assert page.versions == ["3", "2", "1"]
    assert page.registry_champion is None  # not asked


def test_an_unknown_model_has_no_page_and_the_registry_is_asked_once_for_a_page(tmp_path):
    asked: list[str] = []
    service, _ = pages(tmp_path, champion_now=lambda m: asked.append(m) or "1")
    assert service.page("nope") is None
    page = service.page("credit")
    assert page is not None and page.registry_champion == "1" and asked == ["credit"]
    service.inventory()
    assert asked.count("credit") == 1  # the inventory never asks the registry


def test_an_unsealed_record_is_neither_shown_nor_believed(tmp_path):
    service, _ = pages(tmp_path)
    raw = DecisionLog(service.log.url)  # around the service path: no seal
    promote(raw, "credit", "9", "9", NOW - timedelta(hours=1))  # type: ignore[arg-type]
    [row] = service.inventory()
    assert row.champion == "1"
    page = service.page("credit")
    assert page is not None and all(e.version != "9" for e in page.timeline) and "9" not in page.versions


def test_a_model_of_the_log_only_still_has_a_page_and_the_manifest_gives_the_list(tmp_path):
    service, _ = pages(tmp_path, models=[spec("fraud")])
    assert [r.name for r in service.inventory()] == ["fraud"]
    fraud = service.inventory()[0]
    assert fraud.champion is None and fraud.last_promotion is None and fraud.open_holds == 0
    page = service.page("credit")
    assert page is not None and not page.row.in_manifest and page.row.champion == "1"


def test_the_inventory_asks_a_handful_of_queries_whatever_the_number_of_models(tmp_path):
    many = [spec(f"m{i:03d}") for i in range(120)] + [spec()]
    service, _ = pages(tmp_path, models=many)
    statements: list[str] = []
    event.listen(service.log.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    rows = service.inventory()
    assert len(rows) == 121 and next(r for r in rows if r.name == "credit").champion == "1"
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 5, selects  # promotions, rollbacks, answered holds, exceptions


def test_a_model_page_lists_only_its_newest_decisions_and_verdicts(tmp_path, monkeypatch):
    from releasegate.services import model_pages

    monkeypatch.setattr(model_pages, "TIMELINE", 5)
    monkeypatch.setattr(model_pages, "DAYS", 10)
    service, h = pages(tmp_path)
    page = service.page("credit")
    assert page is not None and len(page.timeline) == 5 and page.timeline[0].kind == "exception"
    assert len(page.days) == 10 and page.days[-1].business_date == (h.first + timedelta(days=h.days - 1)).isoformat()
    assert [s.version for s in page.champion_history] == ["1", "2", "1"]  # every change, however old
