"""An evidence pack of one model version, and its offline verification (pure).

A pack is a folder of three files (``services.evidence_pack`` writes them):

* ``evidence.json``: the document for machines: the inventory record, the promotions with their gate
  reports, every approval as recorded (statement, signature, and the key or passkey that verifies it),
  the governed approvers configs in force at the approvals, exceptions, monitoring, rollbacks, halts,
  and the decision-log span (``policy.evidence_chain``) with the checkpoint that signs its head;
* ``evidence.html``: the same for people;
* ``evidence.sig``: a detached signature by the service's Ed25519 key (the key that signs checkpoints)
  over a statement naming the SHA-256 of both documents.

``verify_pack`` re-checks it offline, most specific first, so the first finding names what was altered:
each approval's signature over its statement and the key its governed config pinned, each config
against its digest, each approval and config against the record the span holds for it, the span
against the checkpoint, then the documents against the signed statement and the signature itself.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from releasegate.policy.approvers import ApproverConfig, config_digest, unpinned_approval_problem
from releasegate.policy.evidence_chain import Finding, span_finding
from releasegate.policy.passkey_approvals import recorded_approval_problem
from releasegate.policy.signatures import Signed, Statement, key_id, parse_public_key

FORMAT: Literal["releasegate-evidence-pack/1"] = "releasegate-evidence-pack/1"
JSON_FILE, HTML_FILE, SIGNATURE_FILE = "evidence.json", "evidence.html", "evidence.sig"


class PackStatement(Statement):
    """What the service key signs: this pack of this model version, its documents' SHA-256."""

    format: Literal["releasegate-evidence-pack/1"] = FORMAT
    model: str
    version: str
    created_at: datetime
    files: dict[str, str]  # file name -> SHA-256 hex


class SignedPack(Signed):
    statement: PackStatement


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _approval_findings(pack: dict[str, Any], span: dict[Any, dict[str, Any]]) -> list[Finding]:
    configs = {c.get("digest"): c for c in pack.get("approvers_configs") or []}
    out: list[Finding] = []
    for a in pack.get("approvals") or []:
        d = a.get("details") or {}
        where = f"approval {a.get('decision_id')} ({d.get('role')} by {d.get('approver')!r})"
        if d.get("signature"):
            problem = recorded_approval_problem(str(a.get("subject")), d)
            if problem is not None:
                out.append(Finding(where, problem))
                continue
            if a.get("config_digest") is None:  # given before the approvers config was governed
                problem = _in_force_problem(None, a, pack.get("approvers_configs") or [])
            else:
                config = configs.get(a.get("config_digest"))
                if config is None:
                    out.append(Finding(where, "the pack carries no approvers config with its digest"))
                    continue
                problem = _in_force_problem(config, a, pack.get("approvers_configs") or [])
                problem = problem or unpinned_approval_problem(ApproverConfig.model_validate(config["config"]), d)
            if problem is not None:
                out.append(Finding(where, problem))
                continue
        record = (span.get(a.get("seq")) or {}).get("record") or {}
        if _differs(record, a, ("decision_id", "decision_timestamp", "subject")) or record.get("details") != d:
            out.append(Finding(where, f"is not the record the decision log holds at #{a.get('seq')}"))
    return out


def _differs(record: dict[str, Any], entry: dict[str, Any], fields: tuple[str, ...]) -> bool:
    return any(record.get(f) != entry.get(f) for f in fields)


def _in_force_problem(
    config: dict[str, Any] | None, approval: dict[str, Any], configs: list[dict[str, Any]]
) -> str | None:
    """The config the pack names for an approval (None: none was governed yet) was the one in force then:
    given before the approval, and no other config the pack carries given after it and before the approval."""
    at = _time(approval.get("decision_timestamp"))
    since = _time(config.get("at")) if config is not None else None
    if config is not None and since is not None and since > at:
        return f"the approvers config {str(config.get('digest'))[:16]} came into force after the approval"
    later = [c for c in configs if (since is None or since < _time(c.get("at"))) and _time(c.get("at")) <= at]
    if later:
        return f"the approvers config {str(later[0].get('digest'))[:16]} was in force at its time, not this one"
    return None


