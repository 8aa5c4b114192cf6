"""The figures the console draws come from the dossier and the gate report the TECH record keeps."""

from datetime import UTC, datetime

from releasegate.console.charts import kpi_chart, psi_chart
from releasegate.policy.gates import GateReport, GateResult, PromotionOutcome
from releasegate.policy.report_figures import report_figures

REPORT = GateReport(
    model="credit",
    candidate_version="4",
    champion_version="3",
    gates=[
        GateResult(
            name="kpi_delta",
            status="fail",
            measured=0.01,
            threshold=0.02,
            evidence="roc_auc: candidate 0.7979 vs champion 0.7900 (+1.00%)",
        ),
        GateResult(name="drift", status="pass", measured=0.08, threshold=0.21, evidence="max PSI 0.08"),
    ],
    outcome=PromotionOutcome.hold,
    measures_plan=["improve roc_auc by +2% over the champion, or obtain an approved exception"],
    evaluated_at=datetime(2026, 11, 23, tzinfo=UTC),
)
DOSSIER = {
    "candidate": {"metrics": {"roc_auc": 0.7979, "f1": 0.5}},
    "champion": {"metrics": {"roc_auc": 0.79}},
    "drift_psi": {"age": 0.08, "<script>": 0.3},
    "smoke": {"ok": True, "rows": 200},
}


def test_figures_name_the_primary_kpi_both_versions_the_required_delta_and_psi_per_feature():
    f = report_figures(DOSSIER, REPORT)
    assert f["primary_metric"] == "roc_auc" and f["candidate_kpi"] == 0.7979 and f["champion_kpi"] == 0.79
    assert (f["kpi_delta"], f["min_kpi_delta"], f["max_psi"]) == (0.01, 0.02, 0.21)
    assert f["drift_psi"] == {"age": 0.08, "<script>": 0.3} and f["smoke"]["ok"] is True
    first = report_figures({"candidate": {"metrics": {"roc_auc": 0.8}}, "champion": None}, REPORT)
    assert first["champion_kpi"] is None


def test_charts_draw_a_missed_delta_and_a_feature_over_the_limit_in_the_refusal_colour_and_escape_names():
    f = report_figures(DOSSIER, REPORT)
    kpi, psi = kpi_chart(f), psi_chart(f)
    assert kpi is not None and psi is not None
    assert "required +2.00%" in kpi and "+1.00%" in kpi and "#b3261e" in kpi
    assert "&lt;script&gt;" in psi and "<script>" not in psi and "limit 0.2100" in psi
    assert kpi_chart({}) is None and psi_chart({}) is None
