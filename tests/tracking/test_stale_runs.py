"""Runs left RUNNING by a killed ``kedro run`` are marked KILLED by the next."""

from __future__ import annotations

import os
import socket

from mlflow.tracking import MlflowClient

from tests.conftest import dead_pid
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
