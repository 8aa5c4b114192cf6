"""Provenance of the records releasegate trusts: a service-held HMAC seal on every record it writes.

The decision log's hash chain proves that nothing was edited, deleted or reordered; it does not prove
*who* appended a record. Anyone who can run ``releasegate decisions add`` (or reach the database with
the library) could append an ``approval`` for ``mallory`` or a "final" promotion of a version that was
never promoted, and a reader that trusts stored fields would act on it. So:

* every record written by releasegate's service path (``context.decision_log()``) carries
  ``details.seal`` = HMAC-SHA256 over its canonical content (id, timestamp, kind, outcome, refs, details
  without the seal) under the **service key**. The key lives in settings (``RELEASEGATE_SERVICE_KEY``) or
  in ``$RELEASEGATE_HOME/service.key`` (created on first use, mode 0600); it is never written to the log.
* ``releasegate decisions add`` may not write a trusted kind (``TRUSTED_KINDS``): those are written only by
  the commands and flows that check their rules first (``approve``, ``exception grant``,
  ``deferrals override``, the promotion and rollback flows).
* readers of trusted kinds take only records with a valid seal (``SealedDecisionLog.trusted``), and then
  re-run the rules instead of trusting stored fields (approvals are re-checked against the allow-list,
  four eyes and order; approval time is the record's own ``decision_timestamp``). A record of a trusted
  kind without a valid seal is a forgery attempt: the reader ignores it and records a ``refusal``.

This is provenance ("written by releasegate"), not identity ("approved by this person"): signed
approvals by each approver's own key are a separate step.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from releasegate import records
from releasegate.clock import Clock
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRecord
from releasegate.errors import ReleasegateError
from releasegate.store.decision_log import DecisionLog, StoredDecision

SEAL = "seal"

# Kinds some decision relies on for authorisation: approvals (handshake), promotions (binary promotion,
# rollback targets), overrides (gate exceptions, deferral overrides), rollbacks, refusals (forgery notes),
# gate-failure acknowledgements and incidents (a forged one would silence a P1 escalation), and the
# governed approvers config (``services.approvers``).
TRUSTED_KINDS = frozenset(
    {
        DecisionKind.approval,
        DecisionKind.promotion,
        DecisionKind.override,
        DecisionKind.rollback,
        DecisionKind.refusal,
        DecisionKind.gate_failure_ack,
        DecisionKind.incident,
        DecisionKind.rollback_request,  # a forged one would start a prod rollback without a ticket
        DecisionKind.approvers_config,  # the trust root: who may approve, with which key
        DecisionKind.notification,  # a forged one would silence the notice of a pause
        DecisionKind.halt,  # a forged one would halt a model, or resume one, without two people
    }
)


def _payload(record: DecisionRecord) -> bytes:
    content = record.content()
    content["details"] = {k: v for k, v in content["details"].items() if k != SEAL}
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def seal_of(key: bytes, record: DecisionRecord) -> str:
    return hmac.new(key, _payload(record), hashlib.sha256).hexdigest()


def has_valid_seal(key: bytes, record: DecisionRecord) -> bool:
    given = record.details.get(SEAL)
    return isinstance(given, str) and hmac.compare_digest(given, seal_of(key, record))


class ServiceKeyError(ReleasegateError, ValueError):
    """The service key is unusable or does not belong to this decision log."""


MIN_KEY_BYTES = 32


def parse_key(text: str, source: str) -> bytes:
    """A service key from its hex text (the key file, or RELEASEGATE_SERVICE_KEY), or a clear refusal."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ServiceKeyError(f"{source}: the service key must be hex (e.g. `openssl rand -hex 32`)") from None
    if len(key) < MIN_KEY_BYTES:
        raise ServiceKeyError(f"{source}: the service key must hold {MIN_KEY_BYTES} bytes (64 hex characters)")
    return key


def _read_key(path: Path) -> bytes:
    return parse_key(path.read_text(), str(path))


