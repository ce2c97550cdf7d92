"""Nodes of the training pipeline."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from vae_pipeline.cluster import task_role
from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.models import VAE
from vae_pipeline.pipelines.training.params import TrainingParams
from vae_pipeline.tracking.champion import Champion
from vae_pipeline.train import remove_unless_held, run_fingerprint, train_vae

logger = logging.getLogger(__name__)


def train_model(
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    params: TrainingParams,
    champion: Champion,
) -> tuple[VAE, dict[str, list[float]]]:
    """The training node: :func:`train_vae`, whose finished model stays in its
    checkpoint folder until :func:`release_checkpoint` runs, once Kedro has
    saved ``vae_model``.

    The model becomes a version of the registered model whose champion is
    ``champion``; data of another image shape is refused before training.

    Raises:
        InputDataError: The champion takes images of another shape.
    """
    champion.check_takes(train_split.image_shape, what="the training data")
    return train_vae(train_split, validation_split, params, keep_until_released=True)


def release_checkpoint(
    vae_model: VAE,
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    params: TrainingParams,
) -> None:
    """Remove the checkpoint folder of the training of ``vae_model``, which Kedro
    has saved by now (the node takes the saved model as input to run after it).

    Args:
        vae_model: The saved model (only its being saved matters).
        train_split: Its training images.
        validation_split: Its validation images.
        params: Training parameters (with the data, the checkpoint's name).
    """
    del vae_model
    if not task_role().is_chief:
        # A worker's own folder went when its training ended; the chief's is
        # the chief's to remove (it may still be reading it).
        return
    run_dir = Path(params.checkpoint_dir) / run_fingerprint(
        params, train_split, validation_split
    )
    if run_dir.is_dir():
        # Under its lock: another run of the same configuration may be loading
        # the finished model; that run releases it after its own save.
        remove_unless_held(run_dir)


def metric_histories(
    history: dict[str, list[float]],
) -> dict[str, list[dict[str, float]]]:
    """Per-epoch history in the form of kedro-mlflow's metrics history dataset.

    Args:
        history: ``epoch`` and one list of per-epoch values per metric.

    Returns:
        ``{metric: [{"step": epoch, "value": value}, ...]}``, non-finite values
        left out.
    """
    epochs = history["epoch"]
    return {
        name: [
            {"step": int(epoch), "value": float(value)}
            for epoch, value in zip(epochs, values, strict=True)
            if math.isfinite(value)
        ]
        for name, values in history.items()
        if name != "epoch"
    }
