"""A model's promotion history as the decision log tells it: sealed pending records and their ends.

One reading serves the binary step (has this run's promotion ended, and how?), the finishing of
interrupted promotions, the "first release" check of the dossier and the rollback targets, so that all
of them agree on what counts: only records sealed by the service path (``releasegate.store.trust``); an
unsealed promotion record is recorded as a refused forgery by the reader that met it.
"""

from __future__ import annotations

from dataclasses import dataclass

from releasegate.decisions import DecisionRecord
from releasegate.details import PromotionDetails, PromotionStatus
from releasegate.ports import DecisionLog

ENDS = (PromotionStatus.final, PromotionStatus.failed, PromotionStatus.abandoned)


@dataclass(frozen=True)
class PromotionHistory:
    pendings: list[DecisionRecord]  # in log order
    ends: dict[str, DecisionRecord]  # pending decision id -> the record that ended it
    finals: list[DecisionRecord]  # final records that complete a sealed pending one, in log order


def promotion_history(model: str, reader: str, log: DecisionLog) -> PromotionHistory:
    good, forged = log.trusted(kind="promotion")
    log.refuse_forged([f for f in forged if f.details.get("model_name") == model], reader)
    typed = [(r, PromotionDetails.model_validate(r.details)) for r in good]
    mine = [(r, d) for r, d in typed if d.model_name == model]
    pendings = [r for r, d in mine if d.status is PromotionStatus.pending]
    pending_ids = {r.decision_id for r in pendings}
    ended = [(r, d) for r, d in mine if d.status in ENDS and d.pending_decision_id in pending_ids]
    return PromotionHistory(
        pendings=pendings,
        ends={str(d.pending_decision_id): r for r, d in ended},  # the last end wins
        finals=[r for r, d in ended if d.status is PromotionStatus.final and d.prod_version],
    )
