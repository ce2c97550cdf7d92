"""Cross-cutting tracking hooks; what a run does to the registry is in its nodes.

kedro-mlflow (its hooks, registered after these, run first) opens one MLflow run
per ``kedro run`` and logs parameters; the catalog's datasets log metrics,
artifacts and the model, and register it. These hooks, for every run:

- check the tracking store before any node runs, and bound MLflow's retries
  (:mod:`vae_pipeline.tracking.server`);
- name the run after its pipelines, tag it (git commit, Kedro run id, host and
  pid), log typed parameters, and mark runs that a dead process left RUNNING;
- keep a failed run from leaving anything in the registry: the versions it
  registered are removed and the aliases put back as they were;
- delete the MLflow run of a run that had nothing to do (:class:`RunSkipped`).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from vae_pipeline.errors import RunSkipped
from vae_pipeline.tracking.run_info import flatten, git_tags
from vae_pipeline.tracking.server import (
    absolute_sqlite_uri,
    bound_retries,
    check_tracking_server,
)
from vae_pipeline.tracking.stale_runs import HOST_TAG, PID_TAG, mark_dead_runs_killed

logger = logging.getLogger(__name__)


def run_name(pipeline_names: list[str] | None, default: tuple[str, ...]) -> str:
    """The pipelines a run ran, ``__default__`` spelled out, in pipeline order."""
    names: set[str] = set()
    for name in pipeline_names or ["__default__"]:
        names.update(default if name == "__default__" else [name])
    order = {name: index for index, name in enumerate(default)}
    return "+".join(sorted(names, key=lambda name: (order.get(name, len(order)), name)))


class TrackingHooks:
    """See the module docstring."""

    def __init__(self) -> None:
        self._run_id: str | None = None
        self._aliases: dict[str, dict[str, str]] = {}
        self._logged: set[str] = set()

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        patterns = context.config_loader.config_patterns
        patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**", "**/mlflow*"])
        config = context.config_loader["mlflow"]
        server = config.setdefault("server", {})
        for key in ("mlflow_tracking_uri", "mlflow_registry_uri"):
            if server.get(key):
                server[key] = absolute_sqlite_uri(server[key], context.project_path)
        context.config_loader["mlflow"] = config  # what kedro-mlflow reads next
        check_tracking_server(server.get("mlflow_tracking_uri") or "")
        bound_retries()
        self._project_path = context.project_path

    @hook_impl(trylast=True)  # after kedro-mlflow opened the run
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        run = mlflow.active_run()
        self._run_id, self._logged = (run.info.run_id if run else None), set()
        if run is None:  # tracking disabled for this pipeline
            return
        tags = {
            "kedro.run_id": run_params.get("run_id") or "",
            **git_tags(self._project_path),
            HOST_TAG: socket.gethostname(),
            PID_TAG: str(os.getpid()),
        }
        mlflow.set_tags({key: value for key, value in tags.items() if value})
        client = MlflowClient()
        mark_dead_runs_killed(client, run.info.experiment_id)
        self._aliases = {
            model.name: {alias: str(v) for alias, v in model.aliases.items()}
            for model in client.search_registered_models()
        }

    @hook_impl(trylast=True)
    def before_node_run(self, inputs: dict[str, Any]) -> None:
        """Log typed (pydantic) parameters flattened, as kedro-mlflow does dicts,
        once per parameter group."""
        params: dict[str, str] = {}
        for name, value in inputs.items():
            typed = name.startswith("params:") and isinstance(value, BaseModel)
            if typed and name not in self._logged:
                flat = flatten(value.model_dump(mode="json"), name[7:])
                params |= {key: str(leaf) for key, leaf in flat.items()}
                self._logged.add(name)
        if params and self._run_id is not None:
            MlflowClient().log_batch(
                self._run_id,
                params=[Param(key, value) for key, value in params.items()],
            )

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        """Undo what the failed run did to the registry; forget a skipped run."""
        run_id, self._run_id = self._run_id, None
        if run_id is None:
            return
        client = MlflowClient()
        try:
            for version in client.search_model_versions(f"run_id = '{run_id}'"):
                client.delete_model_version(version.name, version.version)
                current = client.get_registered_model(version.name).aliases
                for alias, number in self._aliases.get(version.name, {}).items():
                    if str(current.get(alias)) != number:
                        client.set_registered_model_alias(version.name, alias, number)
            if isinstance(error, RunSkipped):
                client.delete_run(run_id)
        except MlflowException as failure:  # the store itself failed the run
            logger.warning("Registry not checked after the failure: %s", failure)


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
