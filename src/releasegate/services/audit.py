"""Anchoring the decision log: the use case behind ``releasegate audit checkpoint`` and the hourly
``audit-checkpoint`` deployment (the same function, so both refuse the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate.clock import Clock
from releasegate.errors import Failed
from releasegate.policy.signatures import public_hex
from releasegate.store.checkpoints import Checkpoint, make_checkpoint, write_checkpoint
from releasegate.store.decision_log import DecisionLog


class LogNotVouchedFor(Failed):
    """The chain does not verify: a broken log is never signed (the checkpoint would vouch for the break)."""


@dataclass(frozen=True)
class CheckpointTaken:
    checkpoint: Checkpoint
    path: Path
    public_key: str  # hex, for the auditor to pin (`audit verify --public-key`)
    records: int


def take_checkpoint(log: DecisionLog, key: Ed25519PrivateKey, clock: Clock, folder: Path) -> CheckpointTaken:
    """Verify the chain, sign (last seq, last hash, UTC time) with the service key, write a new file."""
    result = log.verify()
    if not result.ok:
        raise LogNotVouchedFor(f"no checkpoint: decision log tampered: {result.first_break}")
    cp = make_checkpoint(log, key, clock.now())
    path = write_checkpoint(cp, folder)
    return CheckpointTaken(cp, path, public_hex(key.public_key()), result.checked)
