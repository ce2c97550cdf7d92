"""Nodes of the generation pipeline: samples, the latent manifold, interpolation."""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vae_pipeline import plotting
from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.errors import InputDataError
from vae_pipeline.models import VAE
from vae_pipeline.models.evaluation import (
    summarize_latents,
    top_kl_dimensions,
)
from vae_pipeline.pipelines.generation.params import GenerationParams


def rank_latent_dimensions(vae_model: VAE, test_split: ShardedArrays) -> dict[str, Any]:
    """Mean KL per latent dimension on the test split, and the dimensions by KL.

    Args:
        vae_model: Trained VAE.
        test_split: Held-out test images.

    Returns:
        ``kl_per_dimension`` and ``dimensions`` (highest KL first).
    """
    summary = summarize_latents(vae_model, test_split.images())
    kl = summary.kl_per_dimension.mean(axis=0)
    return {
        "kl_per_dimension": kl.tolist(),
        "dimensions": list(top_kl_dimensions(kl, len(kl))),
    }


def generate_prior_samples(
    vae_model: VAE, params: GenerationParams
) -> tuple[np.ndarray, Figure]:
    """Decode draws from the model's prior (N(0, I) or its VampPrior) into images.

    Args:
        vae_model: Trained VAE.
        params: Generation parameters (``prior_grid``, ``seed``).

    Returns:
        The generated images (mean of p(x|z)) and a grid figure of them.
    """
    count = params.prior_grid**2
    images = vae_model.decode(vae_model.sample_prior(count, seed=params.seed))
    prior = "N(0, I)" if vae_model.prior == "standard" else "the VampPrior"
    figure = plotting.image_grid(
        images,
        rows=params.prior_grid,
        cols=params.prior_grid,
        title=f"{count} images decoded from z ~ {prior}",
    )
    return images, figure


def draw_latent_manifold(
    vae_model: VAE, latent_ranking: dict[str, Any], params: GenerationParams
) -> Figure:
    """The 2-D latent manifold: decoded grid over Gaussian quantiles.

    The two highest-KL dimensions sweep the inverse normal CDF of evenly spaced
    probabilities; every other dimension stays at 0.

    Args:
        vae_model: Trained VAE.
        latent_ranking: Output of :func:`rank_latent_dimensions`.
        params: Generation parameters (``manifold_size``, ``manifold_quantiles``).

    Returns:
        The manifold figure, axes labelled with the latent coordinates.
    """
    size = params.manifold_size
    low, high = params.manifold_quantiles
    values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(low, high, size)])
    dims = latent_ranking["dimensions"]
    horizontal, vertical = dims[0], dims[1] if len(dims) > 1 else None
    z = np.zeros((size, size, vae_model.latent_dim), np.float32)
    z[:, :, horizontal] = values[np.newaxis, :]
    if vertical is not None:
        z[:, :, vertical] = values[::-1, np.newaxis]  # larger values at the top
    images = vae_model.decode(z.reshape(size * size, -1))
    return plotting.image_grid(
        images,
        rows=size,
        cols=size,
        title="Latent manifold (other dimensions at 0)",
        xlabel=f"z[{horizontal}] (Gaussian quantiles)",
        ylabel=f"z[{vertical}] (Gaussian quantiles)" if vertical is not None else None,
        xticks=values,
        yticks=values[::-1] if vertical is not None else None,
    )


def interpolate_observations(
    vae_model: VAE, test_split: ShardedArrays, params: GenerationParams
) -> Figure:
    """Decode evenly spaced points between the latent means of two test images.

    Args:
        vae_model: Trained VAE.
        test_split: Held-out test images.
        params: Generation parameters (``interpolation_pair``, ``interpolation_steps``).

    Returns:
        A strip: the two originals at the ends, the decoded path between them.
    """
    first, second = params.interpolation_pair
    if max(first, second) >= test_split.num_examples:
        raise InputDataError(
            f"generation.interpolation_pair={params.interpolation_pair}: the test "
            f"split has {test_split.num_examples} images"
        )
    images = test_split.images()[[first, second]]
    z_mean = vae_model.encode(images)[0]
    weights = np.linspace(0.0, 1.0, params.interpolation_steps)[:, np.newaxis]
    path = (1 - weights) * z_mean[0] + weights * z_mean[1]
    decoded = vae_model.decode(path)
    strip = np.concatenate([images[:1], decoded, images[1:]])
    return plotting.interpolation_strip(
        strip,
        title=(
            f"Interpolation between test images {first} and {second} "
            "(ends: originals; between: decoded latent path)"
        ),
    )
