"""Projects for the end-to-end retraining tests, and what the tests read of them.

Each test starts from its own copy: a fresh project, or one where the default
``kedro run`` has run once (``trained_project``, version 1 is ``@champion``); so
a test depends on no other test or its order.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from sklearn.datasets import load_digits

from tests.conftest import (
    kedro_cli,
    make_project_copy,
    read_until,
    start_kedro,
)

INCOMING = Path("data/01_raw/incoming")
MODEL_INPUT = Path("data/05_model_input")
DIGITS = load_digits()


def write_batch(project: Path, batch: str, *, seed: int, count: int = 300) -> Path:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(DIGITS.images), count, replace=False)
    folder = project / INCOMING / batch
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"digits-{seed}.npz"
    np.savez_compressed(
        path, x=(DIGITS.images[chosen] / 16).astype(np.float32), y=DIGITS.target[chosen]
    )
    return path


def write_class_folders(project: Path, batch: str, labels: range) -> int:
    """PNG images in one folder per class, as a labelling tool delivers them."""
    count = 0
    for label in labels:
        folder = project / INCOMING / batch / str(label)
        folder.mkdir(parents=True)
        for index in np.flatnonzero(DIGITS.target == label)[:11]:
            pixels = (DIGITS.images[index] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{index}.png")
            count += 1
    return count


def store(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def versions(client: MlflowClient) -> list[int]:
    found = client.search_model_versions("name='vae_pipeline'")
    return sorted(int(v.version) for v in found)


def run_statuses(client: MlflowClient) -> list[str]:
    experiment = client.get_experiment_by_name("vae_pipeline").experiment_id
    runs = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    return [run.info.status for run in runs]


def committed(project: Path) -> dict:
    """The latest committed data version record."""
    records = sorted((project / MODEL_INPUT / "data_version.json").glob("*/*.json"))
    return json.loads(records[-1].read_text())


def split_folders(project: Path, split: str) -> list[str]:
    return sorted(p.name for p in (project / MODEL_INPUT / split).iterdir())


def train_size(project: Path) -> int:
    return committed(project)["splits"]["train"]["num_examples"]


def retrain(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return kedro_cli(project, "run", "--pipelines", "retraining", *args)


def kill_when(project: Path, seen: Callable[[str], bool], *args: str) -> str:
    """Start ``kedro run <args>``, ``kill -9`` it at the first line ``seen``
    accepts, and return its output up to there."""
    process = start_kedro(project, "run", *args)
    output = read_until(process, seen)
    process.kill()
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, output[-3000:]
    return output


@pytest.fixture
def fresh_project(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project")


@pytest.fixture
def project(trained_project: Path, tmp_path: Path) -> Path:
    """This test's copy of the trained project (``tests/conftest.py``)."""
    copy = tmp_path / "project"
    shutil.copytree(trained_project, copy)
    return copy
