"""MLflow runs left RUNNING by a ``kedro run`` that was killed.

What such a run registered is removed by the next run that releases a model, in
its first node (``remove_abandoned_versions_node`` of the registration pipeline).
"""

from __future__ import annotations

import logging
import socket

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from vae_pipeline.locks import process_alive

logger = logging.getLogger(__name__)

HOST_TAG = "vae_pipeline.host"
PID_TAG = "vae_pipeline.pid"


def mark_dead_runs_killed(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the runs of this host left RUNNING by a process that is gone.

    A ``kill -9`` (or a lost machine) ends a ``kedro run`` before MLflow hears of
    it, and the run stays RUNNING for ever. Each run records its host and pid, so a
    later run on the same host can tell; runs of other hosts are left alone.

    Args:
        client: MLflow client of the tracking store.
        experiment_id: The experiment to look in.

    Returns:
        The ids of the runs marked KILLED.
    """
    host = socket.gethostname()
    running = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
    )
    killed = []
    for run in running:
        pid = run.data.tags.get(PID_TAG, "")
        if pid.isdigit() and not process_alive(int(pid)):
            client.set_terminated(
                run.info.run_id, RunStatus.to_string(RunStatus.KILLED)
            )
            logger.info(
                "MLflow run %s was left RUNNING by process %s, which is gone: "
                "marked KILLED",
                run.info.run_id,
                pid,
            )
            killed.append(run.info.run_id)
    return killed
