"""What the console's audit page reads and does (``console_ports.AuditDesk``), over the same pieces as
``releasegate audit``: the log's head, the signed checkpoints (``store.checkpoints``: each checked
against the log, one indexed read each, so the page stays cheap whatever the log's size), a verification
of the chain started on request, and the export of ``audit export``, streamed.

Walking the chain of a large log takes seconds to a minute (``bench/RESULTS.md``), so the page never
walks it by itself: it shows the newest checkpoint (a checkpoint is taken only after the chain verified)
and the newest verification recorded, and a user starts a new one explicitly. It runs in the background,
one at a time per process; its result is recorded in the decision log (an ``event`` on
``console:audit-verify``), so every console process and the next page view see it. The verification is
the chain walk and the ``decision_index`` check of ``audit verify``; the seals and signatures it also
re-checks stay with the CLI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from releasegate.clock import Clock
from releasegate.console_ports import AuditOverview, CheckpointView, EvidenceLink, VerifyStatus
from releasegate.decisions import DecisionKind
from releasegate.services.approval_desk import DecisionJournal
from releasegate.store.checkpoints import Checkpoint, check, export_lines, read_checkpoints
from releasegate.store.index_check import check_index
from releasegate.store.trust import SealedDecisionLog

SUBJECT = "console:audit-verify"
RECENT_PROMOTIONS = 500  # model versions linked to their evidence pack: those of the newest promotions


class LogAuditDesk:
    """``console_ports.AuditDesk`` over the sealed log, the checkpoint folder and the service's public key."""

    def __init__(self, log: SealedDecisionLog, clock: Clock, checkpoints: Path, public_key: Ed25519PublicKey):
        self.log, self.clock, self.folder, self.public_key = log, clock, checkpoints, public_key
        self._lock = threading.Lock()
        self._running: VerifyStatus | None = None

    # -- reading ---------------------------------------------------------------------------------
    def overview(self, last: int = 10) -> AuditOverview:
        seq, head = self.log.head()
        found = read_checkpoints(self.folder) if self.folder.is_dir() else []
        newest = sorted(found, key=_created, reverse=True)[:last]
        problems = {f.file: f.problem for f in check(self.log, newest, self.public_key)}
        views = [
            CheckpointView(
                file=path.name,
                last_seq=cp.last_seq if isinstance(cp, Checkpoint) else None,
                last_hash=cp.last_hash if isinstance(cp, Checkpoint) else "",
                created_at=cp.created_at if isinstance(cp, Checkpoint) else None,
                problem=problems.get(path.name),
            )
            for path, cp in newest
        ]
        verify = self._running or self._last_recorded()
        return AuditOverview(
            records=seq,
            head_hash=head,
            checkpoints=views,
            checkpoint_total=len(found),
            verify=verify,
            estimate_seconds=_estimate(verify, seq),
            versions=self._versions(),
        )

    def _last_recorded(self) -> VerifyStatus:
        found = self.log.query(kind=DecisionKind.event, subject=SUBJECT, newest_first=True, limit=1)
        if not found or not self.log.is_trusted(found[0]):
            return VerifyStatus(state="never")
        r = found[0]
        d = r.details
        return VerifyStatus(
            state=str(d.get("verdict") or "?"),
            started_at=_time(d.get("started_at")),
            finished_at=r.decision_timestamp,
            by=r.actor,
            records=d.get("records"),
            seconds=d.get("seconds"),
            finding=d.get("finding"),
            decision_id=r.decision_id,
        )

    def _versions(self) -> list[EvidenceLink]:
        newest: dict[tuple[str, str], EvidenceLink] = {}
        for r in self.log.query(kind=DecisionKind.promotion, newest_first=True, limit=RECENT_PROMOTIONS):
            d = r.details
            model, version = d.get("model_name"), d.get("candidate_version")
            if model and version and (str(model), str(version)) not in newest:
                outcome = str(d.get("status") or d.get("promotion_outcome") or "?")
                newest[(str(model), str(version))] = EvidenceLink(
                    str(model), str(version), outcome, r.decision_timestamp
                )
        return sorted(newest.values(), key=lambda v: (v.model, _numeric(v.version)))

    # -- verifying -------------------------------------------------------------------------------
    def start_verify(self, by: str) -> VerifyStatus:
        with self._lock:
            if self._running is not None:
                return self._running
            status = VerifyStatus(state="running", started_at=self.clock.now(), by=by)
            self._running = status
        threading.Thread(target=self._verify, args=(status,), name="audit-verify", daemon=True).start()
        return status

    def _verify(self, status: VerifyStatus) -> None:
        began = time.perf_counter()
        details: dict[str, Any] = {"started_at": status.started_at.isoformat() if status.started_at else None}
        try:
            result = self.log.verify()
            finding = None if result.ok else f"decision log tampered: {result.first_break}"
            if finding is None:
                index = check_index(self.log)
                if not index.ok:
                    finding = f"index tampered: {index.findings[0] if index.findings else index.total}"
            details |= {"records": result.checked, "finding": finding}
            details["verdict"] = "intact" if finding is None else "broken"
        except Exception as exc:  # recorded as a failed verification, never a crash of the console
            details |= {"verdict": "broken", "finding": f"the verification failed: {exc.__class__.__name__}: {exc}"}
        details["seconds"] = round(time.perf_counter() - began, 3)
        rationale = (
            f"decision log intact: {details.get('records')} records, hash chain and decision_index verified "
            f"in {details['seconds']} s"
            if details["verdict"] == "intact"
            else f"decision log NOT verified: {details.get('finding')}"
        )
        try:
            DecisionJournal(self.log).record("audit-verify", status.by or "<console>", True, rationale, **details)
        finally:
            with self._lock:
                self._running = None

    # -- exporting -------------------------------------------------------------------------------
    def export_lines(self) -> Iterator[str]:
        found = read_checkpoints(self.folder) if self.folder.is_dir() else []
        return export_lines(self.log, found)


def _created(item: tuple[Path, Checkpoint | str]) -> str:
    cp = item[1]
    return cp.created_at.isoformat() if isinstance(cp, Checkpoint) else item[0].name


def _time(text: Any):
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def _numeric(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def _estimate(verify: VerifyStatus, records: int) -> float | None:
    """From the newest verification's rate (seconds per record) at the log's size now."""
    if verify.seconds is None or not verify.records:
        return None
    return round(verify.seconds / verify.records * records, 1)
