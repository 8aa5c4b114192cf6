"""Per-model EOD deployments from the manifest's ``eod:`` entries (``policy.eod_deployments``), pure."""

import pytest
from pydantic import ValidationError

from releasegate.policy.eod_deployments import GOVERNED_BY, eod_deployments
from releasegate.policy.models import ModelManifest
from releasegate.policy.runtime_policy import (
    check_deployments,
    find_deployment,
    load_prefect_yaml,
    policy_from_deployment,
)
from tests.conftest import ROOT


def manifest(*models: dict) -> ModelManifest:
    return ModelManifest.model_validate({"models": [{"primary_kpi": {"metric": "f1"}, **m} for m in models]})


def test_each_model_with_eod_gets_its_own_scheduled_deployment_with_eod_scorings_policy_and_queue():
    doc = load_prefect_yaml(ROOT / "prefect.yaml")
    made = eod_deployments(
        doc,
        manifest(
            {"name": "Breast_Cancer", "eod": {"cron": "0 19 * * 1-5", "timezone": "Europe/London"}},
            {"name": "quiet"},  # no eod: no deployment
            {"name": "paused", "eod": {"cron": "0 6 * * *", "active": False}},
        ),
    )
    assert [d["name"] for d in made] == ["breast-cancer", "paused"]
    bc = made[0]
    assert bc["parameters"] == {"canary_share": 0.1, "model_name": "Breast_Cancer"}
    assert bc["schedules"] == [{"cron": "0 19 * * 1-5", "timezone": "Europe/London", "active": True}]
    assert made[1]["schedules"] == [{"cron": "0 6 * * *", "timezone": "UTC", "active": False}]
    assert bc["work_pool"] == {"name": "releasegate", "work_queue_name": "critical"}
    assert bc["entrypoint"] == "flows/eod_scoring.py:eod_scoring" and f"{GOVERNED_BY}eod-scoring" in bc["tags"]
    base = find_deployment(doc, "eod-scoring")
    assert policy_from_deployment(bc) == policy_from_deployment(base)  # retries, timeout, concurrency
    ok, bad = check_deployments({"deployments": made})
    assert bad == [] and ok == ["breast-cancer", "paused"]  # the activation block holds for them too
    assert "schedules" not in base  # the shipped eod-scoring is not scheduled for one model any more


def test_the_shipped_manifest_schedules_credit_and_a_name_clash_is_refused():
    from releasegate.adapters.config import from_file

    doc = load_prefect_yaml(ROOT / "prefect.yaml")
    shipped = from_file("models", ROOT / "blocks" / "models.yaml")
    assert [d["name"] for d in eod_deployments(doc, shipped)] == ["credit"]
    with pytest.raises(ValueError, match=r"models\[backfill\]\.eod: .*'backfill'.* already uses"):
        eod_deployments(doc, manifest({"name": "backfill", "eod": {"cron": "0 1 * * *"}}))
    assert eod_deployments({"deployments": []}, shipped) == []  # a team's prefect.yaml: nothing added


@pytest.mark.parametrize(
    ("entry", "where", "rule"),
    [
        ({"eod": {"cron": "30 18 * *"}}, "eod.cron", "not a 5-field cron"),
        ({"eod": {"cron": "30 18 * * 1-5", "timezone": "Europe/Zurick"}}, "eod.timezone", "not an IANA timezone"),
        ({"eod": {"cron": "30 18 * * 1-5", "queue": "bulk"}}, "eod.queue", "Extra inputs"),
        ({"scoring_deployment": "eod-scoring/m"}, "models.0", "scoring_deployment was removed: give eod:"),
    ],
)
def test_a_bad_eod_entry_is_refused_naming_the_field(entry, where, rule):
    with pytest.raises(ValidationError) as exc:
        manifest({"name": "m", **entry})
    assert where in str(exc.value) and rule in str(exc.value)
