"""Project hooks that complete kedro-mlflow's tracking.

kedro-mlflow (its own hooks, registered after these, run first) opens one MLflow
run per ``kedro run``, logs parameters and its datasets log metrics, artifacts and
the model. These hooks:

- fail fast, naming the URI, when a tracking server does not answer, before any
  node runs (MLflow's client would otherwise retry for minutes);
- name the run after the pipelines it runs (before kedro-mlflow opens it) and tag
  it with the git commit, the Kedro run id and the Kedro version of the saved
  model;
- register the logged model as a new version once the whole run has succeeded,
  with the run's metrics as version tags; the first version becomes champion;
- for ``retraining``: hold a lock for the run, skip it when there are no new
  partitions, and once it has succeeded apply its promotion decision (champion or
  challenger alias) and only then move the IncrementalDataset checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
import requests
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset, DataCatalog
from kedro.pipeline import Pipeline
from mlflow.entities import Param, RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from vae_pipeline.datasets.incoming import is_hidden
from vae_pipeline.errors import (
    NothingToRetrain,
    RetrainingInProgress,
    TrackingError,
)
from vae_pipeline.locks import FileLock, LockHeld
from vae_pipeline.tracking.registry import (
    assign_alias,
    metric_tags,
    register_run_model,
    version_by_alias,
)
from vae_pipeline.tracking.stale_runs import (
    HOST_TAG,
    PID_TAG,
    mark_dead_runs_killed,
)

logger = logging.getLogger(__name__)

SERVER_TIMEOUT_SECONDS = 5.0
DEFAULT_REGISTRY = {
    "name": "vae_pipeline",
    "champion_alias": "champion",
    "challenger_alias": "challenger",
    "tracked_model": "mlflow_vae_model",
    "kedro_model": "vae_model",
    "incoming": "incoming_partitions",
}
RETRAINING = "retraining"
DECISION = "promotion_decision"


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
        TrackingError: The server refused, timed out or answered with an error,
            or a local SQLite store cannot be written.
    """
    if urlsplit(uri).scheme == "sqlite":
        check_sqlite_store(uri)
        return
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


def check_sqlite_store(uri: str) -> None:
    """Raise :class:`TrackingError` when a SQLite store (or the folder it would be
    created in) cannot be written: MLflow would fail later with a SQLAlchemy
    traceback, after the pipeline started."""
    if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return
    path = Path(uri.removeprefix("sqlite:///"))
    target = path if path.exists() else path.parent
    if target.exists() and not os.access(target, os.W_OK):
        raise TrackingError(
            f"MLflow tracking store {path} is read-only; make it writable, or set "
            "MLFLOW_TRACKING_URI or conf/local/mlflow.yml"
        )


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


