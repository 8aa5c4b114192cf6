"""The model manifest (blocks/models.yaml) and metric directions: each model judged by its own KPI."""

from datetime import UTC, datetime

import pytest
import yaml

from releasegate.adapters.config import ConfigError, gate_policy_for, validate_config
from releasegate.policy.gates import Dossier, EnvironmentFacts, GatePolicy, VersionFacts, execute_gates
from releasegate.policy.metrics import Direction, UnknownMetric, direction_of, relative_gain
from releasegate.policy.models import ModelManifest
from releasegate.policy.monitoring import metric_drop
from releasegate.policy.webhooks import split_name
from releasegate.slugs import artifact_key
from tests.conftest import ROOT

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DIABETES = {
    "name": "diabetes_b",
    "primary_kpi": {"metric": "rmse", "min_delta": 0.02},
    "task": "regression",
    "current_inputs": {"uri": "data/inputs/{business_date}.parquet"},
    "labels": {"uri": "data/labels/{business_date}.parquet"},
    "retrain": {"deployment": "diabetes-train/diabetes-train", "parameters": {"trigger": "{trigger}"}},
}


def _manifest(*models):
    return validate_config(ModelManifest, {"models": list(models)}, "blocks/models.yaml")


def test_the_shipped_manifest_is_valid_and_names_the_demo_model():
    doc = yaml.safe_load((ROOT / "blocks" / "models.yaml").read_text())
    spec = _manifest(*doc["models"]).require("credit")
    assert spec.primary_kpi.better is Direction.higher_better and spec.registered_name("prod") == "prod.credit"


def test_directions_come_from_the_catalogue_or_the_entry():
    assert direction_of("rmse") is Direction.lower_better and direction_of("roc_auc") is Direction.higher_better
    assert direction_of("my_score", Direction.lower_better) is Direction.lower_better
    with pytest.raises(UnknownMetric, match="give its direction"):
        direction_of("my_score")
    assert relative_gain(50.0, 52.0, Direction.lower_better) == pytest.approx(2 / 52)  # lower rmse: better
    assert metric_drop(55.0, 50.0, Direction.lower_better) == pytest.approx(0.1)  # higher rmse: a drop
    assert metric_drop(0.72, 0.80) == pytest.approx(0.1)  # AUC, as before


def _rmse_dossier(candidate: float, champion: float) -> Dossier:
    fp = "f" * 64
    return Dossier(
        model="diabetes_b",
        candidate=VersionFacts(
            name="staging.diabetes_b",
            version="2",
            metrics={"rmse": candidate},
            tags={"env_fingerprint": fp},
            artifact_sha256="a" * 64,
        ),
        champion=VersionFacts(name="prod.diabetes_b", version="1", metrics={"rmse": champion}),
        archive_version=None,
        environment=EnvironmentFacts(requirements_sha256=fp, requirements=3, source_commit="c" * 40),
        drift_psi={"x": 0.01},
        smoke={"ok": True, "rows": 10},
        built_at=NOW,
    )


def test_a_lower_is_better_kpi_rejects_the_worse_rmse_and_promotes_the_better(tmp_path, monkeypatch):
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [DIABETES]}))
    monkeypatch.setenv("RELEASEGATE_MODELS", str(path))
    monkeypatch.setenv("RELEASEGATE_GATE_POLICY", str(ROOT / "blocks" / "gate_policy.yaml"))
    policy = gate_policy_for("diabetes_b")
    assert (policy.primary_metric, policy.higher_is_better, policy.min_kpi_delta) == ("rmse", False, 0.02)
    worse = execute_gates(_rmse_dossier(candidate=55.0, champion=50.0), policy, NOW)
    better = execute_gates(_rmse_dossier(candidate=48.0, champion=50.0), policy, NOW)
    assert worse.gate("kpi_delta").status == "fail" and worse.outcome.value != "promote"
    assert better.gate("kpi_delta").status == "pass" and better.outcome.value == "promote"
    # the same numbers under the global (higher-is-better AUC) policy would be judged the wrong way round
    assert execute_gates(_rmse_dossier(55.0, 50.0), GatePolicy(primary_metric="rmse"), NOW).outcome.value == "promote"
    assert gate_policy_for("not-in-manifest") == GatePolicy.model_validate(
        yaml.safe_load((ROOT / "blocks" / "gate_policy.yaml").read_text())
    )


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"primary_kpi": {"metric": "rmse", "direction": "sideways"}},
            "models[diabetes_b].primary_kpi.direction",
            "'higher' or 'lower'",
        ),
        ({"primary_kpi": {"metric": "my_score"}}, "models[diabetes_b].primary_kpi", "give its direction"),
        ({"current_inputs": {"uri": "data/inputs.parquet"}}, "models[diabetes_b].current_inputs", "{business_date}"),
        (
            {"current_inputs": {"uri": "x/{business_date}.parquet", "entrypoint": "pkg.mod:load"}},
            "models[diabetes_b].current_inputs",
            "exactly one",
        ),
        ({"retrain": {"deployment": "no-slash"}}, "models[diabetes_b].retrain.deployment", "pattern"),
        ({"predict": "predict_log"}, "models[diabetes_b].predict", "predict_proba:<column index>"),
        ({"colour": "blue"}, "models[diabetes_b].colour", "unknown field"),
        ({"name": "prod.diabetes"}, "models[prod.diabetes].name", "pattern"),
    ],
)
def test_a_bad_manifest_entry_names_the_model_the_field_and_the_rule(change, field, words):
    with pytest.raises(ConfigError) as e:
        _manifest(DIABETES | change)
    assert e.value.field == field and words in e.value.rule, (e.value.field, e.value.rule)
    assert "blocks/models.yaml" in str(e.value)


