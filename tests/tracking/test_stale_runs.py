"""Runs left RUNNING by a killed ``kedro run`` are marked KILLED by the next; the
next release deletes the versions they registered that no alias holds."""

from __future__ import annotations

import os
import socket

import mlflow
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner
from mlflow.tracking import MlflowClient

from tests.conftest import dead_pid
from vae_pipeline.pipelines import registration
from vae_pipeline.tracking.registry import ModelVersionsDataset
from vae_pipeline.tracking.stale_runs import HOST_TAG, PID_TAG, mark_dead_runs_killed


def test_only_this_hosts_runs_of_dead_processes_are_marked_killed(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=str(tmp_path / "a"))
    gone = str(dead_pid())
    here = socket.gethostname()
    runs = {
        name: client.create_run(experiment, tags={HOST_TAG: host, PID_TAG: pid})
        for name, host, pid in (
            ("killed", here, gone),
            ("alive", here, str(os.getpid())),
            ("elsewhere", "another-host", gone),
        )
    }
    finished = client.create_run(experiment, tags={HOST_TAG: here, PID_TAG: gone})
    client.set_terminated(finished.info.run_id, "FINISHED")

    assert mark_dead_runs_killed(client, experiment) == [runs["killed"].info.run_id]
    status = {
        name: client.get_run(run.info.run_id).info.status for name, run in runs.items()
    }
    assert status == {"killed": "KILLED", "alive": "RUNNING", "elsewhere": "RUNNING"}
    assert client.get_run(finished.info.run_id).info.status == "FINISHED"
    assert mark_dead_runs_killed(client, experiment) == []


def test_a_killed_runs_version_is_deleted_unless_an_alias_points_at_it(tmp_path):
    """MLflow 3.17's search_model_versions gives every version an empty
    ``aliases`` list: the champion a killed run made must survive anyway."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=str(tmp_path / "a"))
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(dead_pid())}
    killed = [client.create_run(experiment, tags=tags).info.run_id for _ in range(3)]
    finished = client.create_run(experiment)
    client.set_terminated(finished.info.run_id, "FINISHED")
    client.create_registered_model("m")
    for run_id in (*killed, finished.info.run_id):
        client.create_model_version("m", source=str(tmp_path / "model"), run_id=run_id)
    client.set_registered_model_alias("m", "champion", "1")
    client.set_registered_model_alias("m", "challenger", "3")
    mark_dead_runs_killed(client, experiment)

    versions = ModelVersionsDataset(model_name="m")
    catalog = DataCatalog({"model_versions": versions})
    catalog["abandoned_model_versions"] = versions
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        SequentialRunner().run(
            registration.create_pipeline().only_nodes("remove_abandoned_versions_node"),
            catalog,
        )
    finally:
        mlflow.set_tracking_uri(previous)

    remaining = sorted(int(v.version) for v in client.search_model_versions("name='m'"))
    assert remaining == [1, 3, 4]
    assert client.get_registered_model("m").aliases == {"champion": 1, "challenger": 3}
