"""A deferral storm is one incident per queue: opened past the SLA, escalated once, closed when drained."""

from datetime import UTC, datetime, timedelta

from releasegate.policy.deferrals import SlaState, storm_change

NOW = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def test_hundreds_of_deferrals_open_one_incident_per_level():
    firsts = [ago(m % 70) for m in range(300)]  # 300 runs deferred over the last 70 minutes
    nexts = [NOW + timedelta(minutes=m % 90) for m in range(300)]
    opened = storm_change("bulk", firsts, nexts, None, NOW)
    assert opened is not None and opened.state == "incident" and opened.count == 300
    assert opened.oldest == ago(69) and opened.drain_at == NOW + timedelta(minutes=89)
    # while it stays open at that level, nothing more, however many runs come and go
    assert storm_change("bulk", firsts[:10], nexts[:10], SlaState.incident, NOW) is None
    assert storm_change("bulk", [], [], SlaState.incident, NOW).state == "closed"
    assert storm_change("bulk", [], [], None, NOW) is None


def test_a_storm_opens_at_alert_escalates_once_and_never_goes_down_while_open():
    assert storm_change("bulk", [ago(29)], [NOW], None, NOW) is None  # within the SLA
    alert = storm_change("bulk", [ago(31), ago(5)], [NOW, NOW], None, NOW)
    assert alert is not None and alert.state == "alert" and alert.waited_minutes == 31
    assert storm_change("bulk", [ago(45)], [NOW], SlaState.alert, NOW) is None
    assert storm_change("bulk", [ago(61)], [NOW], SlaState.alert, NOW).state == "incident"
    # the oldest run started; the younger ones are under 30 min: the incident stays open until drained
    assert storm_change("bulk", [ago(10)], [NOW], SlaState.incident, NOW) is None
    text = alert.explanation(150, 20)
    assert "2 deferred run(s)" in text and "recommends a pool of 150 (configured 20)" in text
