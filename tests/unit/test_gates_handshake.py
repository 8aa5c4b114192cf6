"""Pure promotion policy: gates, gateway outcome, handshake rules, PSI (clock passed in)."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from credit_example.data import generate

from releasegate.policy.gates import (
    Dossier,
    EnvironmentFacts,
    GatePolicy,
    PromotionOutcome,
    VersionFacts,
    execute_gates,
    kpi_delta,
)
from releasegate.policy.handshake import (
    Approval,
    ApprovalFields,
    ApprovalRefused,
    Handshake,
    Role,
    check_approval,
    joint_release_ack,
)
from releasegate.policy.psi import psi

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FP = "f" * 64
ENV = EnvironmentFacts(requirements_sha256="e" * 64, requirements=6, source_commit="c" * 40)


def dossier(cand_auc=0.82, champ_auc=0.79, **kw) -> Dossier:
    base = dict(
        model="credit",
        candidate=VersionFacts(
            name="staging.credit",
            version="2",
            metrics={"roc_auc": cand_auc},
            tags={"env_fingerprint": FP},
            artifact_sha256="a" * 64,
        ),
        champion=VersionFacts(name="prod.credit", version="1", metrics={"roc_auc": champ_auc}) if champ_auc else None,
        archive_version=None,
        environment=ENV,
        drift_psi={"x": 0.05, "y": 0.12},
        smoke={"ok": True, "rows": 200},
        built_at=NOW,
    )
    base.update(kw)
    return Dossier(**base)


def outcome(d: Dossier) -> PromotionOutcome:
    return execute_gates(d, GatePolicy(), NOW).outcome


def test_all_gates_pass_promotes():
    report = execute_gates(dossier(), GatePolicy(), NOW)
    assert report.outcome is PromotionOutcome.promote and report.tech_gate_pass
    assert {g.name for g in report.gates} == {
        "kpi_delta",
        "guards",
        "drift",
        "reproducibility",
        "smoke_test",
        "canary_shadow",
        "monitoring_rollback",
    }
    assert report.gate("kpi_delta").measured == pytest.approx(kpi_delta(0.82, 0.79), abs=1e-6)


def test_first_release_passes_kpi_without_champion():
    assert outcome(dossier(champ_auc=None)) is PromotionOutcome.promote


@pytest.mark.parametrize(
    ("cand", "champ", "expected"),
    [
        (0.8058, 0.79, PromotionOutcome.promote),  # +2.0 %
        (0.80, 0.79, PromotionOutcome.hold),  # +1.3 %
        (0.78, 0.79, PromotionOutcome.reject),  # worse
    ],
)
def test_kpi_threshold(cand, champ, expected):
    assert outcome(dossier(cand, champ)) is expected


def test_approved_exception_waives_kpi_until_it_expires():
    exc = {"decision_id": "d1", "gate": "kpi_delta", "expires_at": (NOW + timedelta(hours=1)).isoformat()}
    report = execute_gates(dossier(0.80, 0.79, exception=exc), GatePolicy(), NOW)
    assert report.gate("kpi_delta").status == "waived" and report.outcome is PromotionOutcome.promote
    expired = exc | {"expires_at": (NOW - timedelta(seconds=1)).isoformat()}
    assert outcome(dossier(0.80, 0.79, exception=expired)) is PromotionOutcome.hold


def test_an_exception_never_waives_a_worse_candidate_or_another_gate():
    exc = {"decision_id": "d1", "gate": "kpi_delta", "expires_at": (NOW + timedelta(hours=1)).isoformat()}
    worse = execute_gates(dossier(0.78, 0.79, exception=exc), GatePolicy(), NOW)
    assert worse.gate("kpi_delta").status == "fail" and worse.outcome is PromotionOutcome.reject
    other_gate = exc | {"gate": "drift"}
    assert outcome(dossier(0.80, 0.79, exception=other_gate)) is PromotionOutcome.hold


@pytest.mark.parametrize(
    ("change", "gate", "expected"),
    [
        ({"drift_psi": {"x": 0.25}}, "drift", PromotionOutcome.hold),
        ({"environment": ENV.model_copy(update={"unpinned": ["pandas>=2"]})}, "reproducibility", PromotionOutcome.hold),
        ({"environment": ENV.model_copy(update={"source_commit": None})}, "reproducibility", PromotionOutcome.hold),
        ({"environment": None}, "reproducibility", PromotionOutcome.hold),
        ({"smoke": {"ok": False, "rows": 200, "error": "ValueError: bad"}}, "smoke_test", PromotionOutcome.reject),
        ({"critical": True}, "canary_shadow", PromotionOutcome.hold),
        ({"monitoring_configured": False}, "monitoring_rollback", PromotionOutcome.hold),
    ],
)
def test_each_gate_failure(change, gate, expected):
    report = execute_gates(dossier(**change), GatePolicy(), NOW)
    assert report.gate(gate).status == "fail" and report.outcome is expected
    if expected is PromotionOutcome.hold:
        assert any(m.startswith(f"{gate}:") for m in report.measures_plan)


def test_critical_model_with_shadow_evidence_passes():
    cand = dossier().candidate.model_copy(update={"tags": {"env_fingerprint": FP, "shadow_evidence_ref": "shadow:7"}})
    assert outcome(dossier(critical=True, candidate=cand)) is PromotionOutcome.promote


# ---------------------------------------------------------------------------------- handshake
LISTS = {Role.pm: ["pm-anna", "pm-ben", "both"], Role.risk: ["risk-carla", "both"]}


def hs(**kw) -> Handshake:
    base = dict(
        model="credit",
        candidate_version="2",
        requested_by="ml-eng",
        tech_report_ref="artifact:1",
        tech_pass=True,
        allow_lists=LISTS,
    )
    return Handshake(**(base | kw))


def ap(approver, reference="R-1"):
    return ApprovalFields(approver=approver, reference=reference)


def given(role, approver, at=NOW):
    return Approval(role=role, approver=approver, reference="R", at=at)


@pytest.mark.parametrize(
    ("h", "role", "a", "field", "words"),
    [
        (
            hs(tech_pass=False, tech_report_ref=None),
            Role.risk,
            ap("risk-carla"),
            "tech_gate_report_ref",
            "TECH_GATE_PASS",
        ),
        (hs(tech_pass=False), Role.pm, ap("pm-anna"), "tech_gate_report_ref", "TECH_GATE_PASS"),
        (hs(), Role.pm, ap("mallory"), "approver", "allow-list"),
        (hs().model_copy(update={"requested_by": "pm-anna"}), Role.pm, ap("pm-anna"), "approver", "four eyes"),
        (hs(), Role.risk, ap("risk-carla"), "pm_gate_ref", "PM_GATE_PASS first"),
        (hs(pm=given(Role.pm, "both")), Role.risk, ap("both"), "approver", "four eyes"),
        (hs(pm=given(Role.pm, "pm-anna")), Role.pm, ap("pm-ben"), "role", "already"),
        (hs(), Role.pm, ap("pm-anna", reference=" "), "reference", "required"),
        (hs(), Role.pm, ap(" "), "approver", "required"),
    ],
)
def test_refused_approvals_name_field_and_rule(h, role, a, field, words):
    with pytest.raises(ApprovalRefused) as ei:
        check_approval(h, role, a)
    assert ei.value.field == field and words in ei.value.rule


def test_valid_sequence_and_ack_window():
    h = hs()
    check_approval(h, Role.pm, ap("pm-anna"))
    h = h.model_copy(update={"pm": given(Role.pm, "pm-anna", NOW)})
    check_approval(h, Role.risk, ap("risk-carla"))
    h = h.model_copy(update={"risk": given(Role.risk, "risk-carla", NOW + timedelta(hours=2))})
    ack = joint_release_ack(h, NOW + timedelta(hours=26))
    assert ack.valid and ack.ref.startswith("JOINT_RELEASE_ACK:")  # 24 h after the *later* approval
    late = joint_release_ack(h, NOW + timedelta(hours=26, seconds=1))
    assert not late.valid and "expired" in late.reason and "re-check" in late.reason


def test_ack_needs_every_pass():
    assert not joint_release_ack(hs(pm=given(Role.pm, "pm-anna")), NOW).valid


def test_a_high_risk_model_needs_compliance_after_risk_from_a_third_person():
    lists = LISTS | {Role.compliance: ["comp-frank", "both", "risk-carla"]}
    pm, risk = given(Role.pm, "pm-anna"), given(Role.risk, "risk-carla", NOW + timedelta(hours=1))
    high = hs(allow_lists=lists, requires_compliance=True)
    assert high.roles == (Role.pm, Role.risk, Role.compliance) and hs().roles == (Role.pm, Role.risk)
    refusals = [
        (high.model_copy(update={"pm": pm}), ap("comp-frank"), "risk_gate_ref", "RISK_GATE_PASS first"),
        (high.model_copy(update={"pm": pm, "risk": risk}), ap("risk-carla"), "approver", "four eyes"),
        (high.model_copy(update={"pm": pm, "risk": risk}), ap("pm-anna"), "approver", "allow-list"),
        (hs(allow_lists=lists, pm=pm, risk=risk), ap("comp-frank"), "role", "needs no compliance approval"),
    ]
    for h, a, field, words in refusals:
        with pytest.raises(ApprovalRefused) as ei:
            check_approval(h, Role.compliance, a)
        assert ei.value.field == field and words in ei.value.rule, ei.value
    both = high.model_copy(update={"pm": pm, "risk": risk})
    missing = joint_release_ack(both, NOW + timedelta(hours=2))
    assert not missing.valid and "COMPLIANCE" in missing.reason  # PM and RISK are not enough
    check_approval(both, Role.compliance, ap("comp-frank"))
    done = both.model_copy(update={"compliance": given(Role.compliance, "comp-frank", NOW + timedelta(hours=3))})
    assert joint_release_ack(done, NOW + timedelta(hours=27)).valid  # 24 h after the *latest* approval
    assert not joint_release_ack(done, NOW + timedelta(hours=27, seconds=1)).valid
    # the ack binds all three approvals: a standard model's ack over the same PM and RISK differs
    assert joint_release_ack(done, NOW).ref != joint_release_ack(hs(pm=pm, risk=risk), NOW).ref


# ---------------------------------------------------------------------------------------- PSI
def _reference_psi(ref, cur, bins=10, floor=1e-4):
    """A plain-Python PSI: quantile edges of the reference, counts per bin, floor, sum."""
    ref_sorted = sorted(ref)
    edges = []
    for k in range(1, bins):
        pos = (len(ref_sorted) - 1) * k / bins
        lo = math.floor(pos)
        hi = min(lo + 1, len(ref_sorted) - 1)
        edges.append(ref_sorted[lo] + (ref_sorted[hi] - ref_sorted[lo]) * (pos - lo))
    edges = sorted(set(edges))

    def shares(xs):
        counts = [0] * (len(edges) + 1)
        for x in xs:
            counts[sum(1 for e in edges if x >= e)] += 1
        return [max(c / len(xs), floor) for c in counts]

    r, c = shares(ref), shares(cur)
    return sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c, strict=True))


def test_psi_matches_a_reference_computation():
    a = generate(3000, seed=5).X
    b = generate(2500, seed=6, drift=0.7).X
    fast = psi(a, b)
    for j in range(a.shape[1]):
        assert fast[j] == pytest.approx(_reference_psi(list(a[:, j]), list(b[:, j])), abs=1e-9)


def test_psi_is_zero_for_identical_samples_and_grows_with_drift():
    a = generate(20000, seed=1).X
    assert np.allclose(psi(a, a), 0.0)
    mild = psi(a, generate(20000, seed=2, drift=0.2).X).max()
    strong = psi(a, generate(20000, seed=2, drift=1.0).X).max()
    assert mild < strong and strong > 0.3


def test_psi_ignores_missing_values():
    a = generate(5000, seed=1).X
    b = generate(5000, seed=1, missing_rate=0.2).X
    assert psi(a, b).max() < 0.01


def test_a_model_without_an_input_example_is_held_with_what_to_log():
    """The smoke test scores the model's own logged input_example; without one the gate says what to log."""
    missing = {
        "ok": False,
        "rows": 0,
        "error": "no input_example was logged with the model",
        "measure": "log the model with input_example=<a few rows of real inputs>",
    }
    report = execute_gates(dossier(smoke=missing), GatePolicy(), NOW)
    smoke = report.gate("smoke_test")
    assert smoke.status == "fail" and smoke.fixable and "input_example" in smoke.measure
    assert report.outcome is PromotionOutcome.hold and any("input_example" in m for m in report.measures_plan)
    broken = execute_gates(dossier(smoke={"ok": False, "rows": 5, "error": "schema mismatch"}), GatePolicy(), NOW)
    assert broken.outcome is PromotionOutcome.reject  # a model that cannot score its own example: no measure