def _time(text: Any) -> datetime:
    """A recorded timestamp (``…Z``, with or without a fraction); the end of time for anything else."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)


def _config_findings(pack: dict[str, Any], span: dict[Any, dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    for c in pack.get("approvers_configs") or []:
        where = f"approvers config {str(c.get('digest'))[:16]} (record {c.get('decision_id')})"
        try:
            digest = config_digest(ApproverConfig.model_validate(c.get("config")))
        except ValidationError:
            out.append(Finding(where, "unreadable config"))
            continue
        if digest != c.get("digest"):
            out.append(Finding(where, "the config does not match its digest"))
            continue
        record = (span.get(c.get("seq")) or {}).get("record") or {}
        details = record.get("details") or {}
        if _differs(record, c | {"decision_timestamp": c.get("at")}, ("decision_id", "decision_timestamp")) or (
            details.get("digest") != digest
        ):
            out.append(Finding(where, f"is not the record the decision log holds at #{c.get('seq')}"))
    return out


def _signature_findings(
    files: dict[str, bytes], pinned: Ed25519PublicKey | None, pack: dict[str, Any]
) -> tuple[list[Finding], Ed25519PublicKey | None]:
    """The detached signature: readable, by the pinned key (else the key it names), over these files."""
    raw = files.get(SIGNATURE_FILE)
    if raw is None:
        return [Finding(SIGNATURE_FILE, "missing: the pack is not signed")], pinned
    try:
        signed = SignedPack.model_validate_json(raw)
        signer = parse_public_key(signed.public_key, "public_key")
    except (ValidationError, ValueError):
        return [Finding(SIGNATURE_FILE, "unreadable signature file")], pinned
    out: list[Finding] = []
    if pinned is not None and key_id(pinned) != key_id(signer):
        out.append(Finding(SIGNATURE_FILE, "signed by a key that is not the pinned service key (--public-key)"))
    elif not signed.verifies():
        out.append(Finding(SIGNATURE_FILE, "the signature does not verify over its statement"))
    s = signed.statement
    if (s.model, s.version) != (pack.get("model"), pack.get("version")):
        out.append(Finding(SIGNATURE_FILE, f"signed for {s.model} v{s.version}, not this pack's model version"))
    for name in (JSON_FILE, HTML_FILE):
        if name not in files:
            out.append(Finding(name, "missing"))
        elif s.files.get(name) != sha256(files[name]):
            out.append(Finding(name, "altered after signing: its SHA-256 is not the one the service key signed"))
    return out, pinned or signer


def verify_pack(files: dict[str, bytes], pinned: Ed25519PublicKey | None) -> tuple[list[Finding], list[str]]:
    """Every finding (most specific first: the first names what was altered) and, when none, what was
    verified. ``files``: the pack's files by name; ``pinned``: the service key the reader trusts (None:
    the key the signature names, which proves integrity but not who signed)."""
    try:
        return _verify(files, pinned)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:  # a section of the wrong shape
        return [Finding(JSON_FILE, f"malformed ({exc.__class__.__name__}: {exc})")], []


def _verify(files: dict[str, bytes], pinned: Ed25519PublicKey | None) -> tuple[list[Finding], list[str]]:
    if JSON_FILE not in files:
        return [Finding(JSON_FILE, "missing")], []
    try:
        pack = json.loads(files[JSON_FILE])
        if not isinstance(pack, dict) or pack.get("format") != FORMAT:
            raise ValueError("not an evidence pack")
    except ValueError as exc:
        return [Finding(JSON_FILE, f"unreadable ({exc.__class__.__name__}: {exc})")], []
    log = pack.get("decision_log") or {}
    entries = log.get("span") or []
    span: dict[Any, dict[str, Any]] = {e.get("seq"): e for e in entries if isinstance(e, dict)}
    signature_findings, key = _signature_findings(files, pinned, pack)
    findings = _approval_findings(pack, span) + _config_findings(pack, span)
    if key is not None:
        chain = span_finding(entries, log.get("checkpoint") or {}, key)
        findings += [chain] if chain is not None else []
    findings += signature_findings
    if findings:
        return findings, []
    signed = [a for a in pack.get("approvals") or [] if (a.get("details") or {}).get("signature")]
    early = sum(1 for a in signed if a.get("config_digest") is None)
    facts = [
        f"signature by the service key {key_id(key)[:16]}… over {JSON_FILE} and {HTML_FILE}" if key else "",
        f"{len(signed)} signed approvals re-verified with the key or passkey their governed approvers config "
        "pinned" + (f" ({early} given before the config was governed: their signature only)" if early else ""),
        f"{len(log.get('excerpt') or [])} excerpt records in a span of {len(entries)} records (#{entries[0]['seq']}–"
        f"#{entries[-1]['seq']}): every hash recomputed, every link checked, up to checkpoint "
        f"#{(log.get('checkpoint') or {}).get('last_seq')} signed by the service key",
    ]
    return [], [f for f in facts if f]
