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


def final_val_loss(project: Path) -> float:
    histories = sorted(
        (project / "data/08_reporting/training_history.json").glob("*/*")
    )
    return json.loads(histories[-1].read_text())["val_loss"][-1]


def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    project = make_project_copy(tmp_path / "project")
    assert_ok(kedro_cli(project, "run", "--pipelines", "data_ingestion"))
    single = kedro_cli(project, "run", "--pipelines", "training", "--params", PARAMS)
    assert_ok(single)
    alone = final_val_loss(project)
    before = written_files(project / "data")

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
                    f"{PARAMS},training.strategy=multi_worker_mirrored",
                ),
                cwd=project,
                env=cli_env({"TF_CONFIG": json.dumps(tf_config)}),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
        )
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
