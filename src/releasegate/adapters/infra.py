"""``releasegate infra up``: the work pool, its queues and caps, and the capacity block, idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound

from ..capacity import GatewayConfig
from .blocks import CapacityPolicyBlock
from .config import CAPACITY_BLOCK


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
            if pool.concurrency_limit != config.pool_concurrency_limit:
                client.update_work_pool(
                    config.pool_name, WorkPoolUpdate(concurrency_limit=config.pool_concurrency_limit)
                )
                changes.append(
                    InfraChange(
                        f"work pool {config.pool_name}", "updated", f"concurrency_limit={config.pool_concurrency_limit}"
                    )
                )
            else:
                changes.append(
                    InfraChange(
                        f"work pool {config.pool_name}",
                        "unchanged",
                        f"concurrency_limit={config.pool_concurrency_limit}",
                    )
                )
        except ObjectNotFound:
            from prefect.workers.process import ProcessWorker

            client.create_work_pool(
                WorkPoolCreate(
                    name=config.pool_name,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    concurrency_limit=config.pool_concurrency_limit,
                    description="releasegate: governed ML jobs",
                )
            )
            changes.append(
                InfraChange(
                    f"work pool {config.pool_name}",
                    "created",
                    f"process, concurrency_limit={config.pool_concurrency_limit}",
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

    value = config.model_dump(mode="json")
    try:
        block = CapacityPolicyBlock.load(CAPACITY_BLOCK)
        action = "unchanged" if block.policy == value else "updated"
    except ValueError:
        action = "created"
    if action != "unchanged":
        CapacityPolicyBlock(policy=value).save(CAPACITY_BLOCK, overwrite=True)
    changes.append(InfraChange(f"block releasegate-capacity-policy/{CAPACITY_BLOCK}", action, "capacity policy"))
    return changes
