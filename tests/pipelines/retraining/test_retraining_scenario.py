"""The scheduled-retraining scenario, end to end through ``kedro run``.

default run (champion v1) -> a new partition -> retraining (v2, promoted or not,
with the reason logged) -> retraining with nothing new (no-op) -> two retraining
runs at once (one refuses) -> a corrupt partition (clear error; champion and
checkpoint unchanged).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_digits

from tests.conftest import (
    aliases,
    cli_env,
    kedro_cli,
    kedro_command,
    make_project_copy,
)

INCOMING = Path("data/01_raw/incoming")


def write_batch(project: Path, batch: str, *, seed: int, count: int = 300) -> Path:
    digits = load_digits()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(digits.images), count, replace=False)
    folder = project / INCOMING / batch
    folder.mkdir(parents=True)
    path = folder / "digits.npz"
    np.savez_compressed(
        path,
        x=(digits.images[chosen] / 16).astype(np.float32),
        y=digits.target[chosen],
    )
    return path


def versions(client: MlflowClient) -> list[int]:
    found = client.search_model_versions("name='vae_pipeline'")
    return sorted(int(v.version) for v in found)


def checkpoint(project: Path) -> str | None:
    path = project / INCOMING / "CHECKPOINT"
    return path.read_text() if path.exists() else None


def retrain(project: Path) -> subprocess.CompletedProcess[str]:
    return kedro_cli(project, "run", "--pipelines", "retraining")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project_copy(tmp_path_factory.mktemp("retraining") / "project")
    result = kedro_cli(root, "run")
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def client(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def test_1_default_run_makes_the_first_champion(project, client):
    assert versions(client) == [1]
    assert aliases(client) == {"champion": 1}


def test_2_retraining_on_a_new_partition_registers_v2_with_the_decision(
    project, client
):
    write_batch(project, "2026-11-24", seed=1)
    result = retrain(project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert versions(client) == [1, 2]
    version = client.get_model_version("vae_pipeline", "2")
    outcome = version.tags["promotion"]
    assert outcome in {"champion", "challenger"}
    assert "held-out negative ELBO" in version.tags["promotion.reason"]
    expected = (
        {"champion": 2}
        if outcome == "champion"
        else {
            "champion": 1,
            "challenger": 2,
        }
    )
    assert aliases(client) == expected
    run = client.get_run(version.run_id)
    assert run.info.run_name == "retraining"
    assert run.data.tags["promotion"] == outcome
    assert "promotion.challenger_negative_elbo" in run.data.metrics
    assert "promotion.champion_negative_elbo" in run.data.metrics
    assert checkpoint(project) == "2026-11-24/digits.npz"
    train_versions = sorted((project / "data/05_model_input/train").iterdir())
    test_versions = sorted((project / "data/05_model_input/test").iterdir())
    assert len(train_versions) == 2
    assert len(test_versions) == 1  # the held-out test split stays fixed


def test_3_retraining_with_nothing_new_does_nothing(project, client):
    runs_before = len(client.search_runs([run_experiment(client)]))
    result = retrain(project)
    assert result.returncode == 0
    assert result.stderr.strip().splitlines()[-1] == (
        "Nothing done: no new partitions in data/01_raw/incoming since the last "
        "retraining: nothing to do"
    )
    assert versions(client) == [1, 2]
    assert len(client.search_runs([run_experiment(client)])) == runs_before


def run_experiment(client: MlflowClient) -> str:
    return client.get_experiment_by_name("vae_pipeline").experiment_id


def test_4_two_retraining_runs_at_once_one_refuses(project, client):
    write_batch(project, "2026-11-25", seed=2)
    lock = project / "data/01_raw/incoming.lock"
    first = subprocess.Popen(
        kedro_command("run", "--pipelines", "retraining"),
        cwd=project,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().startswith("pid")):
        assert first.poll() is None, first.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.2)
    second = retrain(project)
    _, first_stderr = first.communicate(timeout=600)
    assert first.returncode == 0, first_stderr[-3000:]
    assert second.returncode == 0
    assert (
        second.stderr.strip()
        .splitlines()[-1]
        .startswith("Nothing done: another retraining run (pid ")
    )
    assert versions(client) == [1, 2, 3]
    assert checkpoint(project) == "2026-11-25/digits.npz"
    assert lock.read_text() == ""  # released


def test_5_a_corrupt_partition_fails_clearly_and_changes_nothing(project, client):
    aliases_before = aliases(client)
    folder = project / INCOMING / "2026-11-26"
    folder.mkdir()
    (folder / "digits.npz").write_bytes(b"PK\x03\x04 not really a zip archive")
    result = retrain(project)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Error: ")
    assert "2026-11-26/digits.npz" in last_line
    assert versions(client) == [1, 2, 3]
    assert aliases(client) == aliases_before
    assert checkpoint(project) == "2026-11-25/digits.npz"
    assert len(sorted((project / "data/05_model_input/train").iterdir())) == 3


def test_6_a_run_failing_after_the_merge_leaves_no_new_versions(project, client):
    shutil.rmtree(project / INCOMING / "2026-11-26")  # the corrupt batch
    write_batch(project, "2026-11-27", seed=3)
    splits = project / "data/05_model_input"
    before = {
        name: sorted((splits / name).iterdir()) for name in ("train", "validation")
    }
    result = kedro_cli(
        project, "run", "--pipelines", "retraining", "--params",
        "training.learning_rate=1e12",
    )  # fmt: skip
    assert result.returncode == 1
    assert "training diverged" in result.stderr.strip().splitlines()[-1]
    after = {
        name: sorted((splits / name).iterdir()) for name in ("train", "validation")
    }
    assert after == before
    assert versions(client) == [1, 2, 3]
    assert checkpoint(project) == "2026-11-25/digits.npz"
    assert (project / "data/01_raw/incoming.lock").read_text() == ""
    # The batch is merged into the same training data when the run succeeds.
    assert retrain(project).returncode == 0
    assert checkpoint(project) == "2026-11-27/digits.npz"
    latest = sorted((splits / "train").iterdir())[-1]
    manifest = json.loads((latest / "train" / "manifest.json").read_text())
    previous = json.loads((before["train"][-1] / "train" / "manifest.json").read_text())
    assert manifest["num_examples"] == previous["num_examples"] + 270