def create_secret_file(path: Path, data: bytes) -> None:
    """Write a key file with mode 0600 unless it exists; atomic: of two racing processes one key wins
    and both read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    try:
        os.link(tmp, path)  # atomic, and fails if another process created the key first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def load_or_create_key(path: Path) -> bytes:
    """The service key file (64 hex chars), created atomically with mode 0600 when missing."""
    if not path.exists():
        create_secret_file(path, secrets.token_hex(MIN_KEY_BYTES).encode())
    return _read_key(path)


_KEYS_THAT_BELONG: set[tuple[str, str]] = set()  # (log URL, SHA-256 of the key) already checked


class SealedDecisionLog(DecisionLog):
    """The decision log as releasegate's service path uses it: every append is sealed."""

    def __init__(self, url: str, clock: Clock | None = None, key_loader: Callable[[], bytes] | None = None) -> None:
        super().__init__(url, clock=clock)
        self._key_loader = key_loader
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            assert self._key_loader is not None, "SealedDecisionLog needs a key_loader to seal or check records"
            key = self._key_loader()
            self._check_belongs(key)
            self._key = key
        return self._key

    def _check_belongs(self, key: bytes) -> None:
        """Refuse a key that did not write this log (e.g. a fresh key file in another RELEASEGATE_HOME):
        with it, every genuine record would read as a forgery. The earliest sealed record decides; an
        append-only log cannot get a record in before it. Checked once per process, log and key: the log
        is opened for nearly every record written, and the answer cannot change once it was yes."""
        pair = (str(self.engine.url), hashlib.sha256(key).hexdigest())
        if pair in _KEYS_THAT_BELONG:
            return
        for rec in self.query(limit=50):
            if SEAL in rec.details:
                if not has_valid_seal(key, rec):
                    raise ServiceKeyError(
                        f"the service key does not match the decision log {self.engine.url!r}: its first sealed "
                        "record was written with another key. Use the key that wrote it (the same "
                        "RELEASEGATE_HOME, or RELEASEGATE_SERVICE_KEY)"
                    )
                _KEYS_THAT_BELONG.add(pair)
                return

    def append_record(self, record: DecisionRecord) -> StoredDecision:
        """Seal, then append (``append`` goes through here too)."""
        record = record.model_copy(deep=True)
        record.details.pop(SEAL, None)  # a caller cannot bring its own seal
        record.details[SEAL] = seal_of(self.key, record)
        return super().append_record(record)

    def is_trusted(self, record: DecisionRecord) -> bool:
        return has_valid_seal(self.key, record)

    def trusted(self, **query: Any) -> tuple[list[DecisionRecord], list[DecisionRecord]]:
        """``query(...)`` split into (records with a valid seal, records of a trusted kind without one)."""
        good, forged = [], []
        for rec in self.query(**query):
            if self.is_trusted(rec):
                good.append(rec)
            elif rec.decision_kind in TRUSTED_KINDS:
                forged.append(rec)
        return good, forged

    def refuse_forged(self, forged: list[DecisionRecord], reader: str) -> list[str]:
        """Record (once per forged record) that ``reader`` ignored it; returns the new refusal ids."""
        if not forged:
            return []
        noted = {
            r.details.get("refused_decision_id") for r in self.query(kind=DecisionKind.refusal) if self.is_trusted(r)
        }
        out = []
        for rec in forged:
            if rec.decision_id in noted:
                continue
            out.append(
                self.append(
                    records.refusal(
                        decision_outcome=DecisionOutcome.reject,
                        decision_rationale=f"{rec.decision_kind.value} record {rec.decision_id} by {rec.actor!r} "
                        f"ignored by {reader}: it has no valid service seal (not written by releasegate's "
                        "service path: a forgery attempt or a record written around the rules)",
                        subject=rec.subject,
                        actor=f"releasegate:{reader}",
                        details={
                            "refused_decision_id": rec.decision_id,
                            "refused_kind": rec.decision_kind.value,
                            "field": SEAL,
                            "rule": "trusted records are written only by releasegate's service path",
                        },
                    )
                ).decision_id
            )
        return out

    def unsealed_trusted(self) -> list[DecisionRecord]:
        """Every record of a trusted kind in the log without a valid seal (for ``audit verify``), oldest
        first. Read kind by kind through the index: a log is mostly deferrals and events, which carry no
        trust (reading all 1 M records of a log as pydantic records took minutes)."""
        found = [r for kind in TRUSTED_KINDS for r in self.query(kind=kind) if not self.is_trusted(r)]
        return sorted(found, key=lambda r: r.decision_timestamp)
