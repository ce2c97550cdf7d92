"""Evaluation estimators checked against mathematics."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from tests.conftest import model_options
from vae_pipeline.models import build_vae
from vae_pipeline.models.evaluation import (
    active_units,
    importance_weighted_log_likelihood,
    summarize_latents,
    top_kl_dimensions,
    vae_encoder,
    vae_log_likelihood,
)

RNG = np.random.default_rng(11)


class ProbabilisticPCA:
    """p(z) = N(0, I), p(x|z) = N(W z + mu, sigma^2 I): p(x) known in closed form."""

    def __init__(self, observed: int = 6, latent: int = 2, sigma: float = 0.5):
        self.w = RNG.normal(size=(observed, latent))
        self.mu = RNG.normal(size=observed)
        self.sigma = sigma
        m = self.w.T @ self.w + sigma**2 * np.eye(latent)
        self.m_inv = np.linalg.inv(m)

    def sample(self, count: int) -> np.ndarray:
        z = RNG.normal(size=(count, self.w.shape[1]))
        return (
            z @ self.w.T + self.mu + self.sigma * RNG.normal(size=(count, len(self.mu)))
        )

    def exact_log_likelihood(self, x: np.ndarray) -> np.ndarray:
        cov = self.w @ self.w.T + self.sigma**2 * np.eye(len(self.mu))
        diff = x - self.mu
        _, log_det = np.linalg.slogdet(cov)
        mahalanobis = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        return -0.5 * (len(self.mu) * math.log(2 * math.pi) + log_det + mahalanobis)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A diagonal q: the true posterior's mean and marginal variances only."""
        mean = (x - self.mu) @ self.w @ self.m_inv.T
        variance = np.diag(self.sigma**2 * self.m_inv)
        return mean, np.log(np.broadcast_to(variance, mean.shape))

    def log_likelihood(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        diff = x - (z @ self.w.T + self.mu)
        return -0.5 * np.sum(
            (diff / self.sigma) ** 2 + math.log(2 * math.pi * self.sigma**2), axis=1
        )


def test_iwae_converges_to_the_exact_ppca_likelihood():
    model = ProbabilisticPCA()
    x = model.sample(300)
    exact = model.exact_log_likelihood(x).mean()
    gaps = {}
    for k in (1, 10, 100, 1000):
        estimate = importance_weighted_log_likelihood(
            x,
            encode=model.encode,
            log_likelihood=model.log_likelihood,
            num_samples=k,
            batch_size=64,
            sample_chunk=128,
            seed=3,
        ).mean()
        gaps[k] = exact - estimate
    assert gaps[1] > 0.05  # the diagonal q leaves a real ELBO gap ...
    assert gaps[1] > gaps[10] > gaps[100] > -0.01  # ... that shrinks with K
    assert abs(gaps[1000]) < 0.01  # and is gone at K = 1000 (nats per point)


def test_iwae_batching_does_not_change_the_estimate():
    model = ProbabilisticPCA()
    x = model.sample(50)
    a = importance_weighted_log_likelihood(
        x,
        encode=model.encode,
        log_likelihood=model.log_likelihood,
        num_samples=64,
        batch_size=50,
        sample_chunk=64,
        seed=1,
    )
    b = importance_weighted_log_likelihood(
        x,
        encode=model.encode,
        log_likelihood=model.log_likelihood,
        num_samples=64,
        batch_size=7,
        sample_chunk=5,
        seed=1,
    )
    np.testing.assert_allclose(a.mean(), b.mean(), atol=0.05)


@pytest.fixture(scope="module")
def trained_vae():
    keras.utils.set_random_seed(0)
    images = RNG.random((512, 8, 8, 1)) < np.linspace(0.1, 0.9, 64).reshape(1, 8, 8, 1)
    images = images.astype(np.float32)
    model = build_vae(
        (8, 8, 1), seed=0, **model_options(latent_dim=3, hidden_units=[64])
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(images, epochs=15, batch_size=64, verbose=0)
    return model, images[:200]


def test_iwae_with_k_above_1_is_never_worse_than_the_elbo(trained_vae):
    model, images = trained_vae
    summary = summarize_latents(model, images, num_samples=20, seed=2)
    estimates = {
        k: importance_weighted_log_likelihood(
            images,
            encode=vae_encoder(model),
            log_likelihood=vae_log_likelihood(model),
            num_samples=k,
            seed=2,
        ).mean()
        for k in (1, 5, 50)
    }
    elbo = -summary.negative_elbo.mean()
    assert estimates[1] == pytest.approx(elbo, abs=0.3)  # K = 1 is the ELBO
    assert elbo <= estimates[5] + 0.05 <= estimates[50] + 0.1


def test_active_units_and_top_kl_dimensions():
    z_mean = np.column_stack(
        [RNG.normal(0, 1, 500), RNG.normal(0, 0.05, 500), RNG.normal(0, 0.5, 500)]
    )
    count, variances = active_units(z_mean, threshold=0.01)
    assert count == 2 and variances[1] < 0.01 < variances[2]
    kl = np.array([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]])
    assert top_kl_dimensions(kl, 2) == (1, 2)
    assert top_kl_dimensions(kl.mean(axis=0), 5) == (1, 2, 0)