def test_guard_metrics_hold_each_limit_in_the_metrics_own_direction():
    from releasegate.policy.models import GuardMetric

    guards = [
        GuardMetric(metric="recall", limit=0.6),
        GuardMetric(metric="p95_latency_ms", direction="lower", limit=50),
    ]
    policy = GatePolicy(guards=guards)

    def cand(**metrics):
        c = dossier().candidate
        return dossier(candidate=c.model_copy(update={"metrics": {**c.metrics, **metrics}}))

    ok = execute_gates(cand(recall=0.7, p95_latency_ms=40), policy, NOW)
    assert ok.outcome is PromotionOutcome.promote and ok.gate("guards").status == "pass"
    slow = execute_gates(cand(recall=0.7, p95_latency_ms=80), policy, NOW)
    assert slow.outcome is PromotionOutcome.hold and "p95_latency_ms 80 > limit 50" in slow.gate("guards").evidence
    assert "guards: bring p95_latency_ms within its limit" in slow.measures_plan
    unlogged = execute_gates(cand(p95_latency_ms=40), policy, NOW).gate("guards")
    assert unlogged.status == "fail" and unlogged.measure == "log recall for the candidate's run"
    assert execute_gates(dossier(), GatePolicy(), NOW).gate("guards").status == "pass"  # none declared


def test_refused_approvals_slow_a_waiting_run_down_in_bursts_and_never_end_it():
    from releasegate.policy.handshake import MAX_COOLDOWN_SECONDS, REFUSALS_PER_BURST, approval_cooldown

    waits = [approval_cooldown(n, 60) for n in range(1, 5 * REFUSALS_PER_BURST + 1)]
    assert waits[: REFUSALS_PER_BURST - 1] == [0] * (REFUSALS_PER_BURST - 1)  # inside a burst: asked again at once
    bursts = [w for w in waits if w]
    assert bursts == [60, 120, 240, 480, MAX_COOLDOWN_SECONDS]  # after each burst, doubled, capped
    assert approval_cooldown(10_000 * REFUSALS_PER_BURST, 60) == MAX_COOLDOWN_SECONDS
    assert approval_cooldown(0, 60) == 0
