"""Prefect's ephemeral server on embedded defaults: releasegate's commands give it a start-up timeout
that fits a busy 2-core machine (unless the user set one), say in one line what to do when it still does
not start, and `infra up` from a team's folder without blocks/ says to set RELEASEGATE_PROJECT_DIR."""

import os
import subprocess
import sys
from pathlib import Path

from releasegate.prefect_startup import SETTING, STARTUP_TIMEOUT_SECONDS, apply_startup_timeout, user_set
from tests.conftest import ROOT

RELEASEGATE = str(Path(sys.executable).with_name("releasegate"))


def fresh_env(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    """The environment of a new user: no Prefect, MLflow or releasegate settings, a fresh home."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELEASEGATE_", "MLFLOW_"))}
    (tmp_path / name).mkdir()
    return keep | {
        "RELEASEGATE_HOME": str(tmp_path / name / "home"),
        "PREFECT_HOME": str(tmp_path / name / "prefect"),
        "COLUMNS": "200",
        **extra,
    }


def test_the_timeout_is_set_unless_the_user_set_it(tmp_path):
    env: dict[str, str] = {"PREFECT_HOME": str(tmp_path / "p")}
    assert apply_startup_timeout(env, cwd=tmp_path) == str(STARTUP_TIMEOUT_SECONDS) and env[SETTING] == "180"
    assert apply_startup_timeout({SETTING: "45"}, cwd=tmp_path) == "45"  # the environment wins
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "profiles.toml").write_text(f'active = "mine"\n[profiles.mine]\n{SETTING} = "60"\n')
    assert user_set({"PREFECT_HOME": str(tmp_path / "p")}, cwd=tmp_path)  # the active profile
    assert not user_set({"PREFECT_HOME": str(tmp_path / "p"), "PREFECT_PROFILE": "other"}, cwd=tmp_path)
    (tmp_path / "prefect.toml").write_text("[server.ephemeral]\nstartup_timeout_seconds = 90\n")
    assert user_set({"PREFECT_HOME": str(tmp_path / "none")}, cwd=tmp_path)  # prefect.toml beside the command


def test_infra_up_on_a_fresh_home_starts_every_time(tmp_path):
    """Three fresh homes in a row on embedded defaults: each `infra up` starts Prefect's ephemeral server
    and succeeds (with Prefect's own 20 s it failed about one time in two on a quiet 2-core machine)."""
    for i in range(3):
        env = fresh_env(tmp_path, f"try{i}", RELEASEGATE_PROJECT_DIR=str(ROOT))
        res = subprocess.run([RELEASEGATE, "infra", "up"], env=env, cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, f"try {i}: {res.stdout}\n{res.stderr}"
        assert "work pool releasegate" in res.stdout


def test_a_server_that_does_not_start_is_one_line_saying_what_to_do(tmp_path):
    env = fresh_env(tmp_path, "slow", RELEASEGATE_PROJECT_DIR=str(ROOT), **{SETTING: "1"})  # the user's choice
    res = subprocess.run([RELEASEGATE, "infra", "up"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "╭" not in res.stderr  # no (Rich) traceback
    [line] = [ln for ln in res.stderr.splitlines() if "error" in ln.lower()]  # beside Prefect's own INFO lines
    assert line.startswith("error: Prefect's temporary API server did not start")
    assert f"did not start within 1 s ({SETTING})" in line and f"export {SETTING}=300" in line
    assert "releasegate up" in line


def test_infra_up_from_a_team_folder_says_to_set_the_project_dir(tmp_path):
    team = tmp_path / "team"
    team.mkdir()
    (team / "prefect.yaml").write_text("name: team\ndeployments: []\n")
    res = subprocess.run(
        [RELEASEGATE, "infra", "up"], env=fresh_env(tmp_path, "teamuser"), cwd=team, capture_output=True, text=True
    )
    assert res.returncode == 2, res.stdout + res.stderr
    said = " ".join(res.stderr.split())
    assert "capacity_policy.yaml: cannot be read" in said and "set RELEASEGATE_PROJECT_DIR" in said
    assert "Traceback" not in res.stderr
