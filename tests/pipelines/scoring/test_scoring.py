"""The scoring pipeline: new images scored by a registered model's pyfunc."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import (
    MNIST_IMAGES,
    assert_ok,
    kedro_cli,
    typed_params,
    written_files,
)
from vae_pipeline.datasets import ShardedArrayDataset
from vae_pipeline.pipelines import scoring
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.registration.nodes import latent_reference
from vae_pipeline.pipelines.registration.params import RegistrationParams
from vae_pipeline.pipelines.scoring.params import ScoringParams
from vae_pipeline.pipelines.training.params import TrainingParams
from vae_pipeline.tracking import vae_flavor
from vae_pipeline.train import train_vae

SCORING = Path("data/01_raw/scoring")


def mnist() -> np.ndarray:
    with gzip.open(MNIST_IMAGES, "rb") as stream:
        pixels = np.frombuffer(stream.read()[16:], dtype=np.uint8)
    return pixels.reshape(-1, 28, 28)


@pytest.mark.skipif(not MNIST_IMAGES.is_file(), reason="../shared/data/mnist is absent")
def test_other_distributions_are_flagged_more_than_held_out_digits(
    tmp_path, make_catalog, run_pipeline
):
    """Trained on 8,000 MNIST digits; scored: the 2,000 held-out digits, as many
    uniform-noise images and the held-out digits inverted."""
    images = mnist()
    splits = {}
    for name, part in (("train", images[:7200]), ("validation", images[7200:8000])):
        dataset = ShardedArrayDataset(filepath=str(tmp_path / name))
        dataset.save((part[..., None] / 255).astype(np.float32))
        splits[name] = dataset.load()
    model, _ = train_vae(
        splits["train"],
        splits["validation"],
        typed_params(
            TrainingParams,
            "training",
            epochs=10,
            checkpoint_dir=str(tmp_path / "checkpoints"),
        ),
    )
    reference = latent_reference(
        model, splits["train"], typed_params(RegistrationParams, "registration")
    )
    vae_flavor.save_model(
        vae_flavor.ServableVAE(model, splits["train"].images()[:2], reference),
        str(tmp_path / "model"),
    )
    held_out = images[8000:]
    rng = np.random.default_rng(0)
    folder = tmp_path / "scoring"
    folder.mkdir()
    for name, x in (
        ("digits", held_out),
        ("noise", rng.integers(0, 256, held_out.shape, dtype=np.uint8)),
        ("inverted", 255 - held_out),
    ):
        np.savez(folder / f"{name}.npz", x=x)
    catalog = make_catalog(
        scoring_files={
            "type": "vae_pipeline.datasets.OptionalPartitionedDataset",
            "path": str(folder),
            "dataset": {"type": "vae_pipeline.datasets.IncomingFileDataset"},
        },
        scoring_model={"type": "MemoryDataset", "copy_mode": "assign"},
        train_split={"type": "MemoryDataset", "copy_mode": "assign"},
    )
    catalog["scoring_model"] = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    catalog["train_split"] = splits["train"]
    run_pipeline(
        scoring.create_pipeline(),
        catalog,
        {
            "data_ingestion": typed_params(IngestionParams, "data_ingestion"),
            "scoring": typed_params(ScoringParams, "scoring"),
        },
    )
    scores = catalog.load("image_scores")
    assert len(scores) == 6000 and scores["image_id"].is_unique
    rates = scores.groupby(scores["source"].str.extract(r"(\w+)\.npz")[0])[
        "outlier"
    ].mean()
    assert rates["digits"] < 0.05  # about the 1 % the threshold's quantile allows
    assert rates["noise"] > 0.9 and rates["inverted"] > 0.9
    assert scores["outlier_threshold"].nunique() == 1
    similar = catalog.load("similar_images")
    assert (
        len(similar["neighbor_ids"])
        == typed_params(ScoringParams, "scoring").similar_examples
    )


@pytest.fixture
def scored_project(tracked_project: Path, tmp_path: Path) -> Path:
    """A copy of the tracked project (its champion and data) to score in."""
    project = tmp_path / "project"
    shutil.copytree(tracked_project, project, ignore=shutil.ignore_patterns("*.log"))
    return project


def test_kedro_run_scoring_writes_the_table_and_tracks_it(scored_project: Path):
    from kedro.io import Version

    test = ShardedArrayDataset(
        filepath=str(scored_project / "data/05_model_input/test"),
        version=Version(None, None),
    ).load()
    np.savez(scored_project / SCORING / "batch.npz", x=test.images()[:50, ..., 0])
    result = kedro_cli(scored_project, "run", "--pipelines", "scoring")
    assert_ok(result)
    assert "Scored 50 images" in result.stdout
    tables = written_files(scored_project / "data/07_model_output")
    table = next(path for path in tables if path.suffix == ".parquet")
    scores = pd.read_parquet(table)
    assert scores["image_id"].tolist() == [
        f"data/01_raw/scoring/batch.npz#{i}" for i in range(50)
    ]
    assert {"negative_log_likelihood", "outlier", "z_mean_0"} <= set(scores)
    client = MlflowClient(f"sqlite:///{scored_project / 'mlflow.db'}")
    run = client.search_runs(
        [client.get_experiment_by_name("vae_pipeline").experiment_id],
        "attributes.run_name = 'scoring'",
    )[0]
    assert run.data.metrics["scoring.images"] == 50
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "scores")}
    assert "scores/image_scores.parquet" in artifacts


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "data/01_raw/scoring: no files to score"),
        (b"PK\x03\x04 truncated", "data/01_raw/scoring/bad.npz: not a readable NPZ"),
    ],
)
def test_bad_scoring_input_is_one_line_and_writes_nothing(
    scored_project: Path, content, message
):
    if content is not None:
        (scored_project / SCORING / "bad.npz").write_bytes(content)
    before = written_files(scored_project / "data/07_model_output")
    result = kedro_cli(scored_project, "run", "--pipelines", "scoring")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert written_files(scored_project / "data/07_model_output") == before
