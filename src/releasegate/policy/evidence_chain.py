"""The chain proof an evidence pack carries, re-checked offline (pure).

A pack holds a run of consecutive decision-log records (its *span*), each as ``audit export`` writes it:
``seq``, ``prev_hash``, ``record_hash`` and the record's canonical ``content``; and the signed checkpoint
(``store.checkpoints``) whose ``last_seq`` is the span's last record. The span proves the excerpt:

* every record's hash is recomputed from its content (``decisions.record_hash``): a record edited in the
  pack no longer matches its hash;
* each record links to the one before it (``prev_hash``), seq after seq, without a gap;
* the last record's hash is the hash the checkpoint signed, and the checkpoint's signature verifies with
  the pinned service key: a record rewritten with fresh hashes no longer reaches the signed head.

A linear hash chain cannot prove a record without every record after it up to the head, so the span holds
the records between the excerpt's own too (other subjects' records, carried for the proof only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from releasegate.decisions import record_hash
from releasegate.policy.signatures import key_id


@dataclass(frozen=True)
class Finding:
    """The first thing that does not verify: where (a file, a record, an approval) and why."""

    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def checkpoint_statement(last_seq: int, last_hash: str, created_at: datetime) -> bytes:
    """What the service key signs for a checkpoint (``store.checkpoints.Checkpoint.statement``)."""
    body = {"last_seq": last_seq, "last_hash": last_hash, "created_at": created_at.isoformat()}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_problem(checkpoint: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    """Why a checkpoint (as a file holds it) is not signed by ``public_key``; None when it is."""
    try:
        statement = checkpoint_statement(
            int(checkpoint["last_seq"]),
            str(checkpoint["last_hash"]),
            datetime.fromisoformat(str(checkpoint["created_at"]).replace("Z", "+00:00")),
        )
        if checkpoint.get("key_id") != key_id(public_key):
            return f"signed by key {str(checkpoint.get('key_id'))[:16]}…, not the pinned service key"
        public_key.verify(bytes.fromhex(str(checkpoint["signature"])), statement)
    except (KeyError, TypeError, ValueError):
        return "unreadable checkpoint"
    except InvalidSignature:
        return "the checkpoint's signature does not verify with the pinned service key"
    return None


def _where(entry: dict[str, Any]) -> str:
    record = entry.get("record")
    content: dict[str, Any] = record if isinstance(record, dict) else {}
    return f"decision log record #{entry.get('seq')} ({content.get('decision_id')})"


def span_finding(
    span: list[dict[str, Any]], checkpoint: dict[str, Any], public_key: Ed25519PublicKey
) -> Finding | None:
    """The first record of ``span`` (consecutive records, oldest first) that does not verify, or the
    checkpoint that does not vouch for its last one; None when the excerpt holds."""
    if not span:
        return Finding("decision log", "the pack carries no records")
    prev: str | None = None
    expected = span[0].get("seq")
    if not isinstance(expected, int):
        return Finding(_where(span[0]), "unreadable (no seq)")
    for entry in span:
        where = _where(entry)
        if entry.get("seq") != expected:
            return Finding(where, f"expected record #{expected} here: a record of the span was removed or moved")
        if prev is not None and entry.get("prev_hash") != prev:
            return Finding(where, "its predecessor link does not match the record before it")
        try:
            computed = record_hash(int(entry["seq"]), str(entry["prev_hash"]), entry["record"])
        except (KeyError, TypeError, ValueError) as exc:
            return Finding(where, f"unreadable ({exc.__class__.__name__})")
        if computed != entry.get("record_hash"):
            return Finding(where, "was altered: its content no longer matches its hash")
        prev, expected = computed, expected + 1
    problem = checkpoint_problem(checkpoint, public_key)
    if problem is not None:
        return Finding("checkpoint", problem)
    last = span[-1]
    if checkpoint.get("last_seq") != last.get("seq") or checkpoint.get("last_hash") != prev:
        return Finding(
            "checkpoint",
            f"vouches for #{checkpoint.get('last_seq')} ({str(checkpoint.get('last_hash'))[:16]}…), but the span "
            f"ends at #{last.get('seq')} ({str(prev)[:16]}…): the excerpt does not reach the signed head",
        )
    return None
