"""A run's data version as an MLflow dataset input, for lineage in MLflow's UI."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, NoReturn

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

logger = logging.getLogger(__name__)


class MlflowDatasetInput(AbstractDataset[dict[str, Any], NoReturn]):
    """Saving logs ``{"name", "digest"}`` to the active MLflow run with
    ``mlflow.log_input``: a metadata-only dataset whose source is ``source`` (a
    folder or URL; the data itself stays where it is). kedro-mlflow has metrics,
    artifact and model datasets, but none for inputs. Without an active run
    (tracking disabled for the pipeline) it logs nothing.

    Example catalog entry::

        data_version_input:
          type: vae_pipeline.tracking.inputs.MlflowDatasetInput
          source: data/05_model_input
          context: training
    """

    def __init__(
        self,
        *,
        source: str,
        context: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._source = source
        self._context = context
        self.metadata = metadata

    def save(self, data: dict[str, Any]) -> None:
        if mlflow.active_run() is None:
            return
        location = self._source
        if "://" not in location:
            location = str(Path(location).resolve())
        with warnings.catch_warnings():
            # MLflow registers a local source class for the "" scheme and another
            # for "file", both LocalArtifactDatasetSource, and warns that a local
            # path "can be interpreted in multiple ways" (either is right).
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(location)
        dataset = MetaDataset(source, name=data["name"], digest=data["digest"])
        mlflow.log_input(dataset, context=self._context)
        logger.info(
            "Logged %s (digest %s) as an input of the run", data["name"], data["digest"]
        )

    def load(self) -> NoReturn:
        raise DatasetError("MlflowDatasetInput is write-only: read the MLflow run")

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, "context": self._context}
