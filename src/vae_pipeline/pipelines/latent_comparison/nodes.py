"""Nodes of the latent-space comparison of loss variants."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vae_pipeline import plotting
from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.models import VAE
from vae_pipeline.params import with_overrides
from vae_pipeline.pipelines.training.params import TrainingParams
from vae_pipeline.train import train_vae


def variant_training_params(
    training: TrainingParams, overrides: dict[str, Any], *, variant: str
) -> TrainingParams:
    """A variant's training parameters: ``params:training`` with its overrides.

    Args:
        training: The project's training parameters.
        overrides: The variant's values, e.g. ``{"model": {"beta": 0.0}}``.
        variant: The variant's name (in ``latent_comparison``), for errors.

    Returns:
        The merged, validated parameters.
    """
    return with_overrides(training, overrides, name=f"latent_comparison.{variant}")


def train_variant(
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    training_params: TrainingParams,
) -> tuple[VAE, dict[str, list[float]]]:
    """Train one variant as the training pipeline trains (:func:`train_vae`).

    A node of its own, not ``train_vae`` itself: Kedro reads a node function's
    type hints at every run, and ``train_vae`` can only name ``TrainingParams``
    for type checkers (the training pipeline's package imports its module).
    """
    return train_vae(train_split, validation_split, training_params)


def encode_test_split(vae_model: VAE, test_split: ShardedArrays) -> np.ndarray:
    """Posterior means of the test images.

    Args:
        vae_model: A trained VAE.
        test_split: Held-out test images.

    Returns:
        Array (N, latent_dim).
    """
    return vae_model.encode(test_split.images())[0]


def compare_latent_spaces(
    reconstruction_only: np.ndarray,
    kl_only: np.ndarray,
    full_vae: np.ndarray,
    test_split: ShardedArrays,
) -> Figure:
    """The three variants' latent scatters side by side.

    Args:
        reconstruction_only: Test posterior means of the beta = 0 model.
        kl_only: Test posterior means of the KL-only model.
        full_vae: Test posterior means of the full VAE.
        test_split: Test images (for their labels).

    Returns:
        One figure with three panels.
    """
    return plotting.latent_comparison(
        [
            ("reconstruction loss only (beta = 0)", reconstruction_only),
            ("KL loss only", kl_only),
            ("reconstruction + KL (VAE)", full_vae),
        ],
        test_split.labels(),
        title="Test set in latent space by loss",
        label_names=test_split.label_names,
    )
