"""Evidence pack of a model version with 1,000 business dates of monitoring: export and offline verify.

Run by hand: ``.venv/bin/python bench/evidence_bench.py [--days 1000] [--noise 10]`` (also part of
``make bench``); ``--smoke``: 20 business dates, 2 other records a day, one repetition.

The decision log (SQLite) is written through the service path (``SealedDecisionLog.append``: validation,
seal, chain): the governed approvers config trusted once, one promotion of ``credit`` v3 to champion as
the flow records it (TECH with its gate report, PM and RISK approvals signed with the approvers' Ed25519
keys, the pending and final promotion records), then per business date the EOD verdict of the champion
and ``--noise`` records of other runs (deferrals), which lie inside the span the pack must carry.

* **export** (goal <= 5 s): ``services.evidence_pack.assemble`` + ``write`` (JSON, HTML, signature), as
  ``releasegate evidence export`` runs them after its setup; once without a checkpoint covering the
  version (the export takes one, which verifies the whole chain first), then with one (median).
* **verify**: ``policy.evidence_pack.verify_pack`` over the written files (median): what
  ``releasegate evidence verify`` does after reading them.
* **the commands, whole**: ``releasegate evidence export`` and ``verify`` in their own processes on that
  log (start-up, imports, the manifest file, the MLflow registry of the bench's home), one run each; the
  first export in the new home also creates its MLflow store, so it is reported apart.
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, isolated_home, measure, med  # noqa: E402

KEY = bytes(range(32))
T0 = datetime(2022, 1, 3, 7, tzinfo=UTC)


def seed(url: str, days: int, noise: int):
    """The log described above; returns it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from releasegate import records
    from releasegate.decisions import DecisionOutcome
    from releasegate.policy.approvers import ApproverConfig, config_digest
    from releasegate.policy.handshake import Role
    from releasegate.policy.signatures import ApprovalStatement, public_hex, sign
    from releasegate.store.trust import SealedDecisionLog

    log = SealedDecisionLog(url, key_loader=lambda: KEY)
    keys = {"pm-anna": Ed25519PrivateKey.generate(), "risk-carla": Ed25519PrivateKey.generate()}
    config = ApproverConfig(
        pm=["pm-anna"], risk=["risk-carla"], keys={n: public_hex(k.public_key()) for n, k in keys.items()}
    )
    log.append(
        records.approvers_config(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="the first approvers config, trusted once",
            subject=records.APPROVERS_CONFIG_SUBJECT,
            actor="ops-admin",
            details={
                "status": "trusted_once",
                "digest": config_digest(config),
                "config": config.model_dump(mode="json"),
            },
        ),
        now=T0,
    )
    run, report_sha = str(uuid.uuid4()), "c" * 64
    subject = records.promotion_subject(run)
    common = {"model_name": "credit", "candidate_version": "3"}
    log.append(
        records.approval(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="TECH_GATE_PASS: gate report promote",
            subject=subject,
            actor="releasegate:gates",
            tech_gate_report_ref="artifact:gates",
            details={
                **common,
                "role": "tech",
                "approver": "releasegate:gates",
                "outcome": "promote",
                "gate_report": {"model": "credit", "candidate_version": "3", "outcome": "promote", "gates": []},
                "gate_report_sha256": report_sha,
                "figures": {"primary_metric": "roc_auc", "candidate_kpi": 0.81, "champion_kpi": 0.78},
            },
        ),
        now=T0 + timedelta(minutes=1),
    )
    for i, (role, name) in enumerate(((Role.pm, "pm-anna"), (Role.risk, "risk-carla"))):
        at = T0 + timedelta(minutes=10 + i)
        signed = sign(
            ApprovalStatement(
                **{"model": "credit", "candidate_version": "3"},
                role=role,
                decision="approve",
                approver=name,
                reference=f"REV-{i}",
                gate_report_sha256=report_sha,
                run_id=run,
                signed_at=at,
            ),
            keys[name],
        )
        log.append(
            records.approval(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"{role.value.upper()}_GATE_PASS by {name}",
                subject=subject,
                actor=name,
                tech_gate_report_ref="artifact:gates",
                details={
                    **common,
                    "role": role.value,
                    "approver": name,
                    "decision": "approve",
                    "reference": f"REV-{i}",
                    "gate_report_sha256": report_sha,
                    **signed.record(),
                },
            ),
            now=at,
        )
    refs = {
        "tech_gate_report_ref": "artifact:gates",
        "pm_gate_ref": "PM_GATE_PASS:pm-anna",
        "risk_gate_ref": "RISK_GATE_PASS:risk-carla",
        "joint_release_ack_ref": "JOINT_RELEASE_ACK:x",
        "rollback_plan_ref": "archive:prod.credit@v1",
    }
    release = {**common, "prod_model": "prod.credit", "staging_model": "staging.credit", "prod_version": "2"}
    for i, status in enumerate(("pending", "final")):
        log.append(
            records.promotion(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"promotion {status}: staging.credit v3 as prod.credit v2",
                subject=subject,
                actor="releasegate:promotion",
                details={**release, "status": status, "promotion_outcome": "promote"},
                **refs,
            ),
            now=T0 + timedelta(minutes=20 + i),
        )
    for day in range(days):
        business_date = date(2022, 1, 3) + timedelta(days=day)
        at = T0 + timedelta(days=day + 1, hours=12)
        for k in range(noise):
            log.append(
                records.deferral(
                    decision_outcome=DecisionOutcome.reject,
                    decision_rationale=f"CAPACITY_LIMIT: the pool's slots are held ({day}/{k})",
                    subject=records.flow_run_subject(uuid.uuid4()),
                    actor="releasegate:capacity-gateway",
                    details={"deferral_reason_code": "CAPACITY_LIMIT", "next_evaluation_at": at.isoformat()},
                ),
                now=at + timedelta(seconds=k),
            )
        champion = {"version": "2", "stage": "full", "max_psi": 0.02 + (day % 7) / 100, "metric_drop": 0.001}
        log.append(
            records.monitoring(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"EOD {business_date} credit: monitor (WITHIN_LIMITS)",
                subject=records.model_subject("credit"),
                actor="releasegate:eod-monitoring",
                details={
                    "model_name": "credit",
                    "business_date": business_date.isoformat(),
                    "action": "monitor",
                    "reason_code": "WITHIN_LIMITS",
                    "champion": champion,
                    "breached": [],
                },
            ),
            now=at + timedelta(hours=6),
        )
    return log