def test_two_models_may_not_share_a_name_or_a_prefect_key():
    with pytest.raises(ConfigError, match="model 'diabetes-b': key .* 'diabetes-b' is already used by 'diabetes_b'"):
        _manifest(DIABETES, DIABETES | {"name": "diabetes-b"})


def test_prefect_keys_and_environments_follow_the_model_and_the_settings():
    assert artifact_key("dossier", "diabetes_b") == "dossier-diabetes-b"
    assert split_name("uat.churn", ["dev", "uat", "prod"]) == ("uat", "churn")
    assert split_name("uat.churn") is None  # not one of the default environments


def test_metric_functions_agree_with_scikit_learn_and_teams_can_add_their_own(monkeypatch):
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score

    from releasegate.policy import metrics
    from releasegate.policy.metrics import compute, register_metric

    monkeypatch.setattr(metrics, "CATALOGUE", dict(metrics.CATALOGUE))  # the registration stays in this test
    monkeypatch.setattr(metrics, "FUNCTIONS", dict(metrics.FUNCTIONS))

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500).astype(float)
    p = np.round(np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1), 2)  # ties on purpose
    assert compute("roc_auc", y, p) == pytest.approx(roc_auc_score(y, p))
    assert compute("accuracy", y, p) == pytest.approx(accuracy_score(y, p >= 0.5))
    assert compute("f1", y, p) == pytest.approx(f1_score(y, p >= 0.5))
    yr, pr = rng.normal(100, 20, 300), rng.normal(100, 20, 300)
    assert compute("rmse", yr, pr) == pytest.approx(float(np.sqrt(np.mean((yr - pr) ** 2))))
    assert compute("mae", yr, pr) == pytest.approx(mean_absolute_error(yr, pr))
    assert compute("r2", yr, pr) == pytest.approx(r2_score(yr, pr))
    pr[:10] = np.nan  # rows without a prediction do not count
    assert compute("mae", yr, pr) == pytest.approx(mean_absolute_error(yr[10:], pr[10:]))
    with pytest.raises(UnknownMetric, match="register_metric"):
        compute("pinball", yr, pr)
    register_metric("max_error", Direction.lower_better, lambda a, b: float(np.max(np.abs(a - b))))
    assert direction_of("max_error") is Direction.lower_better and compute("max_error", yr[10:], pr[10:]) > 0


def test_data_sources_load_a_business_date_or_name_what_is_wrong(tmp_path):
    from datetime import date

    import pandas as pd

    from releasegate.adapters.data_sources import DataSourceError, load_frame, require_columns

    (tmp_path / "in").mkdir()
    pd.DataFrame({"age": [0.1, 0.2], "bmi": [0.3, 0.4]}).to_parquet(tmp_path / "in" / "2026-11-30.parquet")
    pd.DataFrame({"target": [150.0, 80.0]}).to_csv(tmp_path / "in" / "labels-2026-11-30.csv", index=False)
    spec = _manifest(
        DIABETES
        | {
            "current_inputs": {"uri": str(tmp_path / "in" / "{business_date}.parquet")},
            "labels": {"uri": f"file://{tmp_path}/in/labels-{{business_date}}.csv"},
        }
    ).require("diabetes_b")
    frame = load_frame(spec, "current_inputs", date(2026, 11, 30))
    assert list(frame.columns) == ["age", "bmi"] and len(frame) == 2
    assert load_frame(spec, "labels", date(2026, 11, 30))["target"].tolist() == [150.0, 80.0]

    with pytest.raises(DataSourceError) as e:
        load_frame(spec, "current_inputs", date(2026, 12, 1))
    assert (
        e.value.field == "models[diabetes_b].current_inputs" and "no file for business date 2026-12-01" in e.value.rule
    )
    with pytest.raises(DataSourceError) as e:
        require_columns(spec, "current_inputs", frame, ["age", "bmi", "s1"])
    assert "missing column(s) s1" in e.value.rule
    bad = _manifest(DIABETES | {"current_inputs": {"entrypoint": "no_such_pkg.data:load"}}).require("diabetes_b")
    with pytest.raises(DataSourceError, match="does not import"):
        load_frame(bad, "current_inputs", date(2026, 11, 30))


