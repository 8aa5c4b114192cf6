"""``audit-checkpoint``: every hour, sign the decision log's head with the service key and write it
outside the database (a file under RELEASEGATE_CHECKPOINT_DIR) and into Prefect (a markdown artifact,
key ``decision-log-checkpoint``): whoever later rewrites the log consistently or cuts its tail cannot
also rewrite what Prefect and the folder already hold (``releasegate audit verify --checkpoints DIR``).

A log whose chain does not verify is not signed: the run fails, naming the break."""

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from releasegate import bootstrap
from releasegate.jobs import governed
from releasegate.services.audit import take_checkpoint

ARTIFACT_KEY = "decision-log-checkpoint"


@governed("audit-checkpoint")
def audit_checkpoint() -> dict:
    s = bootstrap.settings()
    taken = take_checkpoint(bootstrap.decision_log(), s.signing_key(), bootstrap.clock(), s.resolved_checkpoint_dir)
    cp = taken.checkpoint
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        description=f"decision log checkpoint #{cp.last_seq}",
        markdown="\n".join(
            [
                f"# Decision log checkpoint #{cp.last_seq}",
                "",
                "| field | value |",
                "|---|---|",
                f"| last seq | {cp.last_seq} |",
                f"| last hash | `{cp.last_hash}` |",
                f"| created at (UTC) | {cp.created_at.isoformat()} |",
                f"| key id | `{cp.key_id}` |",
                f"| signature | `{cp.signature}` |",
                f"| file | `{taken.path}` |",
                f"| service public key | `{taken.public_key}` |",
                "",
                f"Chain verified over {taken.records} records before signing. An auditor checks the log "
                "against every checkpoint with `releasegate audit verify --checkpoints DIR --public-key KEY`.",
            ]
        ),
    )
    get_run_logger().info("checkpoint #%s signed and written to %s", cp.last_seq, taken.path)
    return {**cp.model_dump(mode="json"), "path": str(taken.path), "records_verified": taken.records}
