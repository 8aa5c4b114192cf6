"""The approvals desk: the console's use cases over the same services the CLI uses.

``PrefectApprovalDesk`` lists the promotions paused for a business approval (``releasegate awaiting``:
``adapters.prefect_manual.awaiting_approval``, every paused run, oldest pause first) with the handshake
the run would restore now, the TECH gate report and its figures from the sealed log, and resumes a run
with an approval form's input (``prefect_manual.resume_paused``, what ``releasegate approve`` sends).
The paused run checks the approval again and records it. ``GovernedDirectory`` is the governed
approvers config; ``DecisionJournal`` records the console's sign-ins and refusals.

A listing reads each fact once per request, whatever the number of runs: the governed config, each
model's manifest entry and retrain records, each version's MLflow users, and the records of every
listed run in one query by subjects (``services.handshakes`` builds the same handshake as the run's
own restore). ``page`` builds only the runs on the page asked for; the count is of every waiting run.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from releasegate import records
from releasegate.console_ports import PendingApproval
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRecord
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.handshake import Role, no_eligible_approver
from releasegate.policy.models import ModelSpec
from releasegate.policy.passkeys import Passkey
from releasegate.records import promotion_subject
from releasegate.services.handshakes import base_of, last_tech_pass, restore, staged_by_of

if TYPE_CHECKING:
    from releasegate.adapters.prefect_manual import RunView
    from releasegate.app import App
    from releasegate.store.trust import SealedDecisionLog

BUSINESS = ("pm", "risk", "compliance")


def awaited(view: RunView) -> Role:
    return Role(view.awaiting_role) if view.awaiting_role in BUSINESS else Role.pm


class PrefectApprovalDesk:
    """``paused``: every paused promotion run (``awaiting_approval``); ``among``: how many promotion
    runs are paused and those of some run ids that wait now (``awaiting_among``); ``resume``: resume
    one with an approval form's input; ``config``: the governed approvers config in force;
    ``model_spec``: a model's manifest entry; ``version_users``: who made a staged version in MLflow
    (model, version); ``now``: a monotonic clock in seconds.

    ``page`` keeps the last read of every paused run (reading 1,000 of them from Prefect takes about
    half a second) and reads them again when the count of paused runs or the decision log's head
    differs from the read's (a run pauses after its TECH_GATE_PASS is recorded and records what it
    is resumed with), or the read is ``max_age_s`` old. The runs on the page are read again from
    Prefect on every request (with the count, in one call): a run that no longer waits, or waits for
    another role, is never shown (the whole read is redone)."""

    def __init__(
        self,
        log: SealedDecisionLog,
        paused: Callable[[], Sequence[RunView]],
        among: Callable[[list[str]], tuple[int, Sequence[RunView]]],
        resume: Callable[[str, dict[str, Any]], None],
        config: Callable[[], ApproverConfig],
        model_spec: Callable[[str], ModelSpec | None],
        version_users: Callable[[str, str], list[str]],
        record_approval: Callable[..., str],
        wait_seconds: float = 20.0,
        max_age_s: float = 30.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.paused, self.among = log, paused, among
        self.resume, self.config, self.model_spec = resume, config, model_spec
        self.version_users, self.record_approval = version_users, record_approval
        self.wait_seconds, self.max_age_s, self.now = wait_seconds, max_age_s, now
        self._read: tuple[tuple[int, int], float, list[RunView]] | None = None
        self._users: dict[tuple[str, str], tuple[float, list[str]]] = {}  # (when asked, users)

    def pending(self) -> list[PendingApproval]:
        return self._items(self.paused())

    def page(self, roles: Collection[Role] | None, start: int, count: int) -> tuple[list[PendingApproval], int]:
        """The runs awaiting one of ``roles`` (None: every role), oldest pause first, from ``start`` (at
        most ``count``), and how many await them in all."""
        start = max(start, 0)

        def mine(views: list[RunView]) -> list[RunView]:
            return [v for v in views if roles is None or awaited(v) in roles]

        kept = self._read
        if kept is not None and self.now() - kept[1] <= self.max_age_s:
            views = mine(kept[2])
            shown = views[start : start + count]
            paused, confirmed = self.among([v.id for v in shown])
            now = {v.id: v for v in confirmed}
            unchanged = (paused, self.log.head()[0]) == kept[0]
            if unchanged and all(v.id in now and now[v.id].awaiting_role == v.awaiting_role for v in shown):
                return self._items([now[v.id] for v in shown]), len(views)
        mark = (self.among([])[0], self.log.head()[0])  # before the read: a change during it shows next time
        read = list(self.paused())
        self._read = (mark, self.now(), read)
        views = mine(read)
        shown = views[start : start + count]
        now = {v.id: v for v in self.among([v.id for v in shown])[1]}
        return self._items([now[v.id] for v in shown if v.id in now and awaited(now[v.id]) == awaited(v)]), len(views)

    def forget(self) -> None:
        """Drop the kept read: the next ``page`` reads every paused run again."""
        self._read = None

    def item(self, run_id: str) -> PendingApproval | None:
        found = list(self.among([run_id])[1])
        return self._items(found)[0] if found else None

    def _users_of(self, model: str, version: str) -> list[str]:
        """A version's MLflow users, kept: they never change once known. "None known" (a version MLflow
        does not have, or without a user) is asked again after ``max_age_s``."""
        kept = self._users.get((model, version))
        if kept is None or (not kept[1] and self.now() - kept[0] > self.max_age_s):
            kept = (self.now(), self.version_users(model, version))
            self._users[model, version] = kept
        return kept[1]

    def _items(self, views: Sequence[RunView]) -> list[PendingApproval]:
        if not views:
            return []
        config = self.config()
        good, forged = self.log.trusted(subjects=[promotion_subject(v.id) for v in views])
        self.log.refuse_forged(forged, "promotion")
        of_run: dict[str, list[DecisionRecord]] = defaultdict(list)
        for rec in good:
            of_run[rec.subject].append(rec)
        specs: dict[str, ModelSpec | None] = {}
        retrains: dict[str, list[DecisionRecord]] = {}
        out = []
        for v in views:
            p = v.parameters
            model, version = str(p.get("model_name", "?")), str(p.get("candidate_version", "?"))
            requested_by = str(p.get("requested_by", "registry-event"))
            if model not in specs:
                specs[model] = self.model_spec(model)
                retrains[model] = self.log.trusted(kind=DecisionKind.retrain, subject=f"model:{model}")[0]
            staged = staged_by_of(version, retrains[model], self._users_of(model, version), requested_by)
            recs = of_run[promotion_subject(v.id)]
            tech = last_tech_pass(recs)
            d = tech.details if tech else {}
            base = base_of(
                model,
                version,
                requested_by,
                config,
                specs[model],
                staged,
                tech_report_ref=tech.tech_gate_report_ref if tech else None,
                tech_pass=tech is not None,
                candidate_sha256=d.get("candidate_sha256"),
                gate_report_sha256=d.get("gate_report_sha256"),
            )
            h = restore(v.id, base, recs)
            out.append(
                PendingApproval(
                    run_id=str(v.id),
                    handshake=h,
                    awaiting=awaited(v),
                    paused_since=v.paused_since,
                    gate_report=d.get("gate_report"),
                    figures=dict(d.get("figures") or {}),
                    no_eligible_approver=no_eligible_approver(h, awaited(v)),
                )
            )
        return out

    def record_refusal(self, item: PendingApproval, role: Role, refusal: str, raw: dict[str, Any]) -> str:
        return self.record_approval(item.run_id, item.handshake, role, None, refusal, raw)

    def submit(self, item: PendingApproval, run_input: dict[str, Any]) -> str:
        """Resume the run and wait (up to ``wait_seconds``) for the record it writes, as the CLI does."""
        log = self.log
        subject = promotion_subject(item.run_id)
        before = len(log.query(subject=subject))
        self.resume(item.run_id, run_input)
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            new = log.query(subject=subject)[before:]
            mine = [
                r
                for r in new
                if r.decision_kind is DecisionKind.approval
                and r.details.get("role") == run_input.get("role")
                and log.is_trusted(r)
            ]
            if mine:
                return f"{mine[-1].decision_rationale} (decision {mine[-1].decision_id})"
            time.sleep(0.5)
        return f"approval sent to run {item.run_id}; it has not recorded it yet"


class GovernedDirectory:
    """The governed approvers config as the console reads it, and passkey enrolments proposed to it."""

    def __init__(self, app: App) -> None:
        self.app = app

    def config(self) -> ApproverConfig:
        from releasegate.services.approvers import governed_config

        return governed_config("console", self.app)

    def check_invitation(self, name: str, code: str) -> str:
        from releasegate.services.invitations import check_invitation

        return check_invitation(self.app, name, code)

    def enrol(self, name: str, passkey: Passkey, actor: str, invitation: str | None = None) -> tuple[str, list[str]]:
        from releasegate.services.approvers import propose_enrolment

        return propose_enrolment(name, passkey, actor, self.app, invitation)


class DecisionJournal:
    def __init__(self, log: SealedDecisionLog) -> None:
        self.log = log

    def record(self, what: str, actor: str, accepted: bool, rationale: str, **details: Any) -> str:
        subject = f"console:{what}"
        if accepted:
            new = records.event(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=rationale,
                subject=subject,
                actor=actor,
                details={
                    "event_id": str(uuid.uuid4()),
                    "event_type": f"releasegate.console.{what}",
                    "idempotency_key": str(uuid.uuid4()),
                    **details,
                },
            )
        else:
            new = records.refusal(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=rationale,
                subject=subject,
                actor=actor or "<missing>",
                details={"field": "?", "rule": rationale, **details},
            )
        return self.log.append(new).decision_id
