"""The hourly ``audit-checkpoint`` deployment on the real Prefect harness: a signed checkpoint in the
folder and as a Prefect artifact; a log whose chain is broken is not vouched for."""

import json

import pytest
from sqlalchemy import text

from releasegate import bootstrap
from releasegate.store.checkpoints import check, read_checkpoints
from tests.support.records import deferral

pytestmark = pytest.mark.prefect


def _artifact(key: str):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as c:
        return c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def test_the_hourly_checkpoint_writes_a_file_and_an_artifact_and_refuses_a_broken_log(
    prefect_harness, rg_home, tmp_path, monkeypatch
):
    from flows.audit_checkpoint import ARTIFACT_KEY, audit_checkpoint

    folder = tmp_path / "outside-the-db"
    monkeypatch.setenv("RELEASEGATE_CHECKPOINT_DIR", str(folder))
    log = bootstrap.decision_log()
    for i in range(3):
        log.append(deferral(i))
    before = len(_artifact(ARTIFACT_KEY))

    flow = audit_checkpoint.with_options(retries=0)
    state = flow(return_state=True)
    assert state.is_completed(), state
    out = state.result()
    [(path, cp)] = read_checkpoints(folder)
    assert out["last_seq"] == cp.last_seq == 3 and out["path"] == str(path)
    assert cp.last_hash == log.head()[1]
    assert check(log, read_checkpoints(folder), bootstrap.settings().signing_key().public_key()) == []
    artifacts = _artifact(ARTIFACT_KEY)
    assert len(artifacts) == before + 1
    newest = max(artifacts, key=lambda a: a.created)
    assert cp.signature in newest.data and cp.last_hash in newest.data and "#3" in newest.data

    # Someone edits a record in place (with the guard dropped, as a database owner could).
    with log.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS decisions_no_update"))
        conn.execute(
            text("UPDATE decisions SET decision_rationale = 'nothing to see' WHERE seq = 2"),
        )
    state = flow(return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="decision log tampered"):
        state.result()
    assert len(read_checkpoints(folder)) == 1  # the broken log was not signed
    assert len(_artifact(ARTIFACT_KEY)) == before + 1
    assert json.loads(path.read_text())["last_seq"] == 3
