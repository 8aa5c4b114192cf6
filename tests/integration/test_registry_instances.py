"""One ``MlflowRegistry`` per store (issue 30, item 2): two instances bound to two real MLflow stores in
one process never see each other's models, aliases, runs or artifacts, and leave MLflow's process-wide
URIs (and their environment variables) as they found them."""

import os

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from releasegate import bootstrap
from releasegate.adapters.mlflow_registry import MlflowRegistry, VersionNotFound, for_settings
from releasegate.adapters.mlflow_scope import pointed_at

FEATURES = ["a", "b", "c"]


def _store(tmp_path, name: str) -> MlflowRegistry:
    folder = tmp_path / name
    folder.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return MlflowRegistry(uri, uri, folder / "mlartifacts")


def _log(reg: MlflowRegistry, seed: int, auc: float) -> str:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=FEATURES)
    y = (X["a"] + rng.normal(scale=0.5, size=60) > 0).astype(int)
    fitted = LogisticRegression().fit(X, y)
    return reg.log_sklearn_version(
        fitted, "credit", "staging", X_train=X, features=FEATURES, input_example=X.head(5), metrics={"auc": auc}
    )


def _process_wide() -> tuple[str, str, str | None, str | None]:
    return (
        mlflow.get_tracking_uri(),
        mlflow.get_registry_uri(),
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_REGISTRY_URI"),
    )


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """MLflow's process-wide store: a third one, where neither registry may write."""
    uri = f"sqlite:///{tmp_path / 'outside.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield MlflowRegistry(uri, uri)
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def test_two_registries_in_one_process_never_see_each_others_models(tmp_path, outside):
    a, b = _store(tmp_path, "a"), _store(tmp_path, "b")
    before = _process_wide()

    a1 = _log(a, seed=1, auc=0.81)
    b1 = _log(b, seed=2, auc=0.64)  # interleaved: a's second version after b's first
    a2 = _log(a, seed=3, auc=0.83)
    assert (a1, b1, a2) == ("1", "1", "2")
    assert _process_wide() == before  # logging a model left MLflow's process-wide URIs as they were

    staging, prod = a.model_name("staging", "credit"), a.model_name("prod", "credit")
    assert sorted(str(v.version) for v in a.client.search_model_versions(f"name='{staging}'")) == ["1", "2"]
    assert [str(v.version) for v in b.client.search_model_versions(f"name='{staging}'")] == ["1"]
    assert outside.client.search_registered_models() == []  # nothing landed in the process-wide store

    # The same name and version are two different models: each instance reads its own.
    fa, fb = a.version_facts(staging, "1"), b.version_facts(staging, "1")
    assert (fa.metrics["auc"], fb.metrics["auc"]) == (0.81, 0.64)
    assert fa.run_id != fb.run_id and fa.artifact_sha256 != fb.artifact_sha256
    assert fa.artifact_sha256 == a.artifact_sha256(f"models:/{staging}/1")
    with pytest.raises(VersionNotFound, match="has no version '2'"):
        b.version_facts(staging, "2")
    pa, pb = a.reference_profile(staging, "1"), b.reference_profile(staging, "1")
    assert pa is not None and pb is not None and pa.features == pb.features == FEATURES and pa != pb
    assert a.run_started(fa.run_id) <= a.run_started(a.version_facts(staging, "2", with_hash=False).run_id)
    for reg in (a, b):
        assert reg.smoke_test(f"models:/{staging}/1")["ok"] is True
        assert reg.environment_facts(staging, "1").requirements >= 2

    # Binary promotion and aliases in a: b's registry has no prod model, no alias.
    copied = a.copy_to(staging, "2", prod)
    a.set_tags(prod, copied, {"decision_id": "d-1"})
    a.set_alias(prod, a.CHAMPION, copied)
    assert a.aliases(prod) == {"champion": copied} and a.alias_version(prod, a.CHAMPION) == copied
    assert a.find_copy(prod, staging, "2", fa.artifact_sha256 or "", "d-1") == copied
    assert b.aliases(prod) == {} and b.alias_version(prod, b.CHAMPION) is None
    champion = f"models:/{prod}@champion"  # what a rollback smoke-tests: resolved by the instance too
    assert a.smoke_test(champion)["ok"] is True and b.smoke_test(champion)["ok"] is False
    assert a.artifact_sha256(champion) == a.artifact_sha256(f"models:/{prod}/{copied}")
    assert b.find_copy(prod, staging, "2", "", "d-1") is None
    assert a.artifact_sha256(f"models:/{prod}/{copied}") == a.version_facts(staging, "2").artifact_sha256
    a.delete_alias(prod, a.CHAMPION)
    assert a.aliases(prod) == {}

    # Each store's artifacts are in its own folder.
    assert list((tmp_path / "a" / "mlartifacts").rglob("MLmodel")) and list(
        (tmp_path / "b" / "mlartifacts").rglob("MLmodel")
    )
    assert _process_wide() == before


def test_a_failed_fluent_block_puts_mlflows_process_wide_uris_back(tmp_path, outside):
    before = _process_wide()
    with pytest.raises(RuntimeError), pointed_at("sqlite:///elsewhere.db", "sqlite:///elsewhere.db"):
        assert mlflow.get_tracking_uri() == "sqlite:///elsewhere.db"
        raise RuntimeError("the model failed to log")
    assert _process_wide() == before


def test_the_app_holds_one_registry_bound_to_its_settings(rg_home):
    app = bootstrap.app()
    reg = app.registry
    assert isinstance(reg, MlflowRegistry) and app.ports.registry is reg
    s = app.settings
    assert (reg.tracking_uri, reg.registry_uri) == (s.resolved_tracking_uri, s.resolved_registry_uri)
    assert bootstrap.app().registry is reg is for_settings(s)  # one instance per store in the process