class RetrainingLock(FileLock):
    """One retraining at a time: a second run finds the lock held and does nothing."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, parameter="retraining.lock_file")

    def acquire(self) -> None:
        try:
            super().acquire()
        except LockHeld as held:
            raise RetrainingInProgress(
                f"another retraining run ({held.holder}) holds {self.path}; "
                "this one does nothing"
            ) from None


class ModelTrackingHooks:
    """See the module docstring."""

    def __init__(self) -> None:
        self._registry: dict[str, Any] = dict(DEFAULT_REGISTRY)
        self._run_id: str | None = None
        self._save_version: str | None = None
        self._project_path: Path | None = None
        self._model_saved = False
        self._decision: dict[str, Any] | None = None
        self._logged_params: set[str] = set()

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
        self._run_id, self._model_saved, self._decision = None, False, None

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
        self._logged_params: set[str] = set()
        tags = {
            "kedro.run_id": run_params.get("run_id") or "",
            **git_tags(self._project_path or Path(run_params["project_path"])),
            HOST_TAG: socket.gethostname(),
            PID_TAG: str(os.getpid()),
        }
        mlflow.set_tags({key: value for key, value in tags.items() if value})
        mark_dead_runs_killed(MlflowClient(), run.info.experiment_id)

    @hook_impl(trylast=True)
    def before_node_run(self, node: Any, inputs: dict[str, Any], **kwargs: Any) -> None:
        """Log typed (pydantic) parameters flattened, as kedro-mlflow does dicts."""
        if self._run_id is None:
            return
        params: dict[str, str] = {}
        for name, value in inputs.items():
            if (
                name.startswith("params:")
                and name not in self._logged_params
                and isinstance(value, BaseModel)
            ):
                params |= flat_params(value.model_dump(mode="json"), name[7:])
                self._logged_params.add(name)
        if params:  # once per parameter group, not once per node that reads it
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
        if dataset_name == DECISION:
            self._decision = data

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        """Register the model, apply a promotion decision, then confirm new data.

        Any failure removes the version registered here, leaves the aliases and
        the IncrementalDataset checkpoint as they were and marks the run FAILED.
        """
        if self._run_id is None or not self._model_saved:
            return
        client = MlflowClient()
        name = self._registry["name"]
        champion_alias = self._registry["champion_alias"]
        previous = {
            alias: version_by_alias(client, name, alias)
            for alias in (champion_alias, self._registry["challenger_alias"])
        }
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
            if self._decision is not None:
                self._apply_decision(client, version, self._decision)
            elif previous[champion_alias] is None:
                assign_alias(client, version, champion_alias)
            if RETRAINING in (run_params.get("pipeline_names") or []):
                catalog.confirm(self._registry["incoming"])
        except Exception as error:
            self._roll_back(client, version, previous)
            raise TrackingError(
                f"could not register the model of MLflow run {self._run_id} "
                f"as '{name}': {error}"
            ) from error
        finally:
            self._run_id, self._model_saved, self._decision = None, False, None

    def _apply_decision(
        self, client: MlflowClient, version: ModelVersion, decision: dict[str, Any]
    ) -> None:
        promoted = bool(decision["promote"])
        alias = self._registry["champion_alias" if promoted else "challenger_alias"]
        assign_alias(client, version, alias)
        outcome = "champion" if promoted else "challenger"
        client.set_model_version_tag(
            version.name, version.version, "promotion", outcome
        )
        client.set_model_version_tag(
            version.name, version.version, "promotion.reason", decision["reason"]
        )
        client.set_tag(self._run_id, "promotion", outcome)
        client.set_tag(self._run_id, "promotion.reason", decision["reason"])
        logger.info(
            "Version %s is %s: %s", version.version, outcome, decision["reason"]
        )

    def _roll_back(
        self,
        client: MlflowClient,
        version: ModelVersion | None,
        previous: dict[str, ModelVersion | None],
    ) -> None:
        if version is not None:
            client.delete_model_version(version.name, version.version)
            for alias, earlier in previous.items():
                if earlier is not None:
                    assign_alias(client, earlier, alias)
        client.set_terminated(self._run_id, RunStatus.to_string(RunStatus.FAILED))


class RunNamingHooks:
    """Name the MLflow run after the pipelines it runs, before kedro-mlflow opens
    it (kedro-mlflow names it ``__default__`` otherwise, in MLflow and in its log).
    A ``tracking.run.name`` set in ``mlflow.yml`` wins."""

    def __init__(self, default_pipelines: tuple[str, ...] = ()) -> None:
        self._default_pipelines = default_pipelines
        self._context: KedroContext | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        config = getattr(self._context, "mlflow", None)  # set by kedro-mlflow
        if config is not None and not config.tracking.run.name:
            config.tracking.run.name = run_name(
                run_params.get("pipeline_names"), self._default_pipelines
            )


class RetrainingGuardHooks:
    """One retraining at a time, and none without new data.

    Runs before kedro-mlflow opens an MLflow run, so a skipped run leaves nothing
    behind; releases the lock after everything else (registration included).
    """

    def __init__(self) -> None:
        self._params: dict[str, Any] = {}
        self._project_path: Path | None = None
        self._incoming = DEFAULT_REGISTRY["incoming"]
        self._lock: RetrainingLock | None = None
        self._catalog: DataCatalog | None = None
        self._written: list[Path] = []

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._params = context.params
        self._project_path = context.project_path
        registry = context.config_loader["globals"].get("model_registry", {})
        self._incoming = registry.get("incoming", DEFAULT_REGISTRY["incoming"])

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        """Retraining: take the lock and check for new data before anything runs.

        Raising here (before kedro-mlflow's hook) leaves no MLflow run behind.
        """
        if RETRAINING not in (run_params.get("pipeline_names") or []):
            return
        params = self._params.get(RETRAINING) or {}
        if isinstance(params, BaseModel):  # Kedro validates typed parameters
            params = params.model_dump()
        lock_file = Path(params.get("lock_file", "data/01_raw/incoming.lock"))
        if not lock_file.is_absolute():
            lock_file = (self._project_path or Path.cwd()) / lock_file
        self._lock = RetrainingLock(lock_file)
        self._lock.acquire()
        self._catalog, self._written = catalog, []
        incoming = catalog.load(self._incoming)
        if not [pid for pid in incoming if not is_hidden(pid)]:
            self._release_lock()
            raise NothingToRetrain(
                "no new partitions in data/01_raw/incoming since the last "
                "retraining: nothing to do"
            )

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """Remember the version folders a retraining run writes."""
        if self._lock is None:
            return
        dataset = self._catalog.get(dataset_name) if self._catalog else None
        version = getattr(dataset, "_version", None)
        if isinstance(dataset, AbstractVersionedDataset) and version:
            folder = Path(str(dataset._get_versioned_path(version.save))).parent
            if folder.name == version.save:
                self._written.append(folder)

    def _remove_written(self) -> None:
        """A failed retraining leaves no new versions behind: the next run must
        merge the new batches into the same training data again, not into the
        half-merged splits of this one."""
        for folder in self._written:
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("Removed %s, written by the failed retraining run", folder)
        self._written = []

    @hook_impl(wrapper=True)
    def after_pipeline_run(self) -> Iterator[None]:
        """Around the other hooks: registration can fail too."""
        try:
            return (yield)
        except BaseException:
            self._remove_written()
            raise
        finally:
            self._written = []
            self._release_lock()

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        self._remove_written()
        self._release_lock()