def test_psi_against_a_stored_profile_equals_psi_on_the_reference_itself():
    import numpy as np

    from releasegate.policy.psi import ReferenceProfile, psi, psi_against, reference_profile

    rng = np.random.default_rng(5)
    ref = rng.normal(size=(5000, 4))
    ref[rng.random(5000) < 0.05, 1] = np.nan  # missing values are left out, as in psi
    cur = rng.normal(size=(3000, 4)) + np.array([0.0, 0.3, 0.0, 1.0])
    profile = ReferenceProfile.model_validate_json(reference_profile(ref, list("abcd")).model_dump_json())
    assert np.allclose(psi_against(profile, cur.astype(np.float32)), psi(ref, cur.astype(np.float32)), atol=1e-9)
    with pytest.raises(ValueError, match="4 columns"):
        psi_against(profile, cur[:, :3])


def test_the_retrain_call_is_the_models_own_deployment_with_its_parameters_filled():
    from releasegate.policy.models import DEFAULT_RETRAIN_DEPLOYMENT, retrain_call

    values = {
        "model_name": "diabetes_b",
        "version": "4",
        "trigger": "drift",
        "reason": "PSI 0.4",
        "reason_code": "DRIFT_URGENT",
        "business_date": "2026-12-01",
    }
    spec = _manifest(DIABETES).require("diabetes_b")
    assert retrain_call(spec, values) == ("diabetes-train/diabetes-train", {"trigger": "drift"})
    assert retrain_call(None, values) == (DEFAULT_RETRAIN_DEPLOYMENT, {"model_name": "diabetes_b", "reason": "PSI 0.4"})
    with pytest.raises(ConfigError) as e:
        _manifest(DIABETES | {"retrain": {"deployment": "a/b", "parameters": {"x": "{run_id}"}}})
    assert e.value.field == "models[diabetes_b].retrain.parameters" and "unknown placeholder(s) run_id" in e.value.rule


def test_a_zero_reference_is_judged_in_the_metrics_direction():
    assert relative_gain(0.1, 0.0, Direction.higher_better) == float("inf")
    assert relative_gain(-0.1, 0.0, Direction.higher_better) == float("-inf")  # a worse r2 stays worse
    assert relative_gain(0.1, 0.0, Direction.lower_better) == float("-inf")
    assert relative_gain(0.0, 0.0, Direction.lower_better) == 0.0


def test_a_models_own_approvers_replace_the_global_list_of_that_role_only(tmp_path, monkeypatch):
    import yaml

    from releasegate import bootstrap
    from releasegate.policy.handshake import Role
    from releasegate.services.promotion import approver_config

    (tmp_path / "approvers.yaml").write_text(yaml.safe_dump({"pm": ["pm-anna"], "risk": ["risk-carla"]}))
    (tmp_path / "models.yaml").write_text(
        yaml.safe_dump(
            {
                "models": [
                    {"name": "own", "primary_kpi": {"metric": "rmse"}, "approvers": {"risk": ["risk-rita"]}},
                    {"name": "plain", "primary_kpi": {"metric": "rmse"}},
                ]
            }
        )
    )
    monkeypatch.setenv("RELEASEGATE_APPROVERS", str(tmp_path / "approvers.yaml"))
    monkeypatch.setenv("RELEASEGATE_MODELS", str(tmp_path / "models.yaml"))
    assert approver_config(bootstrap.app(), "own").allow_lists() == {
        Role.pm: ["pm-anna"],
        Role.risk: ["risk-rita"],
        Role.compliance: [],
    }
    assert approver_config(bootstrap.app(), "plain").allow_lists() == approver_config(bootstrap.app()).allow_lists()
    assert approver_config(bootstrap.app(), "unlisted").allow_lists() == {
        Role.pm: ["pm-anna"],
        Role.risk: ["risk-carla"],
        Role.compliance: [],
    }
