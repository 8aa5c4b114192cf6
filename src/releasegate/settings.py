"""Settings, read from the environment with the prefix ``RELEASEGATE_`` (pydantic-settings).

| variable                              | default                                   |
|---------------------------------------|-------------------------------------------|
| RELEASEGATE_HOME                      | ./.releasegate                            |
| RELEASEGATE_DATABASE_URL              | sqlite:///<home>/releasegate.db           |
| RELEASEGATE_MLFLOW_TRACKING_URI       | sqlite:///<home>/mlflow.db                |
| RELEASEGATE_MLFLOW_REGISTRY_URI       | same as the tracking URI                  |
| RELEASEGATE_ENVIRONMENTS              | ["dev","staging","prod"] (JSON list)      |
| RELEASEGATE_PROD_ENVIRONMENT          | prod                                      |
| RELEASEGATE_PREFECT_TELEMETRY         | false                                     |
| RELEASEGATE_APPROVAL_POLL_SECONDS     | 5 (how often a paused run checks for input)|
| RELEASEGATE_APPROVAL_COOLDOWN_SECONDS | 60 (wait after 5 refused approvals in a row; doubles) |
| RELEASEGATE_SERVICE_KEY               | <home>/service.key (64 hex chars, mode 0600, made on first use) |
| RELEASEGATE_CHECKPOINT_DIR            | <home>/checkpoints (signed log checkpoints: put it outside the DB's reach) |
| RELEASEGATE_KEY_DIR                   | ~/.releasegate/keys (an approver's own signing keys, mode 0600) |
| RELEASEGATE_ALIAS_GUARD               | restore (champion/archive moved outside releasegate: restore, report, off) |
| RELEASEGATE_CONSOLE_URL               | http://localhost:4300 (the console's base URL in notices) |
| RELEASEGATE_SMTP_HOST / _PORT / _SENDER / _TLS / _USERNAME / _PASSWORD | unset: no e-mail notices |
| RELEASEGATE_NOTIFY_WEBHOOK_URL        | unset: no chat notices (Slack/Teams incoming webhook) |
| RELEASEGATE_ACK_REMINDER_LEAD_MINUTES | 120 (remind before a joint release ack expires; 0: never) |
| RELEASEGATE_CONSOLE_OIDC_*            | OIDC sign-in of the console (``releasegate.console_settings``; off) |

The service key seals every record releasegate writes (``releasegate.store.trust``); it is never in the log.
Every process that writes or reads trusted records of one decision log needs the same key: the same
``RELEASEGATE_HOME`` or the same ``RELEASEGATE_SERVICE_KEY``.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELEASEGATE_", extra="ignore")

    home: Path = Field(default=Path(".releasegate"), description="Folder for local state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the decision log; postgresql+psycopg://… works."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default sqlite:///<home>/mlflow.db."
    )
    mlflow_registry_uri: str | None = Field(
        default=None, description="MLflow model registry URI; default the tracking URI."
    )
    environments: list[str] = Field(
        default_factory=lambda: ["dev", "staging", "prod"],
        description="Environment names (JSON list); registry events act on `<env>.<model>` of these.",
    )
    prod_environment: str = Field(default="prod", description="The environment that needs documented approval.")
    prefect_telemetry: bool = Field(default=False, description="Prefect analytics (off: nothing leaves the machine).")
    approval_poll_seconds: int = Field(
        default=5, ge=1, le=60, description="How often a run paused for approval checks for input."
    )
    approval_cooldown_seconds: int = Field(
        default=60, ge=1, le=900, description="Wait after a burst of refused approvals before asking again."
    )
    service_key: SecretStr | None = Field(default=None, description="Hex key that seals trusted records.")
    checkpoint_dir: Path | None = Field(default=None, description="Where `audit checkpoint` writes.")
    key_dir: Path = Field(
        default=Path("~/.releasegate/keys"), description="Approvers' private keys (`keys init`, `approve`)."
    )
    alias_guard: Literal["restore", "report", "off"] = Field(
        default="restore", description="What the registry watcher does with a champion/archive moved by hand."
    )
    console_url: str = Field(
        default="http://localhost:4300",
        description="The console's base URL as approvers open it; "
        "notices link to `<console_url>/inbox?run=<run id>#<run id>`.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for the e-mail to approvers when a promotion waits (unset: no e-mail)."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 TLS, 25 plain).")
    smtp_sender: str = Field(default="releasegate@localhost", description="The From address of the notices.")
    smtp_tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="STARTTLS after connecting, TLS from the start (`ssl`), or `none`."
    )
    smtp_username: str | None = Field(default=None, description="SMTP login (unset: no login).")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password for `smtp_username`.")
    notify_webhook_url: SecretStr | None = Field(
        default=None,
        description='Slack/Teams-compatible incoming webhook: a POST of `{"text": ...}` when a promotion waits.',
    )
    ack_reminder_lead_minutes: int = Field(
        default=120,
        ge=0,
        le=1440,
        description="Minutes before a promotion's joint release ack expires (24 h after the later approval) "
        "that the deferral sweeper reminds its approvers and the `overrides` list, once (0: no reminder).",
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.prod_environment not in self.environments:
            raise ValueError(
                f"prod_environment {self.prod_environment!r} is not one of environments {self.environments}"
            )
        return self

    @cached_property
    def home_dir(self) -> Path:
        path = self.home.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'releasegate.db'}"

    def service_key_bytes(self) -> bytes:
        """The service key: RELEASEGATE_SERVICE_KEY, else <home>/service.key (made on first use)."""
        from releasegate.store.trust import load_or_create_key, parse_key

        if self.service_key is not None:
            return parse_key(self.service_key.get_secret_value(), "RELEASEGATE_SERVICE_KEY")
        return load_or_create_key(self.home_dir / "service.key")

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return (self.checkpoint_dir or self.home_dir / "checkpoints").expanduser()

    def signing_key(self):
        """The service's Ed25519 key for checkpoints: <home>/service_ed25519.pem (made on first use)."""
        from releasegate.store.checkpoints import KEY_FILE, load_or_create_signing_key

        return load_or_create_signing_key(self.home_dir / KEY_FILE)

    @property
    def resolved_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def resolved_registry_uri(self) -> str:
        return self.mlflow_registry_uri or self.resolved_tracking_uri

    def apply_telemetry_policy(self) -> None:
        """Keep Prefect's analytics off unless telemetry was asked for explicitly."""
        value = "true" if self.prefect_telemetry else "false"
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", value)


def get_settings() -> Settings:
    return Settings()


def project_root(start: Path | None = None) -> Path:
    """The folder holding prefect.yaml: $RELEASEGATE_PROJECT_DIR, else searched upwards."""
    env = os.environ.get("RELEASEGATE_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    for base in [start or Path.cwd(), Path(__file__).resolve()]:
        for folder in [base, *base.parents]:
            if (folder / "prefect.yaml").is_file():
                return folder
    raise FileNotFoundError("no prefect.yaml found; run from the project folder or set RELEASEGATE_PROJECT_DIR")
