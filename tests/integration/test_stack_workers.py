"""`releasegate up` on a stack that is already up: what counts as a dead worker, and a stack whose Prefect
server is gone. (Restarting a real killed worker: tests/e2e/test_crash_recovery.py.)"""

import json
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from releasegate.tools.stack import alive, ensure_workers, free_port


def test_a_killed_process_not_reaped_yet_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert alive(child.pid)
        child.send_signal(signal.SIGKILL)
        # not waited for: a zombie until reaped, which `kill -0` still finds
        import time

        deadline = time.monotonic() + 30
        while alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not alive(child.pid)


def _stack_json(home, api):
    home.mkdir(parents=True, exist_ok=True)
    info = {
        "home": str(home),
        "prefect_api": api,
        "prefect_ui": api.removesuffix("/api"),
        "mlflow": "http://127.0.0.1:1",
        "webhook": "http://127.0.0.1:1/webhooks/mlflow",
        "processes": [{"name": "worker-releasegate-1", "pid": 999_999_999, "log": str(home / "w.log")}],
        "env": {"PREFECT_API_URL": api},
    }
    (home / "stack.json").write_text(json.dumps(info))


def test_up_on_a_stack_whose_prefect_server_is_gone_says_what_to_do(tmp_path):
    api = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    _stack_json(tmp_path / "stack", api)
    with pytest.raises(RuntimeError, match="does not answer: run `releasegate down`, then `releasegate up`"):
        ensure_workers(tmp_path / "stack", tmp_path, 1, say=lambda m: None)
    # nothing was started or rewritten
    assert json.loads((tmp_path / "stack" / "stack.json").read_text())["processes"][0]["pid"] == 999_999_999


def test_the_cli_refuses_it_without_a_traceback_with_exit_1(tmp_path):
    from releasegate.cli import app

    api = f"http://127.0.0.1:{free_port()}/api"
    _stack_json(tmp_path / "stack", api)
    result = CliRunner().invoke(app, ["up", "--home", str(tmp_path / "stack")])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert out.startswith("up failed:") and "does not answer: run `releasegate down`" in out, out
    assert "Traceback" not in out
