"""Multi-worker training: which task this process is, and a run in which only
the chief writes.

``training.strategy: multi_worker_mirrored`` trains one model over several
processes (``kedro run`` once per host, each with its ``TF_CONFIG``), as
tf.distribute's ``MultiWorkerMirroredStrategy`` does. Every worker runs the same
pipeline and the same training steps; one of them, the chief, keeps what the run
produces. A cross-cutting concern, so a hook: on every other worker the run's
outputs stay in memory and MLflow tracking is off.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline

from vae_pipeline.errors import InputDataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskRole:
    """This process's task in a ``TF_CONFIG`` cluster (``worker-0`` alone)."""

    name: str
    is_chief: bool


def task_role(tf_config: str | None = None) -> TaskRole:
    """The task ``TF_CONFIG`` (or the variable) names; the chief is task
    ``chief``, or ``worker`` 0 in a cluster without one.

    Raises:
        InputDataError: ``TF_CONFIG`` is not the JSON tf.distribute expects.
    """
    text = os.environ.get("TF_CONFIG") if tf_config is None else tf_config
    if not text:
        return TaskRole("worker-0", is_chief=True)
    try:
        config = json.loads(text)
        kind, index = config["task"]["type"], int(config["task"]["index"])
        cluster = config["cluster"]
    except (ValueError, KeyError, TypeError) as error:
        raise InputDataError(
            f"TF_CONFIG: not a tf.distribute cluster description ({error!r})"
        ) from None
    is_chief = kind == "chief" or (
        kind == "worker" and index == 0 and "chief" not in cluster
    )
    return TaskRole(f"{kind}-{index}", is_chief=is_chief)


class ClusterHooks:
    """On a worker other than the chief: nothing the run saves leaves memory, and
    MLflow tracks nothing (the chief's run is the run)."""

    def __init__(self) -> None:
        self._context: KedroContext | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens a run
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        role = task_role()
        if role.is_chief:
            return
        config = getattr(self._context, "mlflow", None)  # set by kedro-mlflow
        if config is not None:
            names = run_params.get("pipeline_names") or ["__default__"]
            config.tracking.disable_tracking.pipelines = list(names)
        for name in pipeline.all_outputs():
            catalog[name] = MemoryDataset(copy_mode="assign")
        logger.info(
            "This is %s of a multi-worker cluster: it trains, and the chief "
            "writes what the run produces",
            role.name,
        )
