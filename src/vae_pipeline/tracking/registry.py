"""Model registry operations: register a run's model, read and move aliases."""

from __future__ import annotations

import logging
import math

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

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


def version_by_alias(
    client: MlflowClient, name: str, alias: str
) -> ModelVersion | None:
    """The version of ``name`` that ``alias`` points at; None if there is none."""
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return None
    version = aliases.get(alias)
    return None if version is None else client.get_model_version(name, str(version))


def assign_alias(client: MlflowClient, version: ModelVersion, alias: str) -> None:
    """Point ``alias`` of the version's registered model at this version."""
    client.set_registered_model_alias(version.name, alias, version.version)
    logger.info(
        "Model '%s' version %s is now '@%s'", version.name, version.version, alias
    )
