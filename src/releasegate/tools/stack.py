"""The local server stack: ``releasegate up`` / ``down`` (``make up`` / ``make down``), and its parts
for the integration tests.

``up`` starts, all on loopback, each as a detached process logging to ``<home>/logs``:

1. ``prefect server start`` (its database: ``PREFECT_API_DATABASE_CONNECTION_URL`` when given, e.g.
   ``postgresql+asyncpg://postgres@127.0.0.1:5432/prefect``; else SQLite under ``<home>/prefect``);
2. ``releasegate webhook serve`` with a generated ``RELEASEGATE_WEBHOOK_SECRET``;
3. ``mlflow server`` (SQLite backend under ``<home>``, webhooks to the receiver allowed on loopback)
   and the ``releasegate`` MLflow webhook for ``model_version.created`` and alias changes;
4. ``releasegate infra up`` and ``releasegate deploy`` (everything in ``prefect.yaml``);
5. ``releasegate console`` on ``http://localhost:<console_port>`` (the approvers' web console; its
   session key generated here, its URL given to the workers so notices link to it);
6. ``prefect worker start --pool releasegate`` (``workers`` of them).

The ports, pids and environment are written to ``<home>/stack.json`` and ``<home>/stack.env`` (source it
to talk to the stack); ``down`` stops what ``up`` started. ``up`` on a stack that is already up starts
only workers: each of the ``workers`` whose process is gone again, and any missing
(``ensure_workers``; docs/recover-a-worker.md).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exe(name: str) -> str:
    """The executable installed beside this Python (the venv's), else from PATH."""
    sibling = Path(sys.executable).with_name(name)
    return str(sibling) if sibling.exists() else name


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s" + (f"; see {log}" if log else ""))


@dataclass
class Proc:
    name: str
    pid: int
    log: str
    popen: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def stop(self, timeout: float = 20) -> None:
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None:
                if self.popen.poll() is not None:
                    return
            else:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.2)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def spawn(name: str, cmd: list[str], env: dict[str, str], logs: Path, cwd: Path | None = None) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with open(log, "ab") as out:  # the child keeps its own descriptor
        popen = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` stops it and its children
        )
    return Proc(name, popen.pid, str(log), popen)


def base_env(home: Path) -> dict[str, str]:
    skip = ("PREFECT_API_", "PREFECT_SERVER_DATABASE_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}  # MLflow's: see mlflow_env
    env |= {
        "RELEASEGATE_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }
    return env


def start_prefect_server(
    home: Path, port: int, database_url: str | None = None, env: dict[str, str] | None = None
) -> tuple[Proc, str]:
    """``prefect server start`` on loopback; returns the process and its API URL once healthy."""
    env = dict(env or base_env(home))
    if database_url:  # the current name; Prefect 3.8 still reads PREFECT_API_DATABASE_CONNECTION_URL too
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    env["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    p = spawn(
        f"prefect-server-{port}",
        [exe("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        home / "logs",
    )
    api = f"http://127.0.0.1:{port}/api"
    wait_http(f"{api}/health", timeout=180, proc=p.popen, log=Path(p.log))
    return p, api


def start_worker(home: Path, name: str, env: dict[str, str], cwd: Path, pool: str = "releasegate") -> Proc:
    """``prefect worker start`` on the pool; its flow runs send heartbeats every ``HEARTBEAT_SECONDS``
    (unless the environment names another frequency), which the zombie automation needs."""
    from releasegate.policy.crash_retry import HEARTBEAT_ENV, HEARTBEAT_SECONDS

    return spawn(
        f"worker-{name}",
        [exe("prefect"), "worker", "start", "--pool", pool, "--name", name, "--type", "process"],
        {HEARTBEAT_ENV: str(HEARTBEAT_SECONDS)} | env,
        home / "logs",
        cwd=cwd,
    )


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie left by a killed child is not running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def ensure_workers(home: Path, project: Path, workers: int, say=print) -> tuple[StackInfo, dict[str, str]]:
    """On a stack that is up: workers ``releasegate-1`` .. ``releasegate-<workers>`` running, each started
    again if its process is gone (killed, crashed) and added if missing; a running one is left alone, and
    so are workers beyond ``workers`` (``down`` stops them). Returns the stack and name -> running |
    restarted | added. Refuses when the stack's Prefect server does not answer."""
    home = home.resolve()
    path = home / "stack.json"
    info = json.loads(path.read_text())
    try:
        wait_http(f"{info['prefect_api']}/health", timeout=10)
    except RuntimeError:
        raise RuntimeError(
            f"a stack is recorded in {home} (stack.json) but its Prefect server at {info['prefect_api']} does "
            "not answer: run `releasegate down`, then `releasegate up`"
        ) from None
    env = base_env(home) | info["env"] | {"RELEASEGATE_PROJECT_DIR": str(project)}
    procs: list[dict] = info["processes"]
    actions: dict[str, str] = {}
    for i in range(workers):
        name = f"releasegate-{i + 1}"
        at = next((k for k, p in enumerate(procs) if p["name"] == f"worker-{name}"), None)
        if at is not None and alive(procs[at]["pid"]):
            actions[name] = "running"
            continue
        say(f"worker {i + 1} on pool releasegate ({'restarted' if at is not None else 'added'}) ...")
        p = start_worker(home, name, env, project)
        entry = {"name": p.name, "pid": p.pid, "log": p.log}
        if at is None:
            procs.append(entry)
            actions[name] = "added"
        else:
            procs[at] = entry
            actions[name] = "restarted"
    info["processes"] = procs
    path.write_text(json.dumps(info, indent=2))
    return StackInfo(**info), actions


def mlflow_env(uri: str) -> dict[str, str]:
    """releasegate's MLflow and MLflow's own variables, the same store, for stack.env and every worker:
    a team's ``mlflow.<flavor>.log_model`` after ``source stack.env`` (or in a worker's run) registers
    where releasegate looks, not in ``./mlflow.db`` of the folder it runs in."""
    return {
        "RELEASEGATE_MLFLOW_TRACKING_URI": uri,
        "RELEASEGATE_MLFLOW_REGISTRY_URI": uri,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
    }


@dataclass
class StackInfo:
    home: str
    prefect_api: str
    prefect_ui: str
    mlflow: str
    webhook: str
    processes: list[dict]
    env: dict[str, str]
    console: str = ""  # stacks started before the console was part of `up` have none


def up(
    home: Path,
    project: Path,
    *,
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    webhook_port: int = 8765,
    console_port: int = 4300,
    database_url: str | None = None,
    workers: int = 1,
    say=print,
) -> StackInfo:
    home = home.resolve()
    if (home / "stack.json").exists():  # already up: start again what died, add what is missing
        return ensure_workers(home, project, workers, say)[0]
    logs = home / "logs"
    env = base_env(home)
    procs: list[Proc] = []
    try:
        say(f"prefect server on 127.0.0.1:{prefect_port} ({'PostgreSQL' if database_url else 'SQLite'}) ...")
        server, api = start_prefect_server(home, prefect_port, database_url, env)
        procs.append(server)
        secret = secrets.token_hex(16)
        mlflow_uri = f"http://127.0.0.1:{mlflow_port}"
        console_url = f"http://localhost:{console_port}"  # localhost: a secure context for passkeys
        env |= {
            "RELEASEGATE_CONSOLE_URL": console_url,
            "PREFECT_API_URL": api,
            **mlflow_env(mlflow_uri),
            "RELEASEGATE_WEBHOOK_SECRET": secret,
            "RELEASEGATE_PROJECT_DIR": str(project),
        }
        say(f"webhook receiver on 127.0.0.1:{webhook_port} ...")
        hook = spawn(
            "webhook",
            [exe("releasegate"), "webhook", "serve", "--host", "127.0.0.1", "--port", str(webhook_port)],
            env,
            logs,
            cwd=project,
        )
        procs.append(hook)
        ml_env = env | {
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",  # MLflow >= 3.17
            "_MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",  # older MLflow
        }
        say(f"mlflow server on 127.0.0.1:{mlflow_port} ...")
        ml = spawn(
            "mlflow",
            [
                exe("mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{home / 'mlflow-server.db'}",
                "--artifacts-destination",
                str(home / "mlflow-artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
            ml_env,
            logs,
        )
        procs.append(ml)
        wait_http(f"http://127.0.0.1:{webhook_port}/healthz", proc=hook.popen, log=Path(hook.log))
        wait_http(f"{mlflow_uri}/health", proc=ml.popen, log=Path(ml.log))
        _create_webhook(mlflow_uri, f"http://127.0.0.1:{webhook_port}/webhooks/mlflow", secret)
        for args in (["infra", "up"], ["deploy"]):
            say(f"releasegate {' '.join(args)} ...")
            done = subprocess.run([exe("releasegate"), *args], env=env, cwd=project, capture_output=True, text=True)
            (logs / f"releasegate-{args[0]}.log").write_text(done.stdout + done.stderr)
            if done.returncode:
                raise RuntimeError(f"releasegate {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-2000:]}")
        say(f"console on {console_url} ...")
        con = spawn(
            "console",
            [exe("releasegate"), "console", "--host", "localhost", "--port", str(console_port)],
            env | {"RELEASEGATE_CONSOLE_SECRET": secrets.token_hex(32)},
            logs,
            cwd=project,
        )
        procs.append(con)
        wait_http(f"{console_url}/healthz", proc=con.popen, log=Path(con.log))
        for i in range(workers):
            say(f"worker {i + 1} on pool releasegate ...")
            procs.append(start_worker(home, f"releasegate-{i + 1}", env, project))
    except BaseException:
        for p in reversed(procs):
            p.stop()
        raise
    exported = {
        k: env[k] for k in ("PREFECT_API_URL", "RELEASEGATE_HOME", "RELEASEGATE_CONSOLE_URL", *mlflow_env(mlflow_uri))
    }
    exported["RELEASEGATE_WEBHOOK_SECRET"] = secret
    info = StackInfo(
        home=str(home),
        prefect_api=api,
        prefect_ui=api.removesuffix("/api"),
        mlflow=mlflow_uri,
        webhook=f"http://127.0.0.1:{webhook_port}/webhooks/mlflow",
        console=console_url,
        processes=[{"name": p.name, "pid": p.pid, "log": p.log} for p in procs],
        env=exported,
    )
    (home / "stack.json").write_text(json.dumps(asdict(info), indent=2))
    (home / "stack.env").write_text("".join(f"export {k}={v}\n" for k, v in exported.items()))
    return info


def _create_webhook(mlflow_uri: str, url: str, secret: str) -> None:
    from mlflow import MlflowClient
    from mlflow.entities.webhook import WebhookEvent

    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    for w in client.list_webhooks():  # from an earlier `up`: its secret (and maybe port) are stale
        if w.name == "releasegate":
            client.delete_webhook(w.webhook_id)
    client.create_webhook(
        name="releasegate",
        url=url,
        events=[WebhookEvent("model_version", "created"), WebhookEvent("model_version_alias", "created")],
        secret=secret,
    )


def down(home: Path) -> list[str]:
    path = home.resolve() / "stack.json"
    if not path.exists():
        return []
    info = json.loads(path.read_text())
    stopped = []
    for p in reversed(info["processes"]):
        Proc(p["name"], p["pid"], p["log"]).stop()
        stopped.append(p["name"])
    path.unlink()
    return stopped
