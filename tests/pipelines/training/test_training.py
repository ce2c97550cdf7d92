"""The training pipeline: saved model, determinism, NaN, resume, mirrored."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from kedro.io import AbstractDataset, DatasetError, Version
from mlflow.tracking import MlflowClient

from tests.conftest import cli_env, kedro_cli, typed_params, written_files
from vae_pipeline.datasets import ShardedArrayDataset
from vae_pipeline.errors import InputDataError, TrainingError
from vae_pipeline.locks import FileLock
from vae_pipeline.pipelines import data_ingestion, training
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.training.params import TrainingParams
from vae_pipeline.train import (
    LOCK_FILE,
    build_model,
    run_fingerprint,
    train_vae,
)


@pytest.fixture
def train(make_catalog, run_pipeline, data_root):
    def _train(**params):
        params.setdefault("epochs", 3)
        params.setdefault(
            "checkpoint_dir", str(data_root / "data/06_models/checkpoints")
        )
        catalog = make_catalog()
        run_pipeline(
            data_ingestion.create_pipeline() + training.create_pipeline(),
            catalog,
            {
                "data_ingestion": typed_params(IngestionParams, "data_ingestion"),
                "training": typed_params(TrainingParams, "training", **params),
            },
        )
        return catalog

    return _train


def test_trains_and_saves_a_versioned_keras_model(train, data_root):
    catalog = train(model={"latent_dim": 2, "hidden_units": [64]})
    model = catalog.load("vae_model")
    history = catalog.load("training_history")
    assert model.latent_dim == 2 and model.image_shape == (8, 8, 1)
    assert history["epoch"] == [1, 2, 3]
    for name in (
        "loss",
        "reconstruction",
        "kl",
        "val_loss",
        "val_reconstruction",
        "val_kl",
    ):
        assert len(history[name]) == 3 and all(np.isfinite(history[name]))
    assert history["loss"][-1] < history["loss"][0]
    saved = list((data_root / "data/06_models/vae.keras").glob("*/vae.keras"))
    assert len(saved) == 1
    assert not (data_root / "data/06_models/checkpoints").exists() or not any(
        (data_root / "data/06_models/checkpoints").iterdir()
    )


class FullDiskModelDataset(AbstractDataset):
    """A model store that fails at the final save, as a full disk or a lost
    object store does."""

    def __init__(self, **_: object) -> None:
        pass

    def load(self):
        raise DatasetError("nothing saved")

    def save(self, data) -> None:
        raise OSError(28, "No space left on device")

    def _describe(self) -> dict:
        return {}


def test_a_failed_final_save_keeps_the_finished_training(
    train, make_catalog, run_pipeline, data_root, caplog
):
    checkpoints = data_root / "data/06_models/checkpoints"
    failing = {"type": f"{__name__}.FullDiskModelDataset"}
    with pytest.raises(DatasetError, match="No space left on device"):
        run_pipeline(
            data_ingestion.create_pipeline() + training.create_pipeline(),
            make_catalog(vae_model=failing),
            {
                "data_ingestion": typed_params(IngestionParams, "data_ingestion"),
                "training": typed_params(
                    TrainingParams,
                    "training",
                    epochs=3,
                    checkpoint_dir=str(checkpoints),
                ),
            },
        )
    assert len(list(checkpoints.glob("*/finished.keras"))) == 1

    caplog.set_level(logging.INFO)
    caplog.clear()
    catalog = train()  # the same command again: ingests again, same content
    assert "finished in an earlier run whose model was not saved" in caplog.text
    assert "epoch 1/" not in caplog.text  # not trained again
    assert catalog.load("training_history")["epoch"] == [1, 2, 3]
    assert catalog.load("vae_model").image_shape == (8, 8, 1)
    assert not any(checkpoints.iterdir())  # released once the model was saved


def test_same_seed_same_weights(train):
    options = {"model": {"latent_dim": 2, "hidden_units": [32]}, "seed": 11}
    first = train(**options).load("vae_model")
    second = train(**options).load("vae_model")
    other = train(**{**options, "seed": 12}).load("vae_model")
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(first.get_weights(), other.get_weights(), strict=True)
    )


@pytest.mark.parametrize("layers", [1, 2])
def test_mixed_bfloat16_trains_in_bfloat16_and_saves_a_float32_model(train, layers):
    options = {
        "model": {"latent_dim": 2, "hidden_units": [32], "stochastic_layers": layers},
        "epochs": 4,
    }
    # Both runs save into one folder: read each before the next one saves.
    reference = train(**options).load("training_history")
    mixed = train(**options, precision="mixed_bfloat16")
    history = mixed.load("training_history")
    model = mixed.load("vae_model")
    dtypes = {layer.dtype_policy.name for layer in model.encoder.layers}
    assert dtypes == {"float32"}  # what is saved and scored computes in float32
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert history["loss"] != reference["loss"]  # it did compute in bfloat16
    assert history["loss"][-1] < history["loss"][0] - 1  # it learns ...
    # ... about as well as in float32 (nats per image, of about 30)
    assert history["val_loss"][-1] == pytest.approx(reference["val_loss"][-1], abs=1.5)


def test_under_mixed_bfloat16_only_the_hidden_layers_compute_in_bfloat16():
    params = typed_params(
        TrainingParams,
        "training",
        precision="mixed_bfloat16",
        model={"stochastic_layers": 2, "hidden_units": [16], "decoder_units": [16]},
    )
    model = build_model((8, 8, 1), params, params.precision)
    policies = {
        f"{sub.name}.{layer.name}": layer.dtype_policy.name
        for sub in (
            model.encoder,
            model.features_z1,
            model.encoder_z1,
            model.prior_z1,
            model.decoder,
        )
        for layer in sub.layers
        if layer.weights
    }
    bfloat16 = {name for name, policy in policies.items() if policy != "float32"}
    assert bfloat16 == {
        "encoder.hidden_0",
        "features_z1.hidden_0",
        "encoder_z1.z2_hidden_0",
        "encoder_z1.joint_hidden_0",
        "prior_z1.hidden_0",
        "decoder.hidden_0",
    }
    outputs = model(np.zeros((2, 8, 8, 1), np.float32))
    for name in ("z_mean", "z_log_var", "z", "z1", "decoded"):
        assert outputs[name].dtype == "float32", name


def test_nan_loss_fails_clearly_and_saves_no_model(train, data_root):
    with pytest.raises(
        TrainingError, match=r"training diverged: \w*loss became (nan|inf)"
    ):
        train(learning_rate=1e12, epochs=4)
    assert written_files(data_root / "data" / "06_models") == []
    assert written_files(data_root / "data" / "08_reporting") == []


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from vae_pipeline.datasets import ShardedArrayDataset
    from vae_pipeline.train import train_vae
    from vae_pipeline.pipelines.training.params import TrainingParams

    root = sys.argv[1]
    rng = np.random.default_rng(0)
    for name, count in (("train", 300), ("validation", 90)):
        ShardedArrayDataset(filepath=f"{root}/{name}").save(
            rng.random((count, 8, 8, 1)).astype("float32")
        )
    model, history = train_vae(
        ShardedArrayDataset(filepath=f"{root}/train").load(),
        ShardedArrayDataset(filepath=f"{root}/validation").load(),
        TrainingParams.model_validate_json(sys.argv[2]),
    )
    print(json.dumps({
        "replicas": model.distribute_strategy.num_replicas_in_sync,
        "loss": history["loss"],
        "reconstruction": history["reconstruction"],
        "kl": history["kl"],
    }))
    """
)


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            MIRRORED_SCRIPT,
            str(tmp_path),
            typed_params(
                TrainingParams,
                "training",
                epochs=2,
                strategy="mirrored",
                checkpoint_dir=str(tmp_path / "ckpt"),
            ).model_dump_json(),
        ],
        cwd=tmp_path,  # not the repository, whose conf/logging.yml writes info.log
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    for loss, reconstruction, kl in zip(
        report["loss"], report["reconstruction"], report["kl"], strict=True
    ):
        assert loss == pytest.approx(reconstruction + kl, rel=1e-3)


