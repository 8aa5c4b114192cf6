"""No traceback for any CLI input: every releasegate command given a missing file, text that is not
JSON (or YAML), an unknown id or a time without its UTC offset answers with one line, ``refused: <field>:
<rule>``, and exit 2.

The Prefect API is pointed at a closed port: a command that reached Prefect before refusing its input
fails here (a connection error), so each refusal below happens at parse, before anything is started.
Unknown ids that only Prefect can answer (a well-formed flow run id) are covered with the real harness in
tests/integration/test_cli_runs.py.
"""

import pytest
import typer
from typer.testing import CliRunner

from releasegate.cli import app
from tests.conftest import ROOT

runner = CliRunner()
UUID0 = "00000000-0000-0000-0000-000000000000"
NAIVE = "2026-11-20T08:00:00"


@pytest.fixture
def env(rg_home, tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("COLUMNS", "250")
    closed = "http://127.0.0.1:9/api"  # closed: nothing may reach Prefect
    monkeypatch.setenv("PREFECT_API_URL", closed)
    monkeypatch.setenv("RELEASEGATE_MODELS", str(ROOT / "blocks" / "models.yaml"))  # the manifest without Prefect
    (tmp_path / "bad.json").write_text('{"event_type": ')
    (tmp_path / "bad.yaml").write_text("deployments: [\n")
    (tmp_path / "a-file").write_text("x")
    # the session's test harness, when an earlier test started it, overrides the environment: override it back
    with temporary_settings(updates={PREFECT_API_URL: closed}):
        yield tmp_path


# (command, arguments with {tmp} for the test's folder, the field the refusal must name)
CASES = [
    # missing files
    ("events send", ["events", "send", "{tmp}/missing.json"], "source"),
    ("capacity plan", ["capacity", "plan", "--what-if", "bogus"], "--what-if"),
    ("artifact show", ["artifact", "show", "no-such-artifact"], "PREFECT_API_URL"),
    ("approvers propose", ["approvers", "propose", "{tmp}/missing.yaml", "--by", "head-mrm-eva"], "config_file"),
    ("approvers propose", ["approvers", "propose", "{tmp}/bad.yaml", "--by", "head-mrm-eva"], "config_file"),
    ("approvers approve", ["approvers", "approve", "no-such-proposal", "--by", "head-mrm-eva"], "proposal"),
    ("approvers invite", ["approvers", "invite", "risk-carla", "--by", "head-mrm-eva", "--hours", "0"], "hours"),
    ("approvers invite", ["approvers", "invite", "risk-carla", "--by", "head-mrm-eva"], "approvers"),
    ("capacity plan", ["capacity", "plan", "--workload", "nope"], "--workload"),
    ("capacity plan", ["capacity", "plan", "--weeks", "1"], "PREFECT_API_URL"),
    ("policy check", ["policy", "check", "{tmp}/missing.yaml"], "prefect_file"),
    ("deploy", ["deploy", "--prefect-file", "{tmp}/missing.yaml"], "--prefect-file"),
    ("infra up", ["infra", "up", "--policy-file", "{tmp}/missing.yaml"], "missing.yaml"),
    ("audit verify", ["audit", "verify", "--checkpoints", "{tmp}/missing"], "--checkpoints"),
    ("audit export", ["audit", "export", "--out", "{tmp}/no-such-folder/log.jsonl"], "--out"),
    (
        "audit export",
        ["audit", "export", "--out", "{tmp}/log.jsonl", "--checkpoints", "{tmp}/missing"],
        "--checkpoints",
    ),
    ("audit checkpoint", ["audit", "checkpoint", "--dir", "{tmp}/a-file"], "--dir"),
    ("evidence export", ["evidence", "export", "credit", "2", "--out", "{tmp}/a-file"], "--out"),
    ("evidence export", ["evidence", "export", "credit", "999", "--out", "{tmp}/pack"], "VERSION"),
    ("evidence verify", ["evidence", "verify", "{tmp}/missing"], "DIR"),
    ("evidence verify", ["evidence", "verify", "{tmp}", "--public-key", "not-hex"], "--public-key"),
    ("keys show", ["keys", "show", "--name", "nobody"], "key"),
    (
        "exception grant",
        [
            "exception",
            "grant",
            "credit",
            "2",
            "--ticket",
            "EXC-1",
            "--by",
            "head-mrm-eva",
            "--requested-by",
            "olga",
            "--rationale",
            "r",
            "--expires",
            "2030-01-01T00:00:00Z",
            "--key",
            "{tmp}/missing.pem",
        ],
        "key",
    ),
    ("approve", ["approve", UUID0, "--role", "pm", "--by", "pm-anna", "--ref", "R", "--key", "{tmp}/x.pem"], "key"),
    # text that is not JSON or YAML
    ("events send", ["events", "send", "{tmp}/bad.json"], "source"),
    ("policy check", ["policy", "check", "{tmp}/bad.yaml"], "prefect_file"),
    ("deploy", ["deploy", "--prefect-file", "{tmp}/bad.yaml"], "--prefect-file"),
    ("infra up", ["infra", "up", "--policy-file", "{tmp}/bad.yaml"], "not valid YAML"),
    (
        "decisions add",
        ["decisions", "add", "--kind", "event", "--outcome", "accept", "--rationale", "r", "--subject", "s"]
        + ["--by", "b", "--details", "{not json"],
        "details",
    ),
    # unknown ids and names
    ("approve", ["approve", "not-a-run", "--role", "pm", "--by", "pm-anna", "--ref", "R"], "run"),
    ("watch", ["watch", "not-a-run"], "run"),
    ("run", ["run", "governance-run", "-p", "requested_by"], "--param"),
    ("gate-failures ack", ["gate-failures", "ack", "no-such-decision", "--by", "ml-lead"], "decision_id"),
    (
        "deferrals override",
        ["deferrals", "override", UUID0, "--ticket", "T", "--by", "ops-bob", "--reason", "r"],
        "run",
    ),
    ("db upgrade", ["db", "upgrade", "--revision", "no-such-revision"], "revision"),
    ("deploy", ["deploy", "--prefect-file", "prefect.yaml", "--name", "no-such-deployment"], "--name"),
    ("simulate", ["simulate", "--days", "1", "--workloads", "no-such-workload"], "workloads"),
    ("console", ["console", "--origin", "http://console.example:4300"], "origin"),
    # the halt switch: an unknown model, no ticket, nothing to resume
    ("halt", ["halt", "no-such-model", "--by", "risk-carla", "--reason", "r", "--ticket", "T"], "model"),
    ("halt", ["halt", "credit", "--by", "risk-carla", "--reason", "r"], "ticket"),
    ("resume", ["resume", "credit", "--by", "risk-carla", "--reason", "r", "--ticket", "T"], "model"),
    ("halts", ["halts", "no-such-model"], "model"),
    # no Prefect server where PREFECT_API_URL points
    ("run", ["run", "no-such-deployment"], "PREFECT_API_URL"),
    # times without their UTC offset
    ("report", ["report", "--since", NAIVE], "since"),
    ("report", ["report", "--week", "last week"], "week"),
    ("govern", ["govern", "--requested-by", "alice", "--approved-at", NAIVE], "approved_at"),
    (
        "exception grant",
        ["exception", "grant", "credit", "2", "--ticket", "EXC-1", "--by", "head-mrm-eva", "--requested-by", "olga"]
        + ["--rationale", "r", "--expires", NAIVE],
        "expires",
    ),
    (
        "decisions add",
        ["decisions", "add", "--kind", "event", "--outcome", "accept", "--rationale", "r", "--subject", "s"]
        + ["--by", "b", "--exception-expiry", NAIVE],
        "exception_expiry",
    ),
]

# Commands that read no file, JSON, id or time from their user (their options are numbers and flags).
NO_SUCH_INPUT = {
    "approvers show",  # no argument to get wrong
    "awaiting",
    "demo",
    "up",
    "down",
    "decisions",
    "deferrals",
    "gate-failures",
    "registry watch",
    "registry guard",
    "webhook serve",
    "keys init",
}


def _commands() -> set[str]:
    """Every command the CLI offers, as `group sub` (a group's own listing as `group`)."""
    root = typer.main.get_command(app)
    out = set()
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        if subs is None:
            out.add(name)
            continue
        if getattr(cmd, "invoke_without_command", False):
            out.add(name)
        out |= {f"{name} {sub}" for sub in subs}
    return out


def test_the_table_covers_every_command():
    covered = {c for c, _, _ in CASES} | NO_SUCH_INPUT
    assert _commands() - covered == set(), "add the new command's bad inputs to CASES"


@pytest.mark.parametrize(("command", "args", "field"), CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_bad_input_is_one_refusal_line_and_exit_2(env, command, args, field):
    done = runner.invoke(app, [a.replace("{tmp}", str(env)) for a in args])
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert isinstance(done.exception, SystemExit), repr(done.exception)  # nothing escaped
    assert "Traceback" not in done.output
    assert done.exit_code == 2, done.output
    assert len(lines) == 1 and lines[0].startswith("refused: ") and field in lines[0], done.output


def test_events_send_of_text_that_is_not_json_is_recorded_and_refused(env):
    from releasegate import bootstrap

    done = runner.invoke(app, ["events", "send", str(env / "bad.json")])
    assert done.exit_code == 2
    [rec] = bootstrap.decision_log().query(kind="event")
    assert rec.decision_outcome.value == "reject" and f"(recorded as decision {rec.decision_id})" in done.output
