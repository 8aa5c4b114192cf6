"""The protected champion: which version each prod alias *should* point at, from the decision log.

MLflow cannot protect an alias (mlflow#24742) and its webhooks carry no actor, so anyone with registry
access can move ``champion`` by hand. releasegate derives, from its own sealed records only, where
``champion`` and ``archive`` must be, and names every alias that is somewhere else:

* a final promotion of ``prod_version`` that replaced ``previous_champion``: champion = prod_version,
  archive = previous_champion (when there was one; ``services.release`` sets it exactly so);
* a final *full* rollback to ``new_version``: champion = new_version, archive = none (the archived version
  serves again and ``services.rollback`` deletes the alias); a canary rollback moves neither.

Pure: the records are passed in, in log order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

GUARDED = ("champion", "archive")


@dataclass(frozen=True)
class Expected:
    """Where the guarded aliases must point (None: the alias must not exist), and the record behind it."""

    champion: str | None
    archive: str | None
    because: str  # decision_id of the record that set them
    at: datetime

    def of(self, alias: str) -> str | None:
        return self.champion if alias == "champion" else self.archive


@dataclass(frozen=True)
class AliasFinding:
    alias: str
    found: str | None
    expected: str | None
    because: str

    def __str__(self) -> str:
        where = f"v{self.found}" if self.found else "nowhere"
        want = f"v{self.expected}" if self.expected else "no version"
        return (
            f"alias {self.alias} points at {where}, but the decision log puts it at {want} "
            f"(record {self.because}): moved outside releasegate"
        )


@dataclass(frozen=True)
class AliasEvent:
    """A sealed final promotion or rollback, reduced to what it did to the aliases."""

    decision_id: str
    at: datetime
    kind: str  # promotion | rollback
    details: dict[str, Any]


def expected_aliases(events: list[AliasEvent]) -> Expected | None:
    """Replay the final promotions and rollbacks (in log order); None when releasegate never set them."""
    state: Expected | None = None
    for e in events:
        d = e.details
        if e.kind == "promotion":
            prev = d.get("previous_champion")
            new = str(d["prod_version"])
            archive = str(prev) if prev and str(prev) != new else (state.archive if state else None)
            state = Expected(champion=new, archive=archive, because=e.decision_id, at=e.at)
        elif e.kind == "rollback" and d.get("method") == "full" and d.get("new_version"):
            state = Expected(champion=str(d["new_version"]), archive=None, because=e.decision_id, at=e.at)
    return state


def findings(expected: Expected | None, found: dict[str, str]) -> list[AliasFinding]:
    """Every guarded alias that is not where the log puts it. A model releasegate never promoted has no
    expectation: its aliases are not releasegate's to judge (only a champion there is reported)."""
    if expected is None:
        champion = found.get("champion")
        if champion is None:
            return []
        return [AliasFinding("champion", champion, None, "none: no sealed promotion of this model")]
    return [
        AliasFinding(alias, found.get(alias), expected.of(alias), expected.because)
        for alias in GUARDED
        if found.get(alias) != expected.of(alias)
    ]


def promotion_steps(
    expected: Expected | None, previous_champion: str | None, copy: str | None
) -> list[dict[str, str | None]]:
    """The guarded alias states an interrupted binary promotion can have left behind, and no other: before
    its first move (where the log puts them), after it archived the champion it replaces, after it moved
    ``champion`` to the copy it made (``services.release`` moves the archive first, then the champion).
    ``copy`` is the prod version tagged with the pending record's id (None: it never copied)."""
    before = {"champion": expected.champion if expected else None, "archive": expected.archive if expected else None}
    prev = str(previous_champion) if previous_champion else None
    states = [before]
    if prev and prev != copy:
        states.append({"champion": before["champion"], "archive": prev})
    if copy is not None:
        states.append({"champion": copy, "archive": prev if prev and prev != copy else before["archive"]})
    return states


def rollback_steps(
    expected: Expected | None, method: str | None, previous_version: str | None, new_version: str | None
) -> list[dict[str, str | None]]:
    """The guarded alias states an interrupted full rollback can have left: before its first move, after
    it moved ``champion`` to its target, after it deleted the ``archive`` alias that pointed at the target.
    A canary rollback moves neither guarded alias."""
    before = {"champion": expected.champion if expected else None, "archive": expected.archive if expected else None}
    states = [before]
    if method == "full" and new_version:
        states.append({"champion": str(new_version), "archive": before["archive"]})
        if before["archive"] == str(new_version):
            states.append({"champion": str(new_version), "archive": None})
    return states


def left_by(expected: Expected | None, found: dict[str, str], states: list[dict[str, str | None]]) -> bool:
    """Whether ``found`` is one of ``states`` (a model releasegate never promoted: its champion only)."""
    judged = GUARDED if expected is not None else ("champion",)
    return any(all(found.get(a) == s.get(a) for a in judged) for s in states)
