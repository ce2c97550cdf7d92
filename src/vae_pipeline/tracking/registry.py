"""The model registry as Kedro datasets: register a run's model, read and move
aliases. The pipelines' nodes decide; these datasets do the registry's I/O."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from kedro_mlflow.io.models import MlflowModelTrackingDataset
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from vae_pipeline.errors import TrackingError
from vae_pipeline.tracking.vae_flavor import ServableVAE

logger = logging.getLogger(__name__)


def metric_tags(metrics: dict[str, float]) -> dict[str, str]:
    """A run's summary metrics as model version tags, as text.

    Per-dimension entries (``test.kl_per_dimension.3``) and non-finite values are
    left to the run itself.
    """
    return {
        f"metric.{name}": repr(float(value))
        for name, value in sorted(metrics.items())
        if math.isfinite(value) and not name.rsplit(".", 1)[-1].isdigit()
    }


def register_run_model(
    client: MlflowClient,
    *,
    name: str,
    model_uri: str,
    run_id: str,
    model_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> ModelVersion:
    """Register the model a run logged as a new version of ``name``.

    Args:
        client: MLflow client of the registry.
        name: Registered model name; created on first use.
        model_uri: The logged model's URI (``models:/m-...`` or ``runs:/...``).
        run_id: The run that logged it.
        model_id: The logged model's id (MLflow 3's LoggedModel), if any.
        tags: Version tags.

    Returns:
        The new model version.
    """
    # Not mlflow.register_model: it prints "Successfully registered model" and
    # "Created version" to stderr, beside the log line below, on every run.
    try:
        client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        client.create_registered_model(
            name, description="Variational Autoencoders trained by vae-pipeline."
        )
    version = client.create_model_version(
        name, source=model_uri, run_id=run_id, tags=tags or {}, model_id=model_id
    )
    logger.info("Registered model '%s' version %s", name, version.version)
    return version


def registered_aliases(client: MlflowClient, name: str) -> dict[str, str] | None:
    """``{alias: version}`` of the registered model ``name``; None if there is no
    such model (before its first registration)."""
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return None
    return {alias: str(version) for alias, version in aliases.items()}


def version_by_alias(
    client: MlflowClient, name: str, alias: str
) -> ModelVersion | None:
    """The version of ``name`` that ``alias`` points at; None if there is none."""
    # Not MlflowClient.get_model_version_by_alias: for a missing alias it raises
    # INVALID_PARAMETER_VALUE (MLflow 3.17), the code of any bad argument, so
    # "no champion yet" could not be told from a real error.
    version = (registered_aliases(client, name) or {}).get(alias)
    return None if version is None else client.get_model_version(name, version)


def assign_alias(client: MlflowClient, version: ModelVersion, alias: str) -> None:
    """Point ``alias`` of the version's registered model at this version."""
    client.set_registered_model_alias(version.name, alias, version.version)
    logger.info(
        "Model '%s' version %s is now '@%s'", version.name, version.version, alias
    )


@dataclass(frozen=True)
class ModelRelease:
    """A trained model to log to the run and register, with its version tags."""

    servable: ServableVAE
    tags: dict[str, str]


class RegisteredModelDataset(MlflowModelTrackingDataset):
    """Log a model to the active MLflow run and register it as a new version.

    Saving logs it as kedro-mlflow's ``MlflowModelTrackingDataset`` does, then
    registers the logged model under ``model_name`` with the release's tags (the
    registered model is created on first use). Loading gives the version this
    dataset registered in this run: ``{"name", "version", "run_id"}``.

    Example catalog entry::

        registered_model:
          type: vae_pipeline.tracking.registry.RegisteredModelDataset
          model_name: vae_pipeline
          flavor: vae_pipeline.tracking.vae_flavor
          save_args:
            name: model
    """

    def __init__(
        self,
        *,
        model_name: str,
        flavor: str,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(flavor=flavor, save_args=save_args, metadata=metadata)
        self._model_name = model_name
        self._registered: dict[str, str] | None = None

    def _save(self, release: ModelRelease) -> None:
        if mlflow.active_run() is None:
            raise TrackingError(
                f"cannot register '{self._model_name}': no MLflow run is active "
                "(tracking is disabled for this pipeline in mlflow.yml)"
            )
        super()._save(release.servable)
        version = register_run_model(
            MlflowClient(),
            name=self._model_name,
            model_uri=self.model_info.model_uri,
            model_id=self.model_info.model_id,
            run_id=self.model_info.run_id,
            tags=release.tags,
        )
        self._registered = {
            "name": version.name,
            "version": str(version.version),
            "run_id": str(version.run_id),
        }

    def _load(self) -> dict[str, str]:
        if self._registered is None:
            raise DatasetError(f"this run registered no version of {self._model_name}")
        return dict(self._registered)


class ModelAliasesDataset(AbstractDataset[dict[str, Any], dict[str, str]]):
    """The aliases of a registered model, and the way to move them.

    Loading gives ``{alias: version}`` (empty before the first registration).
    Saving ``{"version": "3", "aliases": ["champion"], "tags": {...}}`` points
    each alias at that version and sets the tags on the version and on the run
    that logged it.
    """

    def __init__(
        self, *, model_name: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self._model_name = model_name
        self.metadata = metadata

    def load(self) -> dict[str, str]:
        return registered_aliases(MlflowClient(), self._model_name) or {}

    def save(self, data: dict[str, Any]) -> None:
        client = MlflowClient()
        version = client.get_model_version(self._model_name, str(data["version"]))
        for key, value in data.get("tags", {}).items():
            client.set_model_version_tag(version.name, version.version, key, value)
            client.set_tag(version.run_id, key, value)
        for alias in data.get("aliases", []):
            assign_alias(client, version, alias)

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name}


class ModelVersionsDataset(AbstractDataset[list[str], list[dict[str, Any]]]):
    """The versions of a registered model with the status of the runs that
    registered them, and the way to delete versions.

    Loading gives one ``{"version", "run_id", "run_status", "aliases"}`` per
    version, empty before the first registration (``run_status`` is "" for a
    version an alias holds: only the others can be abandoned); saving a list of
    version numbers deletes those versions. The node that chooses them
    (``remove_abandoned_versions_node``) holds the rule.
    """

    def __init__(
        self, *, model_name: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self._model_name = model_name
        self.metadata = metadata

    def load(self) -> list[dict[str, Any]]:
        client = MlflowClient()
        held = registered_aliases(client, self._model_name)
        if held is None:
            return []
        statuses: dict[str, str] = {}
        versions = []
        # search_model_versions leaves ``aliases`` empty (MLflow 3.17): the
        # registered model itself says which versions its aliases point at.
        for version in client.search_model_versions(f"name = '{self._model_name}'"):
            run_id = str(version.run_id or "")
            aliases = sorted(a for a, v in held.items() if v == str(version.version))
            # Only a version no alias holds can be abandoned: one request per run
            # of those, not per version of a long registry.
            if run_id and not aliases and run_id not in statuses:
                statuses[run_id] = client.get_run(run_id).info.status
            versions.append(
                {
                    "version": str(version.version),
                    "run_id": run_id,
                    "run_status": statuses.get(run_id, ""),
                    "aliases": aliases,
                }
            )
        return sorted(versions, key=lambda version: int(version["version"]))

    def save(self, data: list[str]) -> None:
        client = MlflowClient()
        for version in data:
            client.delete_model_version(self._model_name, str(version))
            logger.info(
                "Deleted model '%s' version %s, registered by the killed run",
                self._model_name,
                version,
            )

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name}