def _epochs_logged(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"epoch (\d+)/\d+ loss=", output)]


def test_killed_run_resumes_from_its_last_epoch(project_copy):
    """Killed while training, the same command resumes, although it ingests the
    data again into a new version first (the checkpoint follows the content)."""
    params = (
        "training.epochs=8,training.batch_size=32,training.early_stopping_patience=8"
    )
    pipelines = ("--pipelines", "data_ingestion,training")
    command = [
        str(Path(sys.executable).with_name("kedro")),
        "run",
        *pipelines,
        "--params",
        params,
    ]
    process = subprocess.Popen(
        command,
        cwd=project_copy,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),  # the project folder's own MLflow store, like kedro_cli
    )
    seen = ""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen += line
        if re.search(r"epoch 3/8 loss=", line) or not line:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _epochs_logged(seen)[-1] == 3, seen[-2000:]
    checkpoints = project_copy / "data/06_models/checkpoints"
    assert any(checkpoints.rglob("latest.weights.h5"))

    # Another configuration does not pick up that checkpoint ...
    other = kedro_cli(
        project_copy,
        "run",
        "--pipelines",
        "training",
        "--params",
        "training.epochs=2,training.seed=5",
    )
    assert other.returncode == 0, other.stderr[-2000:]
    assert "Resuming" not in other.stdout + other.stderr
    assert _epochs_logged(other.stdout + other.stderr) == [1, 2]
    # ... and marks the MLflow run of the killed process KILLED.
    client = MlflowClient(f"sqlite:///{project_copy / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("vae_pipeline").experiment_id],
        order_by=["attributes.start_time ASC"],
    )
    assert [run.info.status for run in runs] == ["KILLED", "FINISHED"]

    # ... while the same command resumes after the last completed epoch.
    resumed = kedro_cli(project_copy, "run", *pipelines, "--params", params)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-2000:]
    assert "Resuming training from the checkpoint" in output
    assert _epochs_logged(output)[0] in (3, 4)  # 4 unless killed mid-checkpoint
    assert _epochs_logged(output)[-1] == 8
    histories = sorted(
        (project_copy / "data/08_reporting/training_history.json").glob("*/*")
    )
    assert json.loads(histories[-1].read_text())["epoch"] == list(range(1, 9))
    assert not any(checkpoints.iterdir())


