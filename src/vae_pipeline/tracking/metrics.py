"""Metric histories logged to MLflow in one request."""

from __future__ import annotations

from itertools import chain

from kedro.io import DatasetError
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from kedro_mlflow.io.metrics.mlflow_metrics_history_dataset import Metricsdict
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from mlflow.utils.time import get_current_time_millis


class BatchedMetricsHistoryDataset(MlflowMetricsHistoryDataset):
    """kedro-mlflow's ``MlflowMetricsHistoryDataset``, saved with one
    ``MlflowClient.log_batch`` call (MLflow splits it into requests of 1,000
    metrics) instead of one ``log_metric`` request per metric and step.

    Written here because kedro-mlflow 2.0.3 logs each value on its own: a
    training history of 300 epochs and 7 metrics would be 2,100 round trips to a
    tracking server, and the embedded default's 22 epochs were about 150 SQLite
    transactions (0.85 s). Everything else, loading included, is kedro-mlflow's.
    """

    def _save(self, data: Metricsdict) -> None:
        if not self._logging_activated:
            return
        try:
            run_id = self.run_id
        except DatasetError:  # no active run: kedro-mlflow's own way starts one
            super()._save(data)
            return
        timestamp = get_current_time_millis()
        items = (self._build_args_list_from_metric_item(k, v) for k, v in data.items())
        metrics = [
            Metric(key, value, timestamp, step)
            for key, value, step in chain.from_iterable(items)
        ]
        MlflowClient().log_batch(run_id, metrics=metrics)
