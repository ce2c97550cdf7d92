"""The retraining pipeline run in memory with Kedro's ``SequentialRunner``, on a
copy of a trained project and its SQLite MLflow store: what it merges, commits,
registers and promotes, without the CLI (``test_retraining_scenario.py`` runs
retraining as a user does, ``test_kill_points.py`` kills it)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from tests.conftest import aliases, build_catalog, run_in_memory, typed_params
from tests.pipelines.retraining.conftest import (
    committed,
    store,
    train_size,
    versions,
    write_batch,
)
from vae_pipeline.errors import NothingToRetrain
from vae_pipeline.pipelines import retraining
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.evaluation.params import EvaluationParams
from vae_pipeline.pipelines.generation.params import GenerationParams
from vae_pipeline.pipelines.registration.params import RegistrationParams
from vae_pipeline.pipelines.retraining.params import RetrainingParams
from vae_pipeline.pipelines.training.params import TrainingParams


def retrain_in_memory(project: Path, client: MlflowClient, **retraining_params):
    """One retraining run in an MLflow run of the project's experiment, as
    kedro-mlflow opens one for ``kedro run`` (a short training: the rules tested
    here do not depend on how good the model is)."""
    params = {
        "data_ingestion": typed_params(IngestionParams, "data_ingestion"),
        "training": typed_params(
            TrainingParams,
            "training",
            epochs=2,
            checkpoint_dir=str(project / "data/06_models/checkpoints"),
        ),
        "evaluation": typed_params(EvaluationParams, "evaluation", iwae_samples=5),
        "generation": typed_params(GenerationParams, "generation", prior_grid=2),
        "registration": typed_params(RegistrationParams, "registration"),
        "retraining": typed_params(RetrainingParams, "retraining", **retraining_params),
    }
    experiment = client.get_experiment_by_name("vae_pipeline").experiment_id
    with mlflow.start_run(experiment_id=experiment):
        run_in_memory(retraining.create_pipeline(), build_catalog(project), params)


@pytest.fixture
def client(project: Path):
    """The project's store, which the catalog's MLflow datasets use meanwhile.
    MLflow's own context manager for it puts back whatever URI was set before,
    which ``mlflow.set_tracking_uri`` would leave to the next test."""
    with _use_tracking_uri(f"sqlite:///{project / 'mlflow.db'}"):
        yield store(project)


def test_a_batch_is_merged_committed_and_released_once(project, client):
    before, size = committed(project), train_size(project)
    write_batch(project, "2026-12-01", seed=5)

    retrain_in_memory(project, client)
    record = committed(project)
    assert record["parent"] == before["version"]
    assert list(record["incoming"]) == ["2026-12-01/digits-5.npz"]
    assert train_size(project) == size + 270  # 10 % of the 300 to validation
    assert versions(client) == [1, 2]
    # The alias moved as the run decided, and the version says so.
    outcome = client.get_model_version("vae_pipeline", "2").tags["promotion"]
    assert aliases(client) == (
        {"champion": 2} if outcome == "champion" else {"champion": 1, "challenger": 2}
    )

    with pytest.raises(NothingToRetrain):  # the same files again: nothing to do
        retrain_in_memory(project, client)
    assert committed(project) == record
    assert versions(client) == [1, 2]


def test_a_challenger_that_is_not_better_by_the_margin_is_not_promoted(project, client):
    champion = aliases(client)["champion"]
    write_batch(project, "2026-12-01", seed=6)
    retrain_in_memory(project, client, promotion_margin=1e9)
    assert aliases(client) == {"champion": champion, "challenger": champion + 1}
    assert "2026-12-01/digits-6.npz" in committed(project)["incoming"]
