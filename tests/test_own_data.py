"""An ML engineer's own images, as the README tells them: a copy of
``conf/own_images_template`` as an environment of their own, images of another
shape than the default (RGB, resized to 32x32), and every pipeline on them:
ingest, train, register, retrain on a new batch, score. Data of another shape
than a registered model's champion is refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from sklearn.datasets import load_digits

from tests.conftest import (
    PROJECT_ROOT,
    aliases,
    assert_ok,
    kedro_cli,
    make_project_copy,
)

DIGITS = load_digits()
ENV = "faces"


def write_images(folder: Path, *, seed: int, per_class: int, labels=(0, 1, 2)) -> int:
    """Colour 20x20 PNGs of digits, one sub-folder per (numeric) class."""
    rng = np.random.default_rng(seed)
    count = 0
    for label in labels:
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        members = rng.choice(np.flatnonzero(DIGITS.target == label), per_class)
        for index in members:
            grey = Image.fromarray((DIGITS.images[index] * 255 / 16).astype(np.uint8))
            grey = np.asarray(grey.resize((20, 20)), dtype=np.float32) / 255
            colour = rng.uniform(0.3, 1.0, size=3)
            rgb = (grey[..., None] * colour * 255).astype(np.uint8)
            Image.fromarray(rgb, mode="RGB").save(folder / str(label) / f"{count}.png")
            count += 1
    return count


def registry(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def model_versions(client: MlflowClient, name: str) -> list[int]:
    return sorted(
        int(v.version) for v in client.search_model_versions(f"name='{name}'")
    )


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with the template copied to conf/faces as the README says, the
    images in its data root, after ``kedro run --env faces``."""
    project = make_project_copy(tmp_path_factory.mktemp("own") / "project")
    env = project / "conf" / ENV
    shutil.copytree(PROJECT_ROOT / "conf" / "own_images_template", env)
    globals_file = env / "globals.yml"
    globals_file.write_text(globals_file.read_text().replace("own_images", ENV))
    write_images(
        project / "data" / ENV / "01_raw" / "image_folder", seed=0, per_class=60
    )
    result = kedro_cli(project, "run", "--env", ENV)
    assert_ok(result)
    (project / "first-run.log").write_text(result.stdout)
    return project


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained project for one test."""
    copy = tmp_path / "project"
    shutil.copytree(trained, copy)
    return copy


def test_own_images_go_through_every_pipeline_in_their_environment(project):
    client = registry(project)
    assert (
        "Registered model 'vae_faces' version 1"
        in (project / "first-run.log").read_text()
    )
    assert model_versions(client, f"vae_{ENV}") == [1]
    assert aliases(client, f"vae_{ENV}") == {"champion": 1}
    assert client.search_registered_models("name='vae_pipeline'") == []
    data = project / "data" / ENV
    assert any((data / "05_model_input" / "train").iterdir())
    assert not (project / "data" / "05_model_input" / "train").exists() or not any(
        (project / "data" / "05_model_input" / "train").iterdir()
    )

    write_images(data / "01_raw" / "incoming" / "2026-12-02", seed=1, per_class=20)
    result = kedro_cli(project, "run", "--env", ENV, "--pipelines", "retraining")
    assert_ok(result)
    assert "Training data: " in result.stdout
    assert model_versions(client, f"vae_{ENV}") == [1, 2]

    write_images(data / "01_raw" / "scoring", seed=2, per_class=4)
    result = kedro_cli(project, "run", "--env", ENV, "--pipelines", "scoring")
    assert_ok(result)
    import pandas as pd

    [table] = (data / "07_model_output").glob("image_scores.parquet/*/*.parquet")
    scores = pd.read_parquet(table)
    assert len(scores) == 12
    assert np.isfinite(scores["negative_log_likelihood"]).all()


def test_a_champion_of_another_shape_refuses_in_one_line(project):
    """The default run's registered model (8x8 grey digits) and these 20x20 RGB
    images: training, retraining and scoring each say what to do, on one line."""
    assert_ok(kedro_cli(project, "run"))  # vae_pipeline v1: 8x8x1 (vae_faces: 32x32x3)
    client = registry(project)

    shutil.copytree(
        project / "data" / ENV / "01_raw" / "image_folder",
        project / "data" / "01_raw" / "image_folder",
        dirs_exist_ok=True,
    )
    result = kedro_cli(
        project,
        "run",
        "--params",
        "data_ingestion.source=image_folder,data_ingestion.image_folder.color_mode=rgb",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: the training data are 20x20x3 images, but 'vae_pipeline' @champion "
        "(version 1) takes 8x8x1: give this data an environment of its own (copy "
        "conf/own_images_template to conf/<name>: its own data_root and "
        "model_registry.name, then kedro run --env <name>), or point @champion at a "
        "version trained on images of this shape"
    ]
    assert "epoch 1/" not in result.stdout
    assert model_versions(client, "vae_pipeline") == [1]

    # The faces model's champion moved by hand to a version of another shape.
    digits_model = client.get_model_version("vae_pipeline", "1")
    moved = client.create_model_version(
        f"vae_{ENV}",
        source=client.get_model_version_download_uri("vae_pipeline", "1"),
        run_id=digits_model.run_id,
    )
    client.set_registered_model_alias(f"vae_{ENV}", "champion", moved.version)
    write_images(
        project / "data" / ENV / "01_raw" / "incoming" / "later", seed=3, per_class=5
    )
    retraining = kedro_cli(project, "run", "--env", ENV, "--pipelines", "retraining")
    assert retraining.returncode == 1
    [line] = retraining.stderr.strip().splitlines()
    assert line.startswith(
        "Error: the images of new batch later are 32x32x3 images, but 'vae_faces' "
        "@champion"
    )
    assert "Traceback" not in retraining.stdout + retraining.stderr

    write_images(project / "data" / ENV / "01_raw" / "scoring", seed=2, per_class=2)
    scoring = kedro_cli(project, "run", "--env", ENV, "--pipelines", "scoring")
    assert scoring.returncode == 1
    [line] = scoring.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "shape" in line, line