def _commands(home: Path, key, folder: Path) -> list[float]:
    """Wall time of ``evidence export`` and ``evidence verify`` as a user runs them on the seeded log."""
    from cryptography.hazmat.primitives import serialization

    from releasegate.policy.signatures import public_hex

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (home / "service_ed25519.pem").write_bytes(pem)
    env = {
        **os.environ,
        "RELEASEGATE_SERVICE_KEY": KEY.hex(),
        "RELEASEGATE_DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
        "RELEASEGATE_CHECKPOINT_DIR": str(home / "checkpoints"),
    }
    out = []
    for cmd in (
        ["export", "credit", "3", "--out", str(folder)],  # the home's MLflow store is created on first use
        ["export", "credit", "3", "--out", str(folder)],
        ["verify", str(folder), "--public-key", public_hex(key.public_key())],
    ):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "releasegate", "evidence", *cmd], env=env, capture_output=True)
        out.append(time.perf_counter() - t0)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    return out


def main() -> None:
    a = args(
        __doc__.splitlines()[0],
        lambda p: (
            p.add_argument("--days", type=int, default=1000, help="business dates of monitoring"),
            p.add_argument("--noise", type=int, default=10, help="other records per business date"),
        ),
    )
    days, noise = (20, 2) if a.smoke else (a.days, a.noise)
    repeats = 1 if a.smoke else (a.repeats or 5)
    home = isolated_home()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from releasegate.clock import SystemClock
    from releasegate.policy.evidence_pack import HTML_FILE, JSON_FILE, SIGNATURE_FILE, verify_pack
    from releasegate.services.evidence_html import render
    from releasegate.services.evidence_pack import EvidenceSources, assemble, write

    t0 = time.perf_counter()
    log = seed(f"sqlite:///{home / 'decisions.db'}", days, noise)
    seeded = time.perf_counter() - t0
    key = Ed25519PrivateKey.generate()
    sources = EvidenceSources(
        log=log,
        signing_key=key,
        checkpoint_dir=home / "checkpoints",
        clock=SystemClock(),
        inventory=lambda model: {"model": model, "owners": ["ds-olga"], "risk_tier": "standard"},
    )
    out = Path(tempfile.mkdtemp(prefix="rg-evidence-"))

    def export() -> None:
        pack = assemble(sources, "credit", "3")
        assert len(pack["monitoring"]) == days and len(pack["approvals"]) == 3, "the pack lacks what the log holds"
        write(pack, out, key, render)

    t0 = time.perf_counter()
    export()  # no checkpoint yet: the export takes one (and verifies the chain first)
    first = time.perf_counter() - t0
    times = measure(export, repeats, warmup=0)
    files = {n: (out / n).read_bytes() for n in (JSON_FILE, HTML_FILE, SIGNATURE_FILE)}
    findings, _ = verify_pack(files, key.public_key())
    assert not findings, findings
    checks = measure(lambda: verify_pack(files, key.public_key()), repeats, warmup=0)
    cli = _commands(home, key, out.parent / "cli-pack")
    records = log.count()
    size = sum(len(b) for b in files.values()) / 1e6
    label = "evidence (smoke)" if a.smoke else "evidence"
    what = f"{days:,} business dates, {records:,} records in the log"
    rows = [
        Row(label, "export, checkpoint taken", first, "s", "<= 5 s", f"{what}; one run"),
        Row(label, "export (p50)", med(times), "s", "<= 5 s", f"{what}; checkpoint exists; median of {repeats}"),
        Row(label, "verify offline (p50)", med(checks), "s", "", f"pack of {size:.1f} MB; median of {repeats}"),
        Row(label, "evidence export, whole command", cli[1], "s", "<= 5 s", "own process, one run"),
        Row(label, "evidence export, first in a new home", cli[0], "s", "", "creates the MLflow store too"),
        Row(label, "evidence verify, whole command", cli[2], "s", "", "own process, one run"),
        Row(label, "seed the log", seeded, "s", "", "sealed appends, not part of the export"),
    ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()
