"""Evaluation of a trained VAE: ELBO terms, active units, the top latent dimensions.

All estimates are per image, in nats, and come from the model's own methods
(:meth:`VAE.elbo`, :meth:`VAE.log_likelihood`), so that the pipeline, the served
model and the benchmarks report the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae_pipeline.models.vae import VAE


@dataclass(frozen=True)
class LatentSummary:
    """Per-image ELBO terms and posterior parameters over a set of images."""

    z_mean: np.ndarray
    z_log_var: np.ndarray
    reconstruction_nll: np.ndarray
    kl: np.ndarray  # KL(q(z|x) || p(z)) per image, under the model's prior
    kl_per_dimension: np.ndarray  # per image and dimension, against N(0, 1)

    @property
    def negative_elbo(self) -> np.ndarray:
        return self.reconstruction_nll + self.kl


def summarize_latents(
    model: VAE,
    images: np.ndarray,
    *,
    num_samples: int = 1,
    seed: int = 0,
    batch_size: int = 1000,
) -> LatentSummary:
    """Posterior parameters, KL and E_q[-log p(x|z)] per image (:meth:`VAE.elbo`).

    The reconstruction term (and, for a VampPrior, the KL) is averaged over
    ``num_samples`` draws of z.
    """
    terms = model.elbo(
        images, num_samples=num_samples, seed=seed, batch_size=batch_size
    )
    return LatentSummary(
        terms["z_mean"],
        terms["z_log_var"],
        terms["reconstruction"],
        terms["kl"],
        terms["kl_per_dimension"],
    )


def binary_pixels(images: np.ndarray) -> bool:
    """Whether every pixel is exactly 0 or 1: only then is a Bernoulli decoder's
    figure a log-likelihood; on grey pixels it is a cross-entropy."""
    return bool(np.all((images == 0) | (images == 1)))


def active_units(z_mean: np.ndarray, *, threshold: float) -> tuple[int, np.ndarray]:
    """Dimensions whose posterior mean varies over the data (Burda et al. 2016).

    Dimension j is active when ``Var_x(E_q[z_j | x]) > threshold`` (0.01 in the
    paper). The criterion says nothing of how much information a dimension
    carries: read it beside the KL per dimension, which can be small (a few
    hundredths of a nat) for a dimension that just passes the threshold.

    Returns:
        The number of active dimensions and each dimension's variance of the mean.
    """
    variances = np.var(z_mean, axis=0)
    return int(np.sum(variances > threshold)), variances


def top_kl_dimensions(kl: np.ndarray, count: int = 2) -> tuple[int, ...]:
    """Latent dimensions with the largest mean KL, largest first.

    Args:
        kl: KL per image and dimension (N, D), or mean KL per dimension (D,).
        count: How many dimensions (fewer when the latent space is smaller).

    Returns:
        Indices of the dimensions.
    """
    per_dimension = kl.mean(axis=0) if kl.ndim == 2 else kl  # noqa: PLR2004
    order = np.argsort(-per_dimension, kind="stable")
    return tuple(int(i) for i in order[: min(count, len(order))])
