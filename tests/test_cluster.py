"""Multi-worker training: two real ``kedro run`` workers on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import (
    assert_ok,
    cli_env,
    free_port,
    kedro_cli,
    kedro_command,
    make_project_copy,
    written_files,
)
from vae_pipeline.cluster import task_role
from vae_pipeline.errors import InputDataError

PARAMS = "training.epochs=3,training.min_steps_per_epoch=0"


@pytest.mark.parametrize(
    ("config", "name", "is_chief"),
    [
        (None, "worker-0", True),
        ({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 0}},
         "worker-0", True),
        ({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 1}},
         "worker-1", False),
        ({"cluster": {"chief": ["a"], "worker": ["b"]},
          "task": {"type": "worker", "index": 0}}, "worker-0", False),
        ({"cluster": {"chief": ["a"], "worker": ["b"]},
          "task": {"type": "chief", "index": 0}}, "chief-0", True),
    ],
)  # fmt: skip
def test_the_chief_is_the_chief_task_or_else_worker_0(config, name, is_chief):
    role = task_role(json.dumps(config) if config else "")
    assert (role.name, role.is_chief) == (name, is_chief)


def test_a_bad_tf_config_is_one_line():
    with pytest.raises(InputDataError, match=r"^TF_CONFIG: not a tf.distribute"):
        task_role('{"task": {}}')


def start_workers(project: Path, params: str) -> list[subprocess.Popen]:
    """Two ``kedro run`` workers of one cluster on 127.0.0.1."""
    ports = [free_port(), free_port()]
    workers = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
        workers.append(
            subprocess.Popen(
                kedro_command(
                    "run",
                    "--pipelines",
                    "training",
                    "--params",
                    f"{params},training.strategy=multi_worker_mirrored",
                ),
                cwd=project,
                env=cli_env(
                    {"TF_CONFIG": json.dumps(tf_config), "PYTHONUNBUFFERED": "1"}
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
        )
    return workers


def histories(project: Path) -> list[Path]:
    return sorted((project / "data/08_reporting/training_history.json").glob("*/*"))


def final_val_loss(project: Path) -> float:
    return json.loads(histories(project)[-1].read_text())["val_loss"][-1]


def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    project = make_project_copy(tmp_path / "project")
    assert_ok(kedro_cli(project, "run", "--pipelines", "data_ingestion"))
    single = kedro_cli(
        project,
        "run",
        "--pipelines",
        "training",
        "--params",
        PARAMS,
        subprocess_run=True,
    )
    assert_ok(single)
    alone = final_val_loss(project)
    before = written_files(project / "data")

    workers = start_workers(project, PARAMS)
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    assert "This is worker-1 of a multi-worker cluster" in outputs[1]

    # Same global batch and seed; each replica draws its own reparameterization
    # noise for its half of a batch, so the runs agree within 1 % (0.5 % seen).
    assert final_val_loss(project) == pytest.approx(alone, rel=0.01)
    written = set(written_files(project / "data")) - set(before)
    kinds = sorted(path.relative_to(project / "data").parts[1] for path in written)
    assert kinds == ["training_history.json", "vae.keras"]  # the chief's, once
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("vae_pipeline").experiment_id
    assert len(client.search_runs([experiment])) == 3  # ingestion, alone, chief
    assert not any((project / "data/06_models/checkpoints").iterdir())


def test_killing_a_worker_stops_the_chief_and_both_resume_together(tmp_path):
    project = make_project_copy(tmp_path / "project")
    assert_ok(kedro_cli(project, "run", "--pipelines", "data_ingestion"))
    params = "training.epochs=6,training.min_steps_per_epoch=50"
    chief, worker = start_workers(project, params)
    for line in worker.stdout:
        if "epoch 3/6" in line:
            worker.kill()
            break
    output = chief.communicate(timeout=300)[0]
    assert chief.returncode == 1, output[-3000:]
    # (TensorFlow's thread pool may print an ignored error at exit after it.)
    assert any(
        line.startswith("Error: worker-0: another worker of the cluster stopped")
        for line in output.splitlines()
    ), output[-3000:]
    worker.wait()

    outputs = [p.communicate(timeout=600)[0] for p in start_workers(project, params)]
    for output in outputs:
        assert "Resuming training from the checkpoint" in output, output[-3000:]
        epochs = [line for line in output.splitlines() if " epoch " in line]
        assert epochs[0].split(" epoch ")[1].startswith("4/6")  # the chief's epoch
        assert epochs[-1].split(" epoch ")[1].startswith("6/6")
    histories = sorted(
        (project / "data/08_reporting/training_history.json").glob("*/*")
    )
    assert json.loads(histories[-1].read_text())["epoch"] == [1, 2, 3, 4, 5, 6]
    assert not any((project / "data/06_models/checkpoints").iterdir())
