"""A model's promotion history as the decision log tells it: sealed pending records and their ends.

One reading serves the binary step (has this run's promotion ended, and how?), the finishing of
interrupted promotions, the "first release" check of the dossier and the rollback targets, so that all
of them agree on what counts: only records sealed by the service path (``releasegate.trust``); an
unsealed promotion record is recorded as a refused forgery by the reader that met it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..decisions import DecisionRecord
from . import context

ENDS = ("final", "failed", "abandoned")


@dataclass(frozen=True)
class PromotionHistory:
    pendings: list[DecisionRecord]  # in log order
    ends: dict[str, DecisionRecord]  # pending decision id -> the record that ended it
    finals: list[DecisionRecord]  # final records that complete a sealed pending one, in log order


def promotion_history(model: str, reader: str) -> PromotionHistory:
    log = context.decision_log()
    good, forged = log.trusted(kind="promotion")
    log.refuse_forged([f for f in forged if f.details.get("model_name") == model], reader)
    mine = [r for r in good if r.details.get("model_name") == model]
    pendings = [r for r in mine if r.details.get("status") == "pending"]
    pending_ids = {r.decision_id for r in pendings}
    ended = [r for r in mine if r.details.get("status") in ENDS and r.details.get("pending_decision_id") in pending_ids]
    return PromotionHistory(
        pendings=pendings,
        ends={str(r.details["pending_decision_id"]): r for r in ended},  # the last end wins
        finals=[r for r in ended if r.details.get("status") == "final" and r.details.get("prod_version")],
    )
