"""Where champion and archive must point, replayed from sealed promotions and rollbacks (pure)."""

from datetime import UTC, datetime, timedelta

from releasegate.policy.alias_guard import AliasEvent, expected_aliases, findings

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _promotion(i: int, version: str, previous: str | None) -> AliasEvent:
    return AliasEvent(
        f"p{i}", T0 + timedelta(hours=i), "promotion", {"prod_version": version, "previous_champion": previous}
    )


def _rollback(i: int, to: str, method: str = "full") -> AliasEvent:
    return AliasEvent(f"r{i}", T0 + timedelta(hours=i), "rollback", {"method": method, "new_version": to})


def test_replay_of_promotions_and_rollbacks():
    assert expected_aliases([]) is None
    first = expected_aliases([_promotion(1, "1", None)])
    assert (first.champion, first.archive, first.because) == ("1", None, "p1")
    second = expected_aliases([_promotion(1, "1", None), _promotion(2, "2", "1")])
    assert (second.champion, second.archive) == ("2", "1")
    back = expected_aliases([_promotion(1, "1", None), _promotion(2, "2", "1"), _rollback(3, "1")])
    assert (back.champion, back.archive, back.because) == ("1", None, "r3")
    canary = expected_aliases([_promotion(1, "1", None), _promotion(2, "2", "1"), _rollback(3, "3", "canary")])
    assert (canary.champion, canary.archive, canary.because) == ("2", "1", "p2")
    again = expected_aliases([_promotion(1, "2", None), _promotion(2, "2", "2")])  # re-promoting the champion
    assert (again.champion, again.archive) == ("2", None)


def test_findings_name_each_misplaced_alias():
    exp = expected_aliases([_promotion(1, "1", None), _promotion(2, "2", "1")])
    assert findings(exp, {"champion": "2", "archive": "1"}) == []
    [f] = findings(exp, {"champion": "3", "archive": "1"})
    assert (f.alias, f.found, f.expected, f.because) == ("champion", "3", "2", "p2")
    assert str(f).startswith("alias champion points at v3, but the decision log puts it at v2 (record p2)")
    [f] = findings(exp, {"champion": "2"})
    assert (f.alias, f.found, f.expected) == ("archive", None, "1") and "points at nowhere" in str(f)
    [f] = findings(None, {"champion": "4"})
    assert f.expected is None and "no sealed promotion" in f.because
    assert findings(None, {"staging": "4"}) == []


def test_an_interrupted_promotion_excuses_only_the_states_its_own_moves_lead_to():
    from releasegate.policy.alias_guard import left_by, promotion_steps, rollback_steps

    log = expected_aliases([_promotion(1, "1", None), _promotion(2, "2", "1")])  # champion 2, archive 1
    steps = promotion_steps(log, previous_champion="2", copy="4")
    assert steps == [
        {"champion": "2", "archive": "1"},  # before its first move
        {"champion": "2", "archive": "2"},  # the champion it replaces archived
        {"champion": "4", "archive": "2"},  # its copy champion
    ]
    assert left_by(log, {"champion": "4", "archive": "2"}, steps)
    assert not left_by(log, {"champion": "3", "archive": "2"}, steps)  # a version it never copied
    assert not left_by(log, {"champion": "4", "archive": "1"}, steps)  # not an order it moves in
    assert not left_by(log, {"champion": "2"}, steps)  # the archive deleted
    no_copy_yet = promotion_steps(log, previous_champion="2", copy=None)
    assert not left_by(log, {"champion": "4", "archive": "2"}, no_copy_yet)
    first = promotion_steps(None, previous_champion=None, copy="1")  # a first release
    assert left_by(None, {"champion": "1"}, first) and not left_by(None, {"champion": "7"}, first)
    back = rollback_steps(log, "full", previous_version="2", new_version="1")
    assert left_by(log, {"champion": "1"}, back) and left_by(log, {"champion": "1", "archive": "1"}, back)
    assert not left_by(log, {"champion": "3", "archive": "1"}, back)
    assert rollback_steps(log, "canary", "2", "2") == [{"champion": "2", "archive": "1"}]
