"""MLflow runs left RUNNING by a ``kedro run`` that was killed, and what they
registered."""

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


def clean_up_dead_runs(client: MlflowClient, experiment_id: str) -> None:
    """Mark KILLED the runs a dead process left RUNNING, and delete the model
    versions they registered that no alias points at.

    The rule, for every kill point: a version that holds an alias is never
    deleted (a run killed after moving ``@champion`` leaves a champion); one that
    holds none is not a model anyone chose (a run killed between registering it
    and moving its alias), and the data it was trained on is trained on again by
    the next retraining (``select_new_files`` of the retraining pipeline).
    """
    for run_id in mark_dead_runs_killed(client, experiment_id):
        for version in client.search_model_versions(f"run_id = '{run_id}'"):
            # search_model_versions leaves ``aliases`` empty (MLflow 3.17): the
            # registered model itself says which versions its aliases point at.
            held = client.get_registered_model(version.name).aliases
            names = sorted(a for a, v in held.items() if str(v) == str(version.version))
            if names:
                logger.info(
                    "Kept model '%s' version %s of the killed run: it is %s",
                    version.name,
                    version.version,
                    ", ".join(f"@{name}" for name in names),
                )
                continue
            client.delete_model_version(version.name, version.version)
            logger.info(
                "Deleted model '%s' version %s, registered by the killed run",
                version.name,
                version.version,
            )
