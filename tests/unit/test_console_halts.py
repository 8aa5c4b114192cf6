"""The console's halt page (``console.halts``) over the real halt use case on a sealed SQLite log and a
fake of our own ``Schedules`` port: the signed-in user is who acts, on-call and Risk only, CSRF checked,
refusals shown as sentences and recorded."""

from __future__ import annotations

import pytest

from releasegate.decisions import DecisionKind
from releasegate.services.halt import HaltDesk, HaltPorts
from releasegate.store.trust import SealedDecisionLog
from tests.support.console import rig


class Schedules:
    def __init__(self) -> None:
        self.paused: list[str] = []

    def pause(self, model: str) -> list[str]:
        self.paused = [f"eod-scoring/{model}#1"]
        return self.paused

    def resume(self, schedules: list[str]) -> list[str]:
        self.paused = []
        return schedules


@pytest.fixture
def world(tmp_path):
    r0 = rig(oncall=("owner-olga",))
    log = SealedDecisionLog(f"sqlite:///{tmp_path / 'log.db'}", clock=r0.clock, key_loader=lambda: b"k" * 32)
    schedules = Schedules()
    ports = HaltPorts(
        log=log,
        clock=r0.clock,
        config=r0.directory.config,
        known_model=lambda m: m == "credit",
        champion=lambda m: "2",
        schedules=schedules,
    )
    return log, schedules, lambda: rig(oncall=("owner-olga",), halts=HaltDesk(ports))


def _form(r, url: str, **fields: str):
    return r.client.post(url, data={"csrf_token": r.csrf(), **fields})


def test_oncall_requests_and_risk_confirms_in_two_sessions(world):
    log, schedules, make = world
    olga, carla = make(), make()
    olga.sign_in("owner-olga")
    page = olga.client.get("/models/credit/halt")
    assert page.status_code == 200 and 'data-status="none"' in page.text and "Request halt" in page.text
    done = _form(olga, "/models/credit/halt", reason="drift", ticket="INC-1")
    assert done.status_code == 200 and "halt REQUESTED" in done.text
    own = _form(olga, "/models/credit/halt", reason="drift", ticket="INC-1")
    assert own.status_code == 400 and "a second person confirms" in own.text
    carla.sign_in("risk-carla")
    form = carla.client.get("/models/credit/halt")
    assert "Confirm halt" in form.text and "Requested by <b>owner-olga</b>" in form.text
    done = _form(carla, "/models/credit/halt", reason="agreed", ticket="INC-1")
    assert "halt CONFIRMED" in done.text and 'data-status="halted"' in done.text
    assert schedules.paused == ["eod-scoring/credit#1"]
    steps = log.query(kind=DecisionKind.halt)
    assert [(r.details["step"], r.actor) for r in steps] == [
        ("request_halt", "owner-olga"),
        ("confirm_halt", "risk-carla"),
    ]
    assert log.query(kind=DecisionKind.refusal)[-1].actor == "owner-olga"


def test_csrf_role_and_unknown_model_are_refused_and_recorded(world):
    log, _, make = world
    pm = make()
    pm.sign_in("pm-anna")
    read = pm.client.get("/models/credit/halt")
    assert read.status_code == 200 and "halt-form" not in read.text  # a reader: no form
    refused = _form(pm, "/models/credit/halt", reason="r", ticket="T")
    assert refused.status_code == 403 and "Only on-call engineers and Risk" in refused.text
    assert pm.journal.entries[-1]["field"] == "role"
    forged = pm.client.post("/models/credit/halt", data={"csrf_token": "nope", "reason": "r", "ticket": "T"})
    assert forged.status_code == 403 and pm.journal.entries[-1]["field"] == "csrf_token"
    assert pm.client.get("/models/nope/halt").status_code == 404
    assert log.query(kind=DecisionKind.halt) == []


def test_signed_out_is_sent_to_sign_in_and_an_unwired_console_answers_404(world):
    _, _, make = world
    r = make()
    assert r.client.get("/models/credit/halt", follow_redirects=False).status_code == 303
    bare = rig()
    bare.sign_in("risk-carla")
    assert bare.client.get("/models/credit/halt").status_code == 404