def tiny_splits(tmp_path: Path) -> list:
    """Saved training (64) and validation (32) splits of random 4x4 images."""
    from vae_pipeline.datasets import ShardedArrayDataset

    rng = np.random.default_rng(0)
    splits = []
    for name, count in (("train", 64), ("validation", 32)):
        dataset = ShardedArrayDataset(filepath=str(tmp_path / name))
        dataset.save(rng.random((count, 4, 4, 1)).astype(np.float32))
        splits.append(dataset.load())
    return splits


def test_resumes_from_the_previous_checkpoint_when_the_latest_is_torn(
    monkeypatch, tmp_path
):
    from vae_pipeline import train
    from vae_pipeline.models.callbacks import EpochLogger

    splits = tiny_splits(tmp_path)
    params = typed_params(
        TrainingParams,
        "training",
        epochs=5,
        batch_size=16,
        min_steps_per_epoch=0,
        checkpoint_dir=str(tmp_path / "ckpt"),
        model={"hidden_units": [8], "latent_dim": 2},
    )

    class Crash(Exception):
        pass

    original = EpochLogger.on_epoch_end

    def crash_at_third_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 2:  # checkpoints of epochs 1 and 2 exist (latest and previous)
            raise Crash

    monkeypatch.setattr(EpochLogger, "on_epoch_end", crash_at_third_epoch)
    with pytest.raises(Crash):
        train.train_vae(*splits, params)
    latest = next((tmp_path / "ckpt").rglob("latest.weights.h5"))
    latest.write_bytes(latest.read_bytes()[:100])  # torn by a kill mid-write
    monkeypatch.setattr(EpochLogger, "on_epoch_end", original)
    _, history = train.train_vae(*splits, params)
    assert history["epoch"] == [1, 2, 3, 4, 5]
    assert not any((tmp_path / "ckpt").iterdir())


def _splits(root: Path, seed: int, version: str = "2026-11-25T00.00.00.000Z") -> list:
    """Train and validation splits written as one data version, as a run does."""
    rng = np.random.default_rng(seed)
    splits = []
    for name, count in (("train", 64), ("validation", 32)):
        versioned = ShardedArrayDataset(
            filepath=str(root / name), version=Version(None, version)
        )
        versioned.save(rng.random((count, 4, 4, 1)).astype(np.float32))
        splits.append(versioned.load())
    return splits


def test_the_checkpoint_fingerprint_follows_the_data_content(tmp_path):
    params = typed_params(TrainingParams, "training")
    first = _splits(tmp_path / "first", seed=0)
    again = _splits(tmp_path / "again", seed=0)  # same content, other folder
    other = _splits(tmp_path / "other", seed=1)
    assert first[0].directory != again[0].directory
    assert run_fingerprint(params, *first) == run_fingerprint(params, *again)
    assert run_fingerprint(params, *first) != run_fingerprint(params, *other)


def test_a_second_run_of_the_same_configuration_at_once_is_refused(tmp_path):
    splits = _splits(tmp_path, seed=0)
    params = typed_params(
        TrainingParams, "training", epochs=1, checkpoint_dir=str(tmp_path / "ckpt")
    )
    run_dir = tmp_path / "ckpt" / run_fingerprint(params, *splits)
    with FileLock(run_dir / LOCK_FILE, parameter="test"):  # the first run
        with pytest.raises(TrainingError, match=r"another training run \(pid \d+\)"):
            train_vae(*splits, params)
        assert not (run_dir / "history.csv").exists()
    model, history = train_vae(*splits, params)  # once it is done
    assert history["epoch"] == [1]


