"""Project hooks that complete kedro-mlflow's tracking.

kedro-mlflow (its own hooks, registered after these, run first) opens one MLflow
run per ``kedro run``, logs parameters and its datasets log metrics, artifacts and
the model. These hooks:

- fail fast, naming the URI, when a tracking server does not answer, before any
  node runs (MLflow's client would otherwise retry for minutes);
- name the run after the pipelines it runs and tag it with the git commit, the
  Kedro run id and the Kedro version of the saved model;
- register the logged model as a new version once the whole run has succeeded,
  with the run's metrics as version tags; the first version becomes champion.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
import requests
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from mlflow.entities import Param, RunStatus
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from vae_pipeline.errors import TrackingError
from vae_pipeline.tracking.registry import (
    assign_alias,
    metric_tags,
    register_run_model,
    version_by_alias,
)

logger = logging.getLogger(__name__)

SERVER_TIMEOUT_SECONDS = 5.0
DEFAULT_REGISTRY = {
    "name": "vae_pipeline",
    "champion_alias": "champion",
    "tracked_model": "mlflow_vae_model",
    "kedro_model": "vae_model",
}


def redact(uri: str) -> str:
    """The URI without any password in it."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_tracking_server(uri: str, *, timeout: float = SERVER_TIMEOUT_SECONDS) -> None:
    """Raise :class:`TrackingError` unless an HTTP tracking server answers.

    Args:
        uri: The tracking URI; only ``http`` and ``https`` URIs are checked.
        timeout: Seconds to wait for an answer.

    Raises:
        TrackingError: The server refused, timed out or answered with an error.
    """
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as error:
        reason = type(error).__name__
        if isinstance(error, requests.HTTPError):
            reason = f"HTTP {error.response.status_code}"
        raise TrackingError(
            f"MLflow tracking server {redact(uri)} is unreachable ({reason}); "
            "start it, or set MLFLOW_TRACKING_URI or conf/local/mlflow.yml"
        ) from None


def git_tags(project_path: Path) -> dict[str, str]:
    """The project's git commit (and whether the tree had changes), if in git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=project_path,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"mlflow.source.git.commit": commit, "git.dirty": str(dirty).lower()}


def flat_params(values: dict[str, Any], prefix: str) -> dict[str, str]:
    """Nested parameters as ``prefix.key.subkey`` MLflow params."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            flat |= flat_params(value, name)
        else:
            flat[name] = str(value)
    return flat


def run_name(pipeline_names: list[str] | None, default: tuple[str, ...]) -> str:
    """The pipelines a run ran, ``__default__`` spelled out, in pipeline order.

    Kedro passes ``--pipelines`` as an unordered collection; the default
    pipelines come in the order they run, any others after them by name.
    """
    names: set[str] = set()
    for name in pipeline_names or ["__default__"]:
        names.update(default if name == "__default__" else [name])

    def position(name: str) -> tuple[int, str]:
        return (default.index(name) if name in default else len(default), name)

    return "+".join(sorted(names, key=position))


class ModelTrackingHooks:
    """See the module docstring."""

    def __init__(self, default_pipelines: tuple[str, ...] = ()) -> None:
        self._default_pipelines = default_pipelines
        self._registry: dict[str, Any] = dict(DEFAULT_REGISTRY)
        self._run_id: str | None = None
        self._save_version: str | None = None
        self._project_path: Path | None = None
        self._model_saved = False

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        if "mlflow" not in context.config_loader.config_patterns:
            context.config_loader.config_patterns["mlflow"] = [
                "mlflow*",
                "mlflow*/**",
                "**/mlflow*",
            ]
        server = context.config_loader["mlflow"].get("server", {})
        check_tracking_server(server.get("mlflow_tracking_uri") or "")
        globals_ = context.config_loader["globals"]
        self._registry = {**DEFAULT_REGISTRY, **globals_.get("model_registry", {})}
        self._project_path = context.project_path
        self._run_id, self._model_saved = None, False

    @hook_impl
    def after_catalog_created(self, save_version: str, **kwargs: Any) -> None:
        self._save_version = save_version

    @hook_impl(trylast=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        run = mlflow.active_run()
        if run is None:  # tracking disabled for this pipeline
            return
        self._run_id = run.info.run_id
        tags = {
            "mlflow.runName": run_name(
                run_params.get("pipeline_names"), self._default_pipelines
            ),
            "kedro.run_id": run_params.get("run_id") or "",
            **git_tags(self._project_path or Path(run_params["project_path"])),
        }
        mlflow.set_tags({key: value for key, value in tags.items() if value})

    @hook_impl(trylast=True)
    def before_node_run(self, node: Any, inputs: dict[str, Any], **kwargs: Any) -> None:
        """Log typed (pydantic) parameters flattened, as kedro-mlflow does dicts."""
        if self._run_id is None:
            return
        params: dict[str, str] = {}
        for name, value in inputs.items():
            if name.startswith("params:") and isinstance(value, BaseModel):
                params |= flat_params(value.model_dump(mode="json"), name[7:])
        if params:
            MlflowClient().log_batch(
                self._run_id,
                params=[Param(key, value) for key, value in params.items()],
            )

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if self._run_id is None:
            return
        if dataset_name == self._registry["kedro_model"] and self._save_version:
            MlflowClient().set_tag(
                self._run_id, "kedro.vae_model.version", self._save_version
            )
        if dataset_name == self._registry["tracked_model"]:
            self._model_saved = True

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        if self._run_id is None or not self._model_saved:
            return
        client = MlflowClient()
        name = self._registry["name"]
        version = None
        try:
            dataset = catalog.get(self._registry["tracked_model"])
            version = register_run_model(
                client,
                name=name,
                model_uri=dataset.model_info.model_uri,
                model_id=dataset.model_info.model_id,
                run_id=self._run_id,
                tags={
                    **metric_tags(client.get_run(self._run_id).data.metrics),
                    "kedro.run_id": run_params.get("run_id") or "",
                },
            )
            alias = self._registry["champion_alias"]
            if version_by_alias(client, name, alias) is None:
                assign_alias(client, version, alias)
        except Exception as error:
            # Leave the registry as it was and the run marked as failed.
            if version is not None:
                client.delete_model_version(name, version.version)
            client.set_terminated(self._run_id, RunStatus.to_string(RunStatus.FAILED))
            raise TrackingError(
                f"could not register the model of MLflow run {self._run_id} "
                f"as '{name}': {error}"
            ) from error
        finally:
            self._run_id, self._model_saved = None, False
