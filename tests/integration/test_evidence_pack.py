"""The evidence pack of a version promoted to champion on the Prefect harness and a real MLflow registry:
exported, verified offline, and each kind of alteration named by `evidence verify`."""

import json
from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.cli import app
from releasegate.policy.signatures import public_hex
from tests.conftest import fast_capacity_policy
from tests.support.promotion import MODEL, PROD, WEAKER_BY_3PCT, promote_with_approvals, register

pytestmark = pytest.mark.prefect


@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, prefect_harness):
    fast_capacity_policy(tmp_path, monkeypatch)
    monkeypatch.setenv("RELEASEGATE_APPROVAL_POLL_SECONDS", "1")
    return rg_home


@pytest.fixture
def clock(live_clock):
    return live_clock


def _verify(folder, key: str):
    return CliRunner().invoke(app, ["evidence", "verify", str(folder), "--public-key", key])


def _flip(text: str, at: int) -> str:
    """One character changed at ``at``: a hex digit or a letter to another of its kind."""
    c = text[at]
    swap = "0" if c != "0" else "1"
    if c.isalpha() and c not in "abcdef":
        swap = "x" if c != "x" else "y"
    return text[:at] + swap + text[at + 1 :]


def test_a_champion_version_gets_a_signed_pack_that_names_each_alteration(home, clock, tmp_path):
    from flows.eod_scoring import eod_scoring

    candidate = register(WEAKER_BY_3PCT)
    run_id, state = promote_with_approvals(candidate)
    assert state.is_completed(), state.message
    prod_v = state.result()["prod_version"]
    assert registry.aliases(PROD) == {"champion": prod_v}
    day = eod_scoring(business_date=date(2026, 11, 23), model_name=MODEL, rows=3000, canary_share=0.0)
    assert day["action"] == "monitor"

    runner = CliRunner()
    folder = tmp_path / "pack"
    done = runner.invoke(app, ["evidence", "export", MODEL, candidate, "--out", str(folder)])
    assert done.exit_code == 0, done.output
    key = public_hex(bootstrap.settings().signing_key().public_key())
    assert key in done.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["evidence.html", "evidence.json", "evidence.sig"]

    pack = json.loads((folder / "evidence.json").read_text())
    assert pack["inventory"]["model"] == MODEL and pack["inventory"]["prod_versions"] == [prod_v]
    assert pack["inventory"]["champion_now"] == prod_v and pack["inventory"]["risk_tier"] == "standard"
    [promotion] = pack["promotions"]
    assert promotion["run_id"] == str(run_id) and promotion["status"] == "final"
    assert promotion["gate_report"]["outcome"] == "promote" and promotion["dossier"]["candidate_sha256"]
    roles = [(a["details"]["role"], a["details"]["approver"]) for a in pack["approvals"]]
    assert roles == [("tech", "releasegate:gates"), ("pm", "pm-anna"), ("risk", "risk-carla")]
    assert all(a["config_digest"] for a in pack["approvals"][1:])
    assert [m["business_date"] for m in pack["monitoring"]] == ["2026-11-23"]
    assert pack["monitoring"][0]["version"] == prod_v
    assert pack["halts"]["records"] == [] and "no halt or resume" in pack["halts"]["note"]
    log = pack["decision_log"]
    assert log["span"][-1]["seq"] == log["checkpoint"]["last_seq"] >= max(log["excerpt"])
    assert list(bootstrap.settings().resolved_checkpoint_dir.glob("checkpoint-*.json"))  # a checkpoint was taken
    html = (folder / "evidence.html").read_text()
    assert "SR 11-7" in html and "Art. 14" in html and "pm-anna" in html and "<svg" in html
    assert "max PSI per business date" in html

    ok = _verify(folder, key)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("evidence pack verified") and "2 signed approvals re-verified" in ok.stdout

    # The prod version names the same promotion.
    again = runner.invoke(app, ["evidence", "export", MODEL, prod_v, "--out", str(tmp_path / "by-prod")])
    assert again.exit_code == 0, again.output
    assert _verify(tmp_path / "by-prod", key).exit_code == 0

    original = (folder / "evidence.json").read_text()

    def altered(text: str):
        (folder / "evidence.json").write_text(text)
        result = _verify(folder, key)
        (folder / "evidence.json").write_text(original)
        assert result.exit_code == 1, result.output
        return result.stderr.splitlines()[0]

    # (a) one byte of the JSON pack outside any signed record: the inventory's owner list
    where = original.index('"risk_tier": "standard"') + len('"risk_tier": "')
    assert "evidence.json: altered after signing" in altered(_flip(original, where))

    # (b) one byte of an approval's signature (the approvals section comes first in the file)
    pm = next(a for a in pack["approvals"] if a["details"]["role"] == "pm")
    at = original.index(pm["details"]["signature"]) + 10
    first = altered(_flip(original, at))
    assert f"approval {pm['decision_id']} (pm by 'pm-anna')" in first and "signature does not verify" in first

    # (c) one byte of a record in the excerpt: the final promotion record's rationale
    final = next(r for r in promotion["records"] if "promoted" in r["rationale"])
    span_at = original.index('"span"')
    at = original.index(final["rationale"], span_at) + 1
    first = altered(_flip(original, at))
    assert f"decision log record #{final['seq']} ({final['decision_id']})" in first
    assert "content no longer matches its hash" in first

    # the HTML altered: named by its file; another key pinned: named by the signature
    (folder / "evidence.html").write_text(html.replace("pm-anna", "pm-anne", 1))
    result = _verify(folder, key)
    assert result.exit_code == 1 and "evidence.html: altered after signing" in result.stderr
    (folder / "evidence.html").write_text(html)
    result = _verify(folder, public_hex(Ed25519PrivateKey.generate().public_key()))
    assert result.exit_code == 1
    assert "evidence.sig: signed by a key that is not the pinned service key" in result.stderr


def test_an_unknown_version_is_refused_in_one_line_and_recorded(home, clock, tmp_path):
    result = CliRunner().invoke(app, ["evidence", "export", MODEL, "999", "--out", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.stderr.startswith("refused: VERSION: the decision log holds no promotion of credit v999")
    assert "recorded as decision" in result.stderr and "Traceback" not in result.output
    [refusal] = bootstrap.decision_log().query(kind="refusal", subject=f"model:{MODEL}:v999")
    assert refusal.details["field"] == "VERSION"
    assert not (tmp_path / "none").exists()