def test_splits_of_different_data_versions_are_refused(tmp_path):
    """As after a run that died between writing the train and validation splits."""
    train, _ = _splits(tmp_path, seed=0, version="2026-11-25T00.00.00.000Z")
    _, validation = _splits(tmp_path, seed=1, version="2026-11-26T00.00.00.000Z")
    params = typed_params(
        TrainingParams, "training", epochs=1, checkpoint_dir=str(tmp_path / "ckpt")
    )
    with pytest.raises(
        InputDataError,
        match=r"splits of different data versions \(train_split "
        r"2026-11-25T00.00.00.000Z, validation_split 2026-11-26T00.00.00.000Z\)",
    ):
        train_vae(train, validation, params)
    assert not (tmp_path / "ckpt").exists()


def test_checkpoints_abandoned_for_the_retention_period_are_removed(tmp_path):
    from vae_pipeline import train

    old, recent, held = (tmp_path / name for name in ("old", "recent", "held"))
    for folder in (old, recent, held):
        (folder / "backup").mkdir(parents=True)
        (folder / "backup" / "latest.weights.h5").write_bytes(b"weights")
    for path in (held, old, held / "backup", old / "backup"):
        os.utime(path, (0, 0))
    for path in (*held.rglob("*"), *old.rglob("*")):
        os.utime(path, (0, 0))
    with FileLock(held / train.LOCK_FILE, parameter="p"):  # a live run holds it
        os.utime(held / train.LOCK_FILE, (0, 0))
        train.remove_abandoned_checkpoints(tmp_path, older_than_days=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held", "recent"]


def test_the_cosine_schedule_ends_at_the_final_rate_and_excludes_plateau_halving():
    from pydantic import ValidationError

    from vae_pipeline.train import learning_rate

    params = typed_params(
        TrainingParams,
        "training",
        epochs=4,
        learning_rate=1e-3,
        learning_rate_schedule="cosine",
        final_learning_rate=1e-5,
    )
    schedule = learning_rate(params, steps_per_epoch=10)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(20)) == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-4)
    assert float(schedule(40)) == pytest.approx(1e-5, rel=1e-4)
    assert learning_rate(typed_params(TrainingParams, "training"), 10) == 0.003
    with pytest.raises(ValidationError, match="reduce_lr_patience must be 0"):
        typed_params(
            TrainingParams,
            "training",
            learning_rate_schedule="cosine",
            reduce_lr_patience=2,
        )


@pytest.mark.parametrize(
    ("min_steps", "steps_per_execution", "plan"),
    [(5, 3, (6, 3)), (0, 3, (4, 2)), (5, 20, (5, 5)), (0, 20, (4, 4))],
)
def test_an_epoch_trains_the_steps_it_reports(
    tmp_path, min_steps, steps_per_execution, plan
):
    """The node trains on the split repeated without end, and Keras runs every
    execution whole there: an epoch of 5 steps (the 4 batches repeated to
    min_steps_per_epoch) at 3 per execution would train 6 and report 5. The node
    makes its executions of one size and rounds the epoch up to them, so what it
    reports is what it trained, and no more than one step per execution over."""
    from vae_pipeline import train

    splits = tiny_splits(tmp_path)
    params = typed_params(
        TrainingParams,
        "training",
        epochs=2,
        batch_size=16,  # 4 batches
        min_steps_per_epoch=min_steps,
        steps_per_execution=steps_per_execution,
        checkpoint_dir=str(tmp_path / "ckpt"),
        model={"hidden_units": [8], "latent_dim": 2},
    )
    assert train.epoch_plan(params, 4) == plan
    model, history = train.train_vae(*splits, params)
    assert history["epoch"] == [1, 2]
    assert int(model.optimizer.iterations.numpy()) == 2 * plan[0]


def test_a_large_split_makes_whole_executions_of_one_size():
    from vae_pipeline import train

    params = typed_params(TrainingParams, "training", steps_per_execution=20)
    assert train.epoch_plan(params, 196) == (200, 20)
    assert train.epoch_plan(params, 201) == (209, 19)
    assert train.epoch_plan(params, 25) == (26, 13)  # the shipped 25 minimum


def test_the_training_step_is_traced_once(monkeypatch, tmp_path):
    """An optimizer that creates its variables inside the first traced step makes
    TensorFlow trace the step a second time: on a small split that is a good
    part of the run. The node builds the optimizer before fitting."""
    from vae_pipeline import train
    from vae_pipeline.models import VAE

    traces = []
    original = VAE.train_step

    def counted(self, data):
        traces.append(1)
        return original(self, data)

    monkeypatch.setattr(VAE, "train_step", counted)
    params = typed_params(
        TrainingParams,
        "training",
        epochs=2,
        batch_size=16,
        checkpoint_dir=str(tmp_path / "ckpt"),
        model={"hidden_units": [8], "latent_dim": 2},
    )
    train.train_vae(*tiny_splits(tmp_path), params)
    assert len(traces) == 1
