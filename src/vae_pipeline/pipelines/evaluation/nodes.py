"""Nodes of the evaluation pipeline: latent metrics and figures on the test split."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from vae_pipeline import plotting
from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.models import VAE
from vae_pipeline.models.evaluation import (
    LatentSummary,
    active_units,
    binary_pixels,
    summarize_latents,
    top_kl_dimensions,
)
from vae_pipeline.pipelines.evaluation.params import EvaluationParams
from vae_pipeline.tracking.run_info import flatten


def summarize_test_latents(
    vae_model: VAE, test_split: ShardedArrays, params: EvaluationParams
) -> LatentSummary:
    """Posterior parameters and per-image ELBO terms on the test split.

    Args:
        vae_model: Trained VAE.
        test_split: Held-out test images.
        params: Evaluation parameters (``elbo_samples``, ``seed``).

    Returns:
        The test set's latent summary.
    """
    return summarize_latents(
        vae_model,
        test_split.images(),
        num_samples=params.elbo_samples,
        seed=params.seed,
    )


def _knn_accuracies(
    vae_model: VAE,
    train_split: ShardedArrays,
    test_split: ShardedArrays,
    test_images: np.ndarray,
    test_means: np.ndarray,
    params: EvaluationParams,
) -> dict[str, Any] | None:
    if not (train_split.has_labels and test_split.has_labels):
        return None
    rng = np.random.default_rng(params.seed)
    keep = rng.permutation(train_split.num_examples)[: params.knn_max_train_images]
    train_images, train_labels = train_split.select(keep)
    test_labels = test_split.labels()
    train_means = vae_model.encode(train_images)[0]
    train_pixels = train_images.reshape(len(train_images), -1)
    test_pixels = test_images.reshape(len(test_images), -1)
    latent_dim = test_means.shape[1]
    pca = PCA(
        n_components=min(latent_dim, *train_pixels.shape), random_state=params.seed
    )
    features = {
        "latent_means": (train_means, test_means),
        "pixels": (train_pixels, test_pixels),
        "pca": (pca.fit_transform(train_pixels), pca.transform(test_pixels)),
    }
    neighbours = min(params.knn_neighbors, len(train_images))
    accuracies = {
        name: float(
            KNeighborsClassifier(n_neighbors=neighbours)
            .fit(train, train_labels)
            .score(test, test_labels)
        )
        for name, (train, test) in features.items()
    }
    return {
        **accuracies,
        "k": neighbours,
        "train_images": len(train_images),
        "pca_components": int(pca.n_components_),
    }


def compute_evaluation_metrics(
    vae_model: VAE,
    test_latents: LatentSummary,
    train_split: ShardedArrays,
    test_split: ShardedArrays,
    params: EvaluationParams,
) -> dict[str, Any]:
    """Negative ELBO, IWAE negative log-likelihood, KL, active units, MSE, kNN.

    With a Bernoulli decoder on pixels that are not all 0 or 1, the importance-
    weighted figure is a cross-entropy, not a log-likelihood, and is named so:
    ``iwae_cross_entropy`` instead of ``iwae_negative_log_likelihood``
    (``binary_pixels`` says which).

    Args:
        vae_model: Trained VAE.
        test_latents: Latent summary of the test split.
        train_split: Training images (kNN classifiers are fitted on them).
        test_split: Held-out test images.
        params: Evaluation parameters.

    Returns:
        JSON-serialisable metrics, all in nats per image where a likelihood.
    """
    images = test_split.images()
    iwae = vae_model.log_likelihood(
        images,
        num_samples=params.iwae_samples,
        batch_size=params.iwae_batch_size,
        seed=params.seed,
    )
    count, variances = active_units(
        test_latents.z_mean, threshold=params.active_unit_threshold
    )
    reconstructed = vae_model.reconstruct(images)
    binary = binary_pixels(images)
    is_likelihood = binary or vae_model.likelihood == "gaussian"
    iwae_name = (
        "iwae_negative_log_likelihood" if is_likelihood else "iwae_cross_entropy"
    )
    return {
        "test_images": len(images),
        "binary_pixels": binary,
        "negative_elbo": float(test_latents.negative_elbo.mean()),
        "reconstruction": float(test_latents.reconstruction_nll.mean()),
        "kl": float(test_latents.kl.mean()),
        "kl_per_dimension": test_latents.kl_per_dimension.mean(axis=0).tolist(),
        iwae_name: float(-iwae.mean()),
        "iwae_samples": params.iwae_samples,
        "active_units": count,
        "active_unit_threshold": params.active_unit_threshold,
        "latent_dim": int(test_latents.z_mean.shape[1]),
        "posterior_mean_variance": variances.tolist(),
        "reconstruction_mse": float(np.mean(np.square(reconstructed - images))),
        "knn_accuracy": _knn_accuracies(
            vae_model, train_split, test_split, images, test_latents.z_mean, params
        ),
    }


def plot_latent_scatter(
    test_latents: LatentSummary, test_split: ShardedArrays
) -> Figure:
    """Test posterior means coloured by label, in the two highest-KL dimensions.

    Args:
        test_latents: Latent summary of the test split.
        test_split: Test images (for their labels).

    Returns:
        The scatter figure.
    """
    if test_latents.z_mean.shape[1] == 1:
        z = np.concatenate([test_latents.z_mean, np.zeros_like(test_latents.z_mean)], 1)
        dims = (0, 1)
    else:
        z = test_latents.z_mean
        dims = top_kl_dimensions(test_latents.kl_per_dimension, 2)
    return plotting.latent_scatter(
        z,
        test_split.labels(),
        dims=dims,
        title=f"Test set in latent space ({len(z)} images, highest-KL dimensions)",
        label_names=test_split.label_names,
    )


def plot_latent_distributions(
    test_latents: LatentSummary, test_split: ShardedArrays, params: EvaluationParams
) -> Figure:
    """q(z|x) of a few test images beside the images, against the N(0, 1) prior.

    Args:
        test_latents: Latent summary of the test split.
        test_split: Test images.
        params: Evaluation parameters (``distribution_examples``).

    Returns:
        The figure.
    """
    count = min(params.distribution_examples, test_split.num_examples)
    return plotting.latent_distributions(
        test_split.select(np.arange(count))[0],
        test_latents.z_mean[:count],
        test_latents.z_log_var[:count],
        title="Posterior q(z|x) per latent dimension for test images",
    )


def plot_reconstructions(
    vae_model: VAE, test_split: ShardedArrays, params: EvaluationParams
) -> Figure:
    """Test images above their reconstructions (:meth:`VAE.reconstruct`).

    Args:
        vae_model: Trained VAE.
        test_split: Test images.
        params: Evaluation parameters (``reconstruction_examples``).

    Returns:
        The figure.
    """
    count = min(params.reconstruction_examples, test_split.num_examples)
    originals = test_split.select(np.arange(count))[0]
    reconstructed = vae_model.reconstruct(originals)
    return plotting.reconstructions(
        originals, reconstructed, title="Test images and their reconstructions"
    )


def plot_training_curves(training_history: dict[str, list[float]]) -> Figure:
    """Training and validation loss, reconstruction and KL per epoch.

    Args:
        training_history: Per-epoch history from the training pipeline.

    Returns:
        The figure.
    """
    return plotting.training_curves(training_history, title="VAE training curves")


def metrics_for_tracking(
    evaluation_metrics: dict[str, Any],
) -> dict[str, dict[str, float]]:
    """Evaluation metrics in the form of kedro-mlflow's metrics dataset.

    Args:
        evaluation_metrics: Nested metrics; lists become one metric per index
            (``kl_per_dimension.3``) and dicts one per key
            (``knn_accuracy.latent_means``).

    Returns:
        ``{name: {"step": 0, "value": value}}`` for every finite number.
    """
    return {
        name: {"step": 0, "value": float(value)}
        for name, value in flatten(evaluation_metrics, expand_lists=True).items()
        if isinstance(value, int | float) and np.isfinite(value)
    }
