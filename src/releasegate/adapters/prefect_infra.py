"""``releasegate infra up``: the work pool, its queues and caps, and the capacity block, idempotently.

The pool's job environment sets ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` (``HEARTBEAT_SECONDS``): every
run on it sends a heartbeat that often, which the zombie automation (``deployments/automations.yaml``,
``releasegate-crash-zombie-flow-runs``) needs to tell a live run from one whose worker died.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.events.schemas.automations import AutomationCore, EventTrigger
from prefect.exceptions import ObjectNotFound

from releasegate.adapters.blocks import ReleasegateConfig, load_config_block
from releasegate.adapters.config import CONFIGS, config_file, from_file
from releasegate.policy.capacity import GatewayConfig
from releasegate.policy.crash_retry import HEARTBEAT_ENV, HEARTBEAT_SECONDS


def with_heartbeats(template: dict) -> dict:
    """The pool's base job template with ``HEARTBEAT_ENV`` in its default job environment (kept when an
    operator set another value there)."""
    out = copy.deepcopy(template)
    env = out.setdefault("variables", {}).setdefault("properties", {}).setdefault("env", {"type": "object"})
    default = dict(env.get("default") or {})
    default.setdefault(HEARTBEAT_ENV, str(HEARTBEAT_SECONDS))
    env["default"] = default
    return out


@dataclass
class InfraChange:
    what: str
    action: str  # created | updated | unchanged
    detail: str


def infra_up(config: GatewayConfig) -> list[InfraChange]:
    changes: list[InfraChange] = []
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(config.pool_name)
            template = with_heartbeats(pool.base_job_template)
            detail = f"concurrency_limit={config.pool_concurrency_limit}, {HEARTBEAT_ENV}={_heartbeat(template)}"
            if pool.concurrency_limit != config.pool_concurrency_limit or template != pool.base_job_template:
                client.update_work_pool(
                    config.pool_name,
                    WorkPoolUpdate(concurrency_limit=config.pool_concurrency_limit, base_job_template=template),
                )
                changes.append(InfraChange(f"work pool {config.pool_name}", "updated", detail))
            else:
                changes.append(InfraChange(f"work pool {config.pool_name}", "unchanged", detail))
        except ObjectNotFound:
            from prefect.workers.process import ProcessWorker

            client.create_work_pool(
                WorkPoolCreate(
                    name=config.pool_name,
                    type="process",
                    base_job_template=with_heartbeats(ProcessWorker.get_default_base_job_template()),
                    concurrency_limit=config.pool_concurrency_limit,
                    description="releasegate: governed ML jobs",
                )
            )
            changes.append(
                InfraChange(
                    f"work pool {config.pool_name}",
                    "created",
                    f"process, concurrency_limit={config.pool_concurrency_limit}, {HEARTBEAT_ENV}={HEARTBEAT_SECONDS}",
                )
            )

        existing = {q.name: q for q in client.read_work_queues(work_pool_name=config.pool_name)}
        for q in config.queues:
            detail = f"priority={q.priority}, concurrency_limit={q.concurrency_limit}"
            current = existing.get(q.name)
            if current is None:
                client.create_work_queue(
                    name=q.name,
                    work_pool_name=config.pool_name,
                    priority=q.priority,
                    concurrency_limit=q.concurrency_limit,
                )
                changes.append(InfraChange(f"queue {q.name}", "created", detail))
            elif current.priority != q.priority or current.concurrency_limit != q.concurrency_limit:
                client.update_work_queue(current.id, priority=q.priority, concurrency_limit=q.concurrency_limit)
                changes.append(InfraChange(f"queue {q.name}", "updated", detail))
            else:
                changes.append(InfraChange(f"queue {q.name}", "unchanged", detail))

    from releasegate.adapters.prefect_slots import ensure_limits, limits_of

    caps = {n: c for q in config.queues for n, c in limits_of(config, q.name).items()}
    for name, action in ensure_limits(config).items():  # the atomic admission slots (prefect_slots)
        changes.append(InfraChange(f"concurrency limit {name}", action, f"limit={caps[name]}, leased slots"))

    for name in CONFIGS:
        value = (config if name == "capacity-policy" else from_file(name)).model_dump(mode="json")
        try:
            action = "unchanged" if load_config_block(name).values == value else "updated"
        except ValueError:
            action = "created"
        if action != "unchanged":
            ReleasegateConfig(values=value).save(name, overwrite=True)
        source = CONFIGS[name][1] if name == "capacity-policy" else f"from {config_file(name)}"
        changes.append(InfraChange(f"block releasegate-config/{name}", action, source))
    return changes


def _heartbeat(template: dict) -> str:
    return str(template["variables"]["properties"]["env"]["default"][HEARTBEAT_ENV])


ONCALL_BLOCK = "releasegate-oncall"


def ensure_oncall_webhook(url: str) -> InfraChange:
    """A custom-webhook notification block named ``releasegate-oncall`` posting JSON to ``url``."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name="releasegate on-call",
        url=url,
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
    )
    try:
        existing = CustomWebhookNotificationBlock.load(ONCALL_BLOCK)
        assert isinstance(existing, CustomWebhookNotificationBlock)  # sync caller: not a coroutine
        action = "unchanged" if existing.url == url else "updated"
    except ValueError:
        action = "created"
    if action != "unchanged":
        block.save(ONCALL_BLOCK, overwrite=True)
    return InfraChange(f"block custom-webhook/{ONCALL_BLOCK}", action, url)


def _block_document_id(client, name: str):
    """The id of the (non-anonymous) block document called ``name``, of any block type."""
    offset = 0
    while True:
        page = client.read_block_documents(offset=offset, limit=200, include_secrets=False)
        for doc in page:
            if doc.name == name and not doc.is_anonymous:
                return doc.id
        if len(page) < 200:
            return None
        offset += 200


def _expected_events(automation: AutomationCore) -> str:
    trigger = automation.trigger
    # Only an event trigger has ``expect``; releasegate's automations (deployments/automations.yaml) all are.
    assert isinstance(trigger, EventTrigger), f"automation {automation.name}: not an event trigger"
    return ", ".join(trigger.expect)


def apply_automations(path) -> list[InfraChange]:
    """Create or update the automations in ``path`` by name; skip those whose notify block is missing."""
    from pathlib import Path

    from releasegate.yamlio import load_yaml

    doc = load_yaml(Path(path)) or {}
    changes: list[InfraChange] = []
    with get_client(sync_client=True) as client:
        for spec in doc.get("automations") or []:
            spec = dict(spec)
            actions, missing = [], []
            for action in spec.get("actions") or []:
                action = dict(action)
                block_name = action.pop("notify_block", None)
                if block_name:
                    block_id = _block_document_id(client, block_name)
                    if block_id is None:
                        missing.append(block_name)
                        continue
                    action["block_document_id"] = block_id
                actions.append(action)
            if missing:
                changes.append(
                    InfraChange(
                        f"automation {spec['name']}",
                        "skipped",
                        f"no block named {', '.join(missing)} (use --oncall-webhook URL)",
                    )
                )
                continue
            automation = AutomationCore.model_validate({**spec, "actions": actions})
            existing = client.read_automations_by_name(spec["name"])
            if existing:
                client.update_automation(existing[0].id, automation)
                for extra in existing[1:]:
                    client.delete_automation(extra.id)
                changes.append(InfraChange(f"automation {spec['name']}", "updated", _expected_events(automation)))
            else:
                client.create_automation(automation)
                changes.append(InfraChange(f"automation {spec['name']}", "created", _expected_events(automation)))
    return changes
