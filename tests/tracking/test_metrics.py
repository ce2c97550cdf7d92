"""Metric histories go to MLflow in one request, as kedro-mlflow would log them."""

from __future__ import annotations

import mlflow
import pytest
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from mlflow.tracking import MlflowClient

from vae_pipeline.tracking.metrics import BatchedMetricsHistoryDataset

HISTORY = {
    "loss": [{"value": 3.5, "step": 1}, {"value": 2.25, "step": 2}],
    "kl_per_dimension.3": {"value": 0.125, "step": 0},
}


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A SQLite store in tmp_path, set as this process's tracking URI, and an
    experiment in it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("m", artifact_location=str(tmp_path / "a"))
    yield client, experiment
    mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def history(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    keys = client.get_run(run_id).data.metrics
    return {
        key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        for key in sorted(keys)
    }


def test_the_history_kedro_mlflow_logs_in_one_batch(tracking, monkeypatch):
    client, experiment = tracking
    with mlflow.start_run(experiment_id=experiment) as reference:
        MlflowMetricsHistoryDataset(prefix="training").save(HISTORY)
    batches = []
    monkeypatch.setattr(
        MlflowClient, "log_metric", lambda *a, **k: pytest.fail("one request each")
    )
    log_batch = MlflowClient.log_batch
    monkeypatch.setattr(
        MlflowClient,
        "log_batch",
        lambda self, *a, **k: batches.append(k) or log_batch(self, *a, **k),
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        dataset = BatchedMetricsHistoryDataset(prefix="training")
        dataset.save(HISTORY)
        loaded = dataset.load()

    assert len(batches) == 1
    assert history(client, run.info.run_id) == history(client, reference.info.run_id)
    assert history(client, run.info.run_id) == {
        "training.kl_per_dimension.3": [(0, 0.125)],
        "training.loss": [(1, 3.5), (2, 2.25)],
    }
    assert loaded == {
        "training.loss": HISTORY["loss"],
        "training.kl_per_dimension.3": HISTORY["kl_per_dimension.3"],
    }


def test_nothing_is_logged_while_tracking_is_off(tracking):
    client, experiment = tracking
    with mlflow.start_run(experiment_id=experiment) as run:
        dataset = BatchedMetricsHistoryDataset(prefix="training")
        dataset._logging_activated = False  # what kedro-mlflow sets  # noqa: SLF001
        dataset.save(HISTORY)
    assert history(client, run.info.run_id) == {}
