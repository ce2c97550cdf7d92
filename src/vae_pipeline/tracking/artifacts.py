"""kedro-mlflow's artifact dataset, for versioned datasets."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
from kedro.io.core import Version
from kedro_mlflow.io.artifacts import MlflowArtifactDataset


class VersionedMlflowArtifactDataset(MlflowArtifactDataset):
    """``MlflowArtifactDataset`` whose wrapped dataset is versioned with the catalog.

    kedro-mlflow builds the wrapped dataset itself, so a ``versioned: true``
    inside it gets a save version of its own, which Kedro's catalog rejects. Set
    it on this wrapper instead: the catalog's versions go to the wrapped dataset,
    whose file is then logged under ``artifact_path`` (from a local copy when on
    object storage).

    Example (catalog.yml)::

        evaluation_metrics:
          type: vae_pipeline.tracking.artifacts.VersionedMlflowArtifactDataset
          versioned: true
          artifact_path: reports
          dataset:
            type: json.JSONDataset
            filepath: data/08_reporting/evaluation_metrics.json
    """

    def __new__(
        cls,
        dataset: str | dict[str, Any],
        run_id: str | None = None,
        artifact_path: str | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        version: Version | None = None,
    ):
        if version is not None:
            dataset = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
            dataset["versioned"] = True
        instance = super().__new__(
            cls,
            dataset=dataset,
            run_id=run_id,
            artifact_path=artifact_path,
            credentials=credentials,
            metadata=metadata,
        )
        if version is not None:
            instance._version = version
        if getattr(instance, "_protocol", "file") != "file":
            instance.save = functools.partial(_save_remote_and_log, instance)
        return instance


def _save_remote_and_log(dataset: Any, data: Any) -> None:
    """Save to object storage, then log a local copy: kedro-mlflow logs the saved
    file by its path, which MLflow cannot read on ``s3://``."""
    path = str(dataset._get_save_path())  # noqa: SLF001 (before the save makes it)
    logging = dataset._logging_activated  # noqa: SLF001
    dataset._logging_activated = False  # noqa: SLF001
    try:
        type(dataset).save(dataset, data)
    finally:
        dataset._logging_activated = logging  # noqa: SLF001
    if logging and mlflow.active_run() is not None:
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / PurePosixPath(path).name
            dataset._fs.get_file(path, str(local))  # noqa: SLF001
            mlflow.log_artifact(str(local), dataset.artifact_path)
