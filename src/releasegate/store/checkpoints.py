"""Anchors for the decision log outside its database: signed checkpoints.

The hash chain (``decision_log``) detects a record edited, deleted or reordered. It cannot detect a
*consistent* rewrite (whoever holds the database recomputes every hash after the change) or a cut tail
(the newest records deleted together with the head row): nothing outside the database vouches for it.
A checkpoint does: ``(last_seq, last_hash, created_at)`` of the log at one moment, signed with the
service's Ed25519 key, written as a file into a folder the database holder does not control (another
volume, a WORM bucket, the auditor's share). ``check`` later proves the log still holds, at every
checkpoint's ``last_seq``, the record whose hash the checkpoint signed:

* a record missing at that seq → the log's tail was cut (names the seq and the checkpoint file);
* a different hash there → the log was rewritten up to that point (names both hashes);
* a checkpoint whose signature does not verify with the pinned public key → a forged checkpoint.

The signing key is ``<home>/service_ed25519.pem`` (made on first use, mode 0600); the auditor pins its
public key (``releasegate audit checkpoint`` prints it) instead of trusting the one a file carries.
Signatures are asymmetric on purpose: an auditor verifies with the public key and cannot make one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from releasegate.policy.evidence_chain import checkpoint_statement
from releasegate.policy.signatures import key_id
from releasegate.store.decision_log import DecisionLog
from releasegate.store.trust import create_secret_file

KEY_FILE = "service_ed25519.pem"


class Checkpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    last_seq: int
    last_hash: str
    created_at: datetime
    key_id: str  # SHA-256 of the raw public key, hex: which key signed
    signature: str  # hex Ed25519 signature over ``statement()``

    def statement(self) -> bytes:
        return checkpoint_statement(self.last_seq, self.last_hash, self.created_at)


class CheckpointFinding(BaseModel):
    """One checkpoint the log (or the key) does not honour."""

    model_config = ConfigDict(frozen=True)
    file: str
    last_seq: int | None
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The service's Ed25519 key (PEM, PKCS#8), created atomically with mode 0600 when missing."""
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        create_secret_file(path, pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def make_checkpoint(log: DecisionLog, key: Ed25519PrivateKey, now: datetime) -> Checkpoint:
    last_seq, last_hash = log.head()
    unsigned = Checkpoint(
        last_seq=last_seq,
        last_hash=last_hash,
        created_at=now.astimezone(UTC).replace(microsecond=0),
        key_id=key_id(key.public_key()),
        signature="",
    )
    return unsigned.model_copy(update={"signature": key.sign(unsigned.statement()).hex()})


def write_checkpoint(cp: Checkpoint, folder: Path) -> Path:
    """A new file per checkpoint, never overwritten: ``checkpoint-<seq>-<UTC time>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = cp.created_at.strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"checkpoint-{cp.last_seq:012d}-{stamp}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(cp.model_dump_json(indent=2) + "\n")
    return path


def read_checkpoints(folder: Path) -> list[tuple[Path, Checkpoint | str]]:
    """Every ``checkpoint-*.json`` in the folder, parsed, or the reason it could not be."""
    out: list[tuple[Path, Checkpoint | str]] = []
    for path in sorted(folder.glob("checkpoint-*.json")):
        try:
            out.append((path, Checkpoint.model_validate_json(path.read_text())))
        except (OSError, ValidationError) as exc:
            out.append((path, f"unreadable checkpoint ({exc.__class__.__name__})"))
    return out


def check(
    log: DecisionLog, checkpoints: list[tuple[Path, Checkpoint | str]], public_key: Ed25519PublicKey
) -> list[CheckpointFinding]:
    """Every checkpoint signed by the pinned key and honoured by the log, or a finding naming why not."""
    findings = []
    head_seq, _ = log.head()
    pinned = key_id(public_key)
    for path, cp in checkpoints:
        name = path.name
        if isinstance(cp, str):
            findings.append(CheckpointFinding(file=name, last_seq=None, problem=cp))
            continue
        try:
            if cp.key_id != pinned:
                raise InvalidSignature
            public_key.verify(bytes.fromhex(cp.signature), cp.statement())
        except (InvalidSignature, ValueError):
            findings.append(
                CheckpointFinding(
                    file=name, last_seq=cp.last_seq, problem="signature does not verify with the pinned service key"
                )
            )
            continue
        if cp.last_seq == 0:
            continue
        found = log.hash_at(cp.last_seq)
        if found is None:
            findings.append(
                CheckpointFinding(
                    file=name,
                    last_seq=cp.last_seq,
                    problem=f"the log ends at #{head_seq} but this checkpoint vouched for #{cp.last_seq} at "
                    f"{cp.created_at.isoformat()}: the tail of the log was cut",
                )
            )
        elif found != cp.last_hash:
            findings.append(
                CheckpointFinding(
                    file=name,
                    last_seq=cp.last_seq,
                    problem=f"record #{cp.last_seq} hashes to {found[:16]}… but was {cp.last_hash[:16]}… at "
                    f"{cp.created_at.isoformat()}: the log was rewritten (consistently, or the chain check would "
                    "name it too)",
                )
            )
    return findings


def export_lines(log: DecisionLog, checkpoints: list[tuple[Path, Checkpoint | str]]) -> Iterator[str]:
    """JSON Lines for an auditor: every record with its seq, predecessor hash and hash (the chain proof),
    then every readable checkpoint. Re-hashing each record's content proves the chain offline."""
    for stored in log.iter_stored():
        yield json.dumps(
            {
                "type": "record",
                "seq": stored.seq,
                "prev_hash": stored.prev_hash,
                "record_hash": stored.record_hash,
                "record": stored.record.content(),
            },
            sort_keys=True,
            default=str,
        )
    for path, cp in checkpoints:
        if isinstance(cp, Checkpoint):
            yield json.dumps({"type": "checkpoint", "file": path.name, **cp.model_dump(mode="json")}, sort_keys=True)
