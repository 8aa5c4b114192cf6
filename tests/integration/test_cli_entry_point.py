"""The installed `releasegate` entry point in a fresh process, as a user runs it from the shell. (The
same refusals through the Typer app in-process: tests/unit/test_cli_input.py.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def env(rg_home, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # closed: nothing may reach Prefect
    return tmp_path


def test_events_send_of_a_missing_file_from_the_shell(env):
    """The installed entry point, as a user runs it: one line on stderr, exit 2, no traceback."""
    exe = Path(sys.executable).with_name("releasegate")
    done = subprocess.run(
        [str(exe), "events", "send", str(env / "missing.json")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip() == f"refused: source: {env / 'missing.json'}: no such file"
