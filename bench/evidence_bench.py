"""Evidence pack of a model version with 1,000 business dates of monitoring: export and offline verify.

Run by hand: ``.venv/bin/python bench/evidence_bench.py [--days 1000] [--noise 10]`` (also part of
``make bench``); ``--smoke``: 20 business dates, 2 other records a day, one repetition.

The decision log (SQLite) is written through the service path (``SealedDecisionLog.append``: validation,
seal, chain) by ``releasegate.testing.evidence_log.seed``: the governed approvers config trusted once, one
promotion of ``credit`` v3 to champion as the flow records it (TECH with its gate report, PM and RISK
approvals signed with the approvers' Ed25519 keys, the pending and final promotion records), then per
business date the EOD verdict of the champion and ``--noise`` records of other runs (deferrals), which
lie inside the span the pack must carry.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, isolated_home, measure, med  # noqa: E402


def _commands(home: Path, key, folder: Path) -> list[float]:
    """Wall time of ``evidence export`` and ``evidence verify`` as a user runs them on the seeded log."""
    from cryptography.hazmat.primitives import serialization

    from releasegate.policy.signatures import public_hex
    from releasegate.testing.evidence_log import KEY

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
    from releasegate.testing.evidence_log import seed

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
