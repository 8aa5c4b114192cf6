"""The env file of the stack in a fresh process: MLflow's own client, started in another folder with what
`releasegate up` exports, resolves releasegate's server. (``mlflow_scope`` in-process:
tests/unit/test_mlflow_scope.py.)"""

import subprocess
import sys


def test_the_stacks_env_gives_mlflow_itself_releasegates_store(tmp_path):
    """What `releasegate up` exports in stack.env and gives every worker: MLflow's own client, in a fresh
    process in another folder, resolves releasegate's server (not ./mlflow.db)."""
    from releasegate.tools.stack import base_env, mlflow_env

    uri = "http://127.0.0.1:5999"
    env = {k: v for k, v in base_env(tmp_path).items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env |= mlflow_env(uri)
    code = "import mlflow\nprint(mlflow.get_tracking_uri())\nprint(mlflow.get_registry_uri())"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout.split() == [uri, uri], done.stderr[-2000:]
    assert env["RELEASEGATE_MLFLOW_TRACKING_URI"] == env["RELEASEGATE_MLFLOW_REGISTRY_URI"] == uri
