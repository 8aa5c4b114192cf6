"""The evidence pack of one model version: assembled from the decision log, signed, written to a folder.

``assemble`` reads what the sealed decision log holds about the version (its promotions with the gate
report, every approval with its signature and the key or passkey that verifies it, the governed approvers
configs in force at those approvals, exceptions and overrides, EOD verdicts and rollbacks of the prod
version since its release) and the span of the chain that proves it up to a signed checkpoint (an
existing one that covers it, else a new one, as ``audit checkpoint`` takes it). ``write`` writes the JSON
document, the HTML document (``services.evidence_html``) and the detached signature by the service's
Ed25519 key (``policy.evidence_pack``, which also verifies a pack offline).

The collaborators come in as parameters (``EvidenceSources``): this module never builds its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate import records
from releasegate.clock import Clock
from releasegate.decisions import REF_FIELDS, DecisionKind, DecisionRecord
from releasegate.errors import Refused
from releasegate.policy.evidence_chain import checkpoint_problem
from releasegate.policy.evidence_pack import FORMAT, HTML_FILE, JSON_FILE, SIGNATURE_FILE, PackStatement, sha256
from releasegate.policy.signatures import key_id, public_hex, signature_by
from releasegate.services import approvers
from releasegate.services.audit import take_checkpoint
from releasegate.store.checkpoints import Checkpoint, read_checkpoints
from releasegate.store.trust import SealedDecisionLog

HALTS_NONE = "no halt or resume of the model was requested while this version was champion"
# Which section answers which expectation: SR 11-7 / OCC 2011-12 and the EU AI Act.
MAPPING = [
    ("inventory", "Model inventory (SR 11-7 V: governance, inventory)", "Art. 12(2)(a): identify the system"),
    ("promotions", "Development and validation: dossier and gate report", "Art. 12(2)(a): substantial modification"),
    ("approvals", "Validation: independent review and sign-off", "Art. 14(4): human oversight of the release"),
    ("exceptions", "Change control: exceptions and overrides", "Art. 14(4)(d): decisions to disregard output"),
    ("monitoring", "Ongoing monitoring: outcomes analysis", "Art. 12(2)(b): post-market monitoring"),
    ("rollbacks", "Change control: rollbacks", "Art. 12(2)(a): situations presenting a risk"),
    ("halts", "Change control: halts", "Art. 14(4)(e): interrupt the system"),
    ("decision_log", "Governance: records and their integrity", "Art. 12(1): automatic recording of events"),
]


class NoEvidence(Refused):
    what = "evidence refused"


@dataclass(frozen=True)
class EvidenceSources:
    """What ``assemble`` reads and signs with: the sealed log, the service's Ed25519 key and where its
    checkpoints live, the clock, the registry's version tags (``name, version -> tags``; None: none
    read) and the reader of a model's inventory record (owners, risk tier: the manifest, the governed
    config), called once the log holds a promotion of the version."""

    log: SealedDecisionLog
    signing_key: Ed25519PrivateKey
    checkpoint_dir: Path
    clock: Clock
    inventory: Callable[[str], dict[str, Any]]
    version_tags: Callable[[str, str], dict[str, str]] | None = None


def _ts(rec: DecisionRecord) -> str:
    return str(rec.content()["decision_timestamp"])


def _ref(rec: DecisionRecord, seqs: dict[str, int]) -> dict[str, Any]:
    """A record as a section names it: its place in the log and what a reader needs at a glance."""
    return {
        "seq": seqs.get(rec.decision_id),
        "decision_id": rec.decision_id,
        "decision_timestamp": _ts(rec),
        "kind": rec.decision_kind.value,
        "outcome": rec.decision_outcome.value,
        "actor": rec.actor,
        "rationale": rec.decision_rationale,
    }


def _promotion_runs(log: SealedDecisionLog, model: str, version: str) -> tuple[list[DecisionRecord], str]:
    """The promotion records of the staging candidate ``version``, else of the promotion that made the
    prod ``version`` (the two registries number their versions apart: the candidate's reading wins);
    and which reading it was (``candidate`` | ``prod``)."""
    good, _ = log.trusted(kind=DecisionKind.promotion)
    mine = [r for r in good if r.details.get("model_name") == model]
    as_candidate = [r for r in mine if str(r.details.get("candidate_version")) == version]
    if as_candidate:
        return as_candidate, "candidate"
    runs = {r.subject for r in mine if str(r.details.get("prod_version")) == version}
    return [r for r in mine if r.subject in runs], "prod"


def _replaced_at(log: SealedDecisionLog, model: str, prod: set[str], released: datetime | None) -> datetime | None:
    """When another version's promotion replaced the version as champion (None: it still is)."""
    if released is None:
        return None
    good, _ = log.trusted(kind=DecisionKind.promotion, since=released)
    return min(
        (
            r.decision_timestamp
            for r in good
            if r.details.get("model_name") == model
            and r.details.get("status") == "final"
            and str(r.details.get("prod_version")) not in prod
        ),
        default=None,
    )


def _concerns_prod(rec: DecisionRecord, prod: set[str], ended: datetime | None) -> bool:
    """Whether a ``model:<name>`` record is about one of the version's prod versions."""
    d = rec.details
    if rec.decision_kind is DecisionKind.monitoring:
        judged = [(d.get("champion") or {}).get("version"), (d.get("challenger") or {}).get("version")]
        return any(str(v) in prod for v in judged if v is not None)
    if rec.decision_kind is DecisionKind.rollback:
        return str(d.get("previous_version")) in prod or str(d.get("new_version")) in prod
    if rec.decision_kind is DecisionKind.rollback_request:
        return str(d.get("version")) in prod or str(d.get("champion")) in prod
    return ended is None or rec.decision_timestamp < ended  # retrains, incidents: while it was champion


def _checkpoint(src: EvidenceSources, last_seq: int) -> dict[str, Any]:
    """The earliest signed checkpoint that covers ``last_seq`` and that the log still honours; a new one
    when none does."""
    own = src.signing_key.public_key()
    found = [cp for _, cp in read_checkpoints(src.checkpoint_dir) if isinstance(cp, Checkpoint)]
    for cp in sorted(found, key=lambda c: c.last_seq):
        data = cp.model_dump(mode="json")
        if cp.last_seq >= last_seq and checkpoint_problem(data, own) is None:
            if src.log.hash_at(cp.last_seq) == cp.last_hash:
                return data
    taken = take_checkpoint(src.log, src.signing_key, src.clock, src.checkpoint_dir)
    return taken.checkpoint.model_dump(mode="json")


def assemble(src: EvidenceSources, model: str, version: str) -> dict[str, Any]:
    """The pack of ``model`` ``version`` (a staging candidate version or the prod version a promotion
    made) as a JSON-ready dict; ``NoEvidence`` when the log holds no promotion of it."""
    log = src.log
    promos, reading = _promotion_runs(log, model, version)
    if not promos:
        raise NoEvidence(
            "VERSION",
            f"the decision log holds no promotion of {model} v{version}: give a candidate version a promotion "
            "judged, or the prod version it made (`releasegate decisions list --kind promotion`)",
        )
    runs = list(dict.fromkeys(r.subject.removeprefix("promotion:") for r in promos))
    run_records: list[DecisionRecord] = []
    for run in runs:
        for subject in (
            records.promotion_subject(run),
            records.flow_run_subject(run),
            records.notification_subject(run),
        ):
            run_records += log.query(subject=subject)
    candidates = sorted({str(r.details.get("candidate_version")) for r in promos})
    exceptions = [r for v in candidates for r in log.query(subject=records.model_version_subject(model, v))]
    finals = [r for r in promos if r.details.get("status") == "final"]
    prod = {str(r.details.get("prod_version")) for r in finals}
    released = min((r.decision_timestamp for r in finals), default=None)
    since = log.query(subject=records.model_subject(model), since=released) if released else []
    ended = _replaced_at(log, model, prod, released)
    later = [r for r in since if _concerns_prod(r, prod, ended)]
    config_records, _ = log.trusted(kind=DecisionKind.approvers_config, subject=records.APPROVERS_CONFIG_SUBJECT)
    steps, _ = approvers.walk(config_records)
    approvals = [r for r in run_records if r.decision_kind is DecisionKind.approval and log.is_trusted(r)]
    in_force = {r.decision_id: approvers.in_force_at(steps, r.decision_timestamp) for r in approvals}
    used = {s.decision_id: s for s in in_force.values() if s is not None}
    excerpt = {r.decision_id: r for r in [*run_records, *exceptions, *later]}
    by_id = {r.decision_id: r for r in config_records}
    seqs = log.seqs_of([*excerpt, *used])
    checkpoint = _checkpoint(src, max(seqs.values()))
    span = [
        {"seq": s.seq, "prev_hash": s.prev_hash, "record_hash": s.record_hash, "record": s.record.content()}
        for s in log.iter_stored(after=min(seqs.values()) - 1, until=checkpoint["last_seq"])
    ]
    public = src.signing_key.public_key()
    halts = [
        _ref(r, seqs) | {"sealed": log.is_trusted(r), "details": {k: v for k, v in r.details.items() if k != "seal"}}
        for r in later
        if r.decision_kind is DecisionKind.halt
    ]
    return {
        "format": FORMAT,
        "model": model,
        "version": version,
        "version_is": f"the {reading} version ({'staging' if reading == 'candidate' else 'prod'} registry)",
        "created_at": src.clock.now().isoformat(),
        "service_key": {"public_key": public_hex(public), "key_id": key_id(public)},
        "mapping": [{"section": s, "sr_11_7": sr, "eu_ai_act": eu} for s, sr, eu in MAPPING],
        "inventory": {
            **src.inventory(model),
            "prod_versions": sorted(prod),
            "released_at": released and released.isoformat(),
        },
        "promotions": [_promotion(src, run, run_records, seqs) for run in runs],
        "approvals": [
            {
                **_ref(r, seqs),
                "subject": r.subject,
                "details": r.content()["details"],
                "config_digest": step.digest if (step := in_force[r.decision_id]) else None,
            }
            for r in approvals
        ],
        "approvers_configs": [
            {
                "seq": seqs.get(s.decision_id),
                "decision_id": s.decision_id,
                "at": _ts(by_id[s.decision_id]),
                "digest": s.digest,
                "how": s.how,
                "config": s.config.model_dump(mode="json"),
            }
            for s in used.values()
        ],
        "exceptions": [
            _ref(r, seqs) | {"subject": r.subject, "ticket_ref": r.details.get("ticket_ref"), "expiry": _expiry(r)}
            for r in [*exceptions, *run_records]
            if r.decision_kind is DecisionKind.override
        ],
        "monitoring": [_verdict(r, seqs) for r in later if r.decision_kind is DecisionKind.monitoring],
        "rollbacks": [
            _ref(r, seqs) | {"details": {k: v for k, v in r.details.items() if k != "seal"}}
            for r in later
            if r.decision_kind in (DecisionKind.rollback, DecisionKind.rollback_request)
        ],
        "other_changes": [_ref(r, seqs) for r in later if r.decision_kind not in (*_OWN_SECTION, DecisionKind.halt)],
        "halts": {"records": halts, "note": "" if halts else HALTS_NONE},
        "decision_log": {
            "excerpt": sorted(seqs[i] for i in excerpt if i in seqs),
            "span": span,
            "checkpoint": checkpoint,
            "sealed": {i: log.is_trusted(r) for i, r in excerpt.items()},
        },
    }


_OWN_SECTION = (DecisionKind.monitoring, DecisionKind.rollback, DecisionKind.rollback_request)


def _expiry(rec: DecisionRecord) -> str | None:
    return rec.exception_expiry.isoformat() if rec.exception_expiry else None


def _verdict(rec: DecisionRecord, seqs: dict[str, int]) -> dict[str, Any]:
    d = rec.details
    champion = d.get("champion") or {}
    return {
        "seq": seqs.get(rec.decision_id),
        "decision_id": rec.decision_id,
        "business_date": d.get("business_date"),
        "action": d.get("action"),
        "reason_code": d.get("reason_code"),
        "version": champion.get("version"),
        "max_psi": champion.get("max_psi"),
        "metric_drop": champion.get("metric_drop"),
        "breached": d.get("breached") or [],
        "rollback_method": d.get("rollback_method"),
        "retrain": bool(d.get("retrain")),
    }


def _promotion(
    src: EvidenceSources, run: str, run_records: list[DecisionRecord], seqs: dict[str, int]
) -> dict[str, Any]:
    """One promotion run: its outcome, the TECH record's gate report and figures, the registry's facts."""
    mine = [r for r in run_records if r.subject == records.promotion_subject(run)]
    steps = [r for r in mine if r.decision_kind is DecisionKind.promotion]
    tech = next((r for r in mine if r.decision_kind is DecisionKind.approval and r.details.get("role") == "tech"), None)
    last = steps[-1] if steps else None
    d = last.details if last else {}
    out: dict[str, Any] = {
        "run_id": run,
        "records": [_ref(r, seqs) for r in steps],
        "candidate_version": d.get("candidate_version"),
        "prod_version": d.get("prod_version"),
        "status": d.get("status"),
        "outcome": d.get("promotion_outcome") or (last.decision_outcome.value if last else None),
        "refs": {k: getattr(last, k) for k in REF_FIELDS} if last else {},
    }
    if tech is not None:
        t = tech.details
        out["gate_report"] = t.get("gate_report")
        out["gate_report_sha256"] = t.get("gate_report_sha256")
        out["dossier"] = {
            "gate_report_ref": tech.tech_gate_report_ref,
            "candidate_sha256": t.get("candidate_sha256"),
            "figures": t.get("figures"),
        }
    if src.version_tags is not None and d.get("staging_model"):
        facts = {"staging": src.version_tags(str(d["staging_model"]), str(d.get("candidate_version")))}
        if d.get("prod_model") and d.get("prod_version"):
            facts["prod"] = src.version_tags(str(d["prod_model"]), str(d["prod_version"]))
        out.setdefault("dossier", {})["registry_tags"] = facts
    return out


def files_of(pack: dict[str, Any], key: Ed25519PrivateKey, render: Callable[[dict[str, Any]], str]) -> dict[str, bytes]:
    """The pack's files: ``evidence.json``, ``evidence.html`` (``render(pack)``) and ``evidence.sig``."""
    data = json.dumps(pack, indent=1, sort_keys=True, default=str).encode()
    html = render(pack).encode()
    statement = PackStatement(
        model=pack["model"],
        version=pack["version"],
        created_at=pack["created_at"],
        files={JSON_FILE: sha256(data), HTML_FILE: sha256(html)},
    )
    signed = {"statement": statement.model_dump(mode="json"), **signature_by(statement, key)}
    return {
        JSON_FILE: data,
        HTML_FILE: html,
        SIGNATURE_FILE: (json.dumps(signed, indent=2, sort_keys=True) + "\n").encode(),
    }


def write(pack: dict[str, Any], out: Path, key: Ed25519PrivateKey, render: Callable[[dict[str, Any]], str]) -> Path:
    """``evidence.json``, ``evidence.html`` (``render(pack)``) and ``evidence.sig`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files_of(pack, key, render).items():
        (out / name).write_bytes(content)
    return out


def archive(pack: dict[str, Any], key: Ed25519PrivateKey, render: Callable[[dict[str, Any]], str]) -> bytes:
    """The pack's files as one zip, in a folder ``<model>-v<version>-evidence/`` (what ``write`` writes:
    unzipped, ``releasegate evidence verify`` checks it)."""
    import io
    import zipfile

    folder = f"{pack['model']}-v{pack['version']}-evidence"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files_of(pack, key, render).items():
            z.writestr(f"{folder}/{name}", content)
    return buffer.getvalue()
