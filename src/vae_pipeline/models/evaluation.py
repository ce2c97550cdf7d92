"""Evaluation of a trained VAE: ELBO terms, importance-weighted likelihood, latents.

All estimates are per image, in nats. The importance-weighted bound (IWAE, Burda et
al. 2016) with K samples,

    log p(x) >= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x),

is the ELBO for K = 1 and tightens to log p(x) as K grows. It is computed in image
batches and sample chunks with a running log-sum-exp, so memory stays bounded for
any K.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from vae_pipeline.models.vae import VAE, kl_per_dimension

LOG_2PI = math.log(2.0 * math.pi)

Encoder = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
LogLikelihood = Callable[[np.ndarray, np.ndarray], np.ndarray]


def diagonal_gaussian_log_density(
    z: np.ndarray, mean: np.ndarray, log_var: np.ndarray
) -> np.ndarray:
    """log N(z | mean, diag(exp(log_var))), summed over the last axis."""
    return -0.5 * np.sum(
        LOG_2PI + log_var + np.square(z - mean) * np.exp(-log_var), axis=-1
    )


def importance_weighted_log_likelihood(
    images: np.ndarray,
    *,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    num_samples: int,
    batch_size: int = 100,
    sample_chunk: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """IWAE estimate of log p(x) for each image.

    Args:
        images: Images, first axis the examples.
        encode: ``images -> (mean, log_var)`` of q(z|x), each (n, latent_dim).
        log_likelihood: ``(images, z) -> log p(x|z)``, both with n rows.
        num_samples: K, the importance samples per image.
        batch_size: Images per batch.
        sample_chunk: Samples drawn at once per image (bounds memory with K).
        seed: Seed of the samples.

    Returns:
        The estimate for each image, shape (N,).
    """
    seed_generator = keras.random.SeedGenerator(seed)
    estimates = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        mean, log_var = (np.asarray(a, dtype=np.float64) for a in encode(x))
        n, latent_dim = mean.shape
        running = np.full(n, -np.inf)
        for drawn in range(0, num_samples, sample_chunk):
            k = min(sample_chunk, num_samples - drawn)
            noise = ops.convert_to_numpy(
                keras.random.normal((k, n, latent_dim), seed=seed_generator)
            ).astype(np.float64)
            z = mean + np.exp(0.5 * log_var) * noise  # (k, n, d)
            x_repeated = np.broadcast_to(x, (k, *x.shape)).reshape(-1, *x.shape[1:])
            log_px_z = np.asarray(
                log_likelihood(
                    x_repeated, z.reshape(-1, latent_dim).astype(np.float32)
                ),
                dtype=np.float64,
            ).reshape(k, n)
            log_weights = (
                log_px_z
                + diagonal_gaussian_log_density(z, 0.0, np.zeros_like(log_var))
                - diagonal_gaussian_log_density(z, mean, log_var)
            )
            running = np.logaddexp(running, _logsumexp(log_weights, axis=0))
        estimates.append(running - math.log(num_samples))
    return np.concatenate(estimates)


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    peak = np.max(values, axis=axis, keepdims=True)
    return np.squeeze(peak, axis) + np.log(np.sum(np.exp(values - peak), axis=axis))


def vae_encoder(model: VAE, *, batch_size: int = 1000) -> Encoder:
    """The VAE's q(z|x) as an :data:`Encoder`."""

    def encode(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return model.encode(images, batch_size=batch_size)

    return encode


def vae_log_likelihood(model: VAE, *, batch_size: int = 1000) -> LogLikelihood:
    """The VAE's log p(x|z) as a :data:`LogLikelihood`."""

    def log_likelihood(images: np.ndarray, z: np.ndarray) -> np.ndarray:
        return model.conditional_log_likelihood(images, z, batch_size=batch_size)

    return log_likelihood


@dataclass(frozen=True)
class LatentSummary:
    """Per-image ELBO terms and posterior parameters over a set of images."""

    z_mean: np.ndarray
    z_log_var: np.ndarray
    reconstruction_nll: np.ndarray
    kl: np.ndarray  # per image and dimension

    @property
    def negative_elbo(self) -> np.ndarray:
        return self.reconstruction_nll + self.kl.sum(axis=1)


def summarize_latents(
    model: VAE,
    images: np.ndarray,
    *,
    num_samples: int = 1,
    seed: int = 0,
    batch_size: int = 1000,
) -> LatentSummary:
    """Posterior parameters, KL per dimension and E_q[-log p(x|z)] per image.

    The reconstruction term is averaged over ``num_samples`` draws of z.
    """
    mean, log_var = vae_encoder(model, batch_size=batch_size)(images)
    log_likelihood = vae_log_likelihood(model, batch_size=batch_size)
    seed_generator = keras.random.SeedGenerator(seed)
    nll = np.zeros(len(images))
    for _ in range(num_samples):
        noise = ops.convert_to_numpy(
            keras.random.normal(mean.shape, seed=seed_generator)
        )
        z = (mean + np.exp(0.5 * log_var) * noise).astype(np.float32)
        nll -= log_likelihood(images, z)
    kl = ops.convert_to_numpy(kl_per_dimension(mean, log_var))
    return LatentSummary(mean, log_var, nll / num_samples, kl)


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
