"""Approvals without a human: for ``make demo`` and the benches only.

A real promotion pauses for PM and risk approvals that operators give in the Prefect UI (or with
``releasegate approve``). The demo and the promotion bench must run unattended, so ``DemoApprover``
watches for a paused ``promotion`` run of one model (and version, if given) and resumes it with the same signed
input ``releasegate approve`` sends, under identities that say what they are (``demo-pm-approver``,
``demo-risk-approver``). They are *not* in ``blocks/approvers.yaml``: the demo and the bench add them to
their own copy (``demo_approvers_file``, via ``RELEASEGATE_APPROVERS``), so a real stack refuses them.
The decision log records them like any approver, so nobody can mistake a demo approval for a real one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from uuid import UUID

DEMO_PM, DEMO_RISK, DEMO_COMPLIANCE = "demo-pm-approver", "demo-risk-approver", "demo-compliance-approver"


DEMO_KEYS = "demo-approver-keys"  # beside the demo approvers file: the demo identities' signing keys


def demo_approvers_file(folder: Path) -> Path:
    """A copy of the approver allow-lists with the demo identities added, each with a signing key made in
    ``folder/demo-approver-keys`` and pinned in the copy; point RELEASEGATE_APPROVERS at it."""
    import yaml

    from releasegate.bootstrap import project_root
    from releasegate.policy.signatures import public_hex
    from releasegate.store.keys import create_key, key_path, load_key
    from releasegate.yamlio import load_yaml

    doc = load_yaml(project_root() / "blocks" / "approvers.yaml")
    doc["pm"] = [*doc.get("pm", []), DEMO_PM]
    doc["risk"] = [*doc.get("risk", []), DEMO_RISK]
    doc["compliance"] = [*doc.get("compliance", []), DEMO_COMPLIANCE]
    keys = dict(doc.get("keys") or {})
    for name in (DEMO_PM, DEMO_RISK, DEMO_COMPLIANCE):
        path = key_path(folder / DEMO_KEYS, name)
        keys[name] = public_hex(load_key(path).public_key()) if path.exists() else create_key(path.parent, name)[1]
    doc["keys"] = keys
    path = folder / "approvers.demo.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def signed_input(
    run_id: str,
    role: str,
    approver: str,
    key_dir: Path,
    *,
    reference: str,
    decision: str = "approve",
    statement: str = "",
    comment: str = "",
) -> dict:
    """The run input of a signed approval, as `releasegate approve` sends it: the form fields and a token
    signed with ``approver``'s key from ``key_dir`` over the run's current TECH gate report."""
    from prefect import get_client

    from releasegate import bootstrap
    from releasegate.policy.signatures import ApprovalStatement, sign
    from releasegate.services.promotion import tech_pass
    from releasegate.store.keys import key_path, load_key

    with get_client(sync_client=True) as c:
        params = c.read_flow_run(UUID(str(run_id))).parameters or {}
    _, _, report_sha = tech_pass(bootstrap.app(), str(run_id))
    signed = sign(
        ApprovalStatement(
            model=str(params.get("model_name")),
            candidate_version=str(params.get("candidate_version")),
            role=role,
            decision=decision,
            approver=approver,
            reference=reference,
            gate_report_sha256=report_sha or "",
            run_id=str(run_id),
            signed_at=bootstrap.clock().now(),
        ),
        load_key(key_path(key_dir, approver)),
    )
    return {
        "role": role,
        "approver": approver,
        "reference": reference,
        "decision": decision,
        "statement": statement,
        "comment": comment,
        "token": signed.token(),
    }


class DemoApprover:
    def __init__(
        self,
        model: str,
        version: str | None = None,
        *,
        pm: str = DEMO_PM,
        risk: str = DEMO_RISK,
        compliance: str = DEMO_COMPLIANCE,
        reference: str = "DEMO-APPROVAL",
        poll_seconds: float = 0.3,
        key_dir: Path | None = None,
    ):
        import os

        self.model, self.version, self.pm, self.risk, self.compliance = model, version, pm, risk, compliance
        # the keys demo_approvers_file made beside the approvers file RELEASEGATE_APPROVERS points at
        self.key_dir = key_dir or Path(os.environ.get("RELEASEGATE_APPROVERS", ".")).parent / DEMO_KEYS
        self.reference, self.poll = reference, poll_seconds
        self.given: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="demo-approver")

    def __enter__(self) -> DemoApprover:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        from prefect import get_client
        from prefect.client.schemas.filters import (
            FlowFilter,
            FlowFilterName,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.flow_runs import resume_flow_run

        answered: dict[str, int] = {}  # run id -> pauses answered
        while not self._stop.is_set():
            try:
                with get_client(sync_client=True) as c:
                    runs = c.read_flow_runs(
                        flow_filter=FlowFilter(name=FlowFilterName(any_=["promotion"])),
                        flow_run_filter=FlowRunFilter(
                            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                        ),
                        limit=50,
                    )
                    for r in runs:
                        p = r.parameters or {}
                        if p.get("model_name") != self.model:
                            continue
                        if self.version is not None and str(p.get("candidate_version")) != self.version:
                            continue
                        pauses = sum(1 for s in c.read_flow_run_states(r.id) if s.type == StateType.PAUSED)
                        if answered.get(str(r.id), 0) >= pauses:
                            continue  # this pause is answered; the run has not paused again yet
                        # The flow asks for one role per pause; its pause key says which (pm-approval-…).
                        key = (r.state.state_details.pause_key or "") if r.state else ""
                        role = next((x for x in ("risk", "compliance") if key.startswith(f"{x}-")), "pm")
                        who = {"pm": self.pm, "risk": self.risk, "compliance": self.compliance}[role]
                        resume_flow_run(
                            r.id,
                            run_input=signed_input(
                                str(r.id),
                                role,
                                who,
                                self.key_dir,
                                reference=self.reference,
                                statement=f"demo approval ({who}): not a human decision",
                                comment="given automatically by releasegate's demo approver",
                            ),
                        )
                        answered[str(r.id)] = pauses
                        self.given.append((role, who))
            except Exception:  # the run may move on between read and resume; try again
                pass
            time.sleep(self.poll)
