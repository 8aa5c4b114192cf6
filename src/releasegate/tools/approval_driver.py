"""Approvals without a human: for ``make demo`` and the benches only.

A real promotion pauses for PM and risk approvals that operators give in the Prefect UI (or with
``releasegate approve``). The demo and the promotion bench must run unattended, so ``DemoApprover``
watches for a paused ``promotion`` run of one model (and version, if given) and resumes it with the same typed
input the UI form sends, under identities that say what they are (``demo-pm-approver``,
``demo-risk-approver``). They are *not* in ``blocks/approvers.yaml``: the demo and the bench add them to
their own copy (``demo_approvers_file``, via ``RELEASEGATE_APPROVERS``), so a real stack refuses them.
The decision log records them like any approver, so nobody can mistake a demo approval for a real one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

DEMO_PM, DEMO_RISK, DEMO_COMPLIANCE = "demo-pm-approver", "demo-risk-approver", "demo-compliance-approver"


def demo_approvers_file(folder: Path) -> Path:
    """A copy of the approver allow-lists with the demo identities added; point RELEASEGATE_APPROVERS at it."""
    import yaml

    from releasegate.bootstrap import project_root
    from releasegate.yamlio import load_yaml

    doc = load_yaml(project_root() / "blocks" / "approvers.yaml")
    doc["pm"] = [*doc.get("pm", []), DEMO_PM]
    doc["risk"] = [*doc.get("risk", []), DEMO_RISK]
    doc["compliance"] = [*doc.get("compliance", []), DEMO_COMPLIANCE]
    path = folder / "approvers.demo.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


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
    ):
        self.model, self.version, self.pm, self.risk, self.compliance = model, version, pm, risk, compliance
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
                            run_input={
                                "role": role,
                                "approver": who,
                                "reference": self.reference,
                                "decision": "approve",
                                "statement": f"demo approval ({who}): not a human decision",
                                "comment": "given automatically by releasegate's demo approver",
                            },
                        )
                        answered[str(r.id)] = pauses
                        self.given.append((role, who))
            except Exception:  # the run may move on between read and resume; try again
                pass
            time.sleep(self.poll)
