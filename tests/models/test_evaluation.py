"""The model's estimators (ELBO, importance-weighted likelihood) against exact math."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from tests.conftest import model_options
from vae_pipeline.models import VAE, build_vae
from vae_pipeline.models.evaluation import (
    active_units,
    binary_pixels,
    summarize_latents,
    top_kl_dimensions,
)

PPCA_SHAPE = (2, 3, 1)  # six observed values, as an image


class ProbabilisticPCA:
    """p(z) = N(0, I), p(x|z) = N(W z + mu, sigma^2 I): p(x) known in closed form.

    :meth:`vae` is this model as a project VAE: a linear decoder and an encoder
    that gives the true posterior's mean and marginal variances, exact when the
    latent space has one dimension.
    """

    def __init__(self, latent: int, observed: int = 6, sigma: float = 0.5):
        self.rng = np.random.default_rng(11)  # each test its own draws
        # Columns of W close to parallel: the posterior's dimensions correlate,
        # so a diagonal q has a real gap to close.
        first = self.rng.normal(size=(observed, 1))
        self.w = first + 0.3 * self.rng.normal(size=(observed, latent))
        self.mu = self.rng.normal(size=observed)
        self.sigma = sigma
        self.m_inv = np.linalg.inv(self.w.T @ self.w + sigma**2 * np.eye(latent))

    def sample(self, count: int) -> np.ndarray:
        z = self.rng.normal(size=(count, self.w.shape[1]))
        noise = self.sigma * self.rng.normal(size=(count, len(self.mu)))
        x = z @ self.w.T + self.mu + noise
        return x.reshape(count, *PPCA_SHAPE).astype(np.float32)

    def exact_log_likelihood(self, x: np.ndarray) -> np.ndarray:
        cov = self.w @ self.w.T + self.sigma**2 * np.eye(len(self.mu))
        diff = x.reshape(len(x), -1) - self.mu
        _, log_det = np.linalg.slogdet(cov)
        mahalanobis = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        return -0.5 * (len(self.mu) * math.log(2 * math.pi) + log_det + mahalanobis)

    def vae(self) -> VAE:
        latent = self.w.shape[1]
        image = keras.Input(PPCA_SHAPE)
        flat = keras.layers.Flatten()(image)
        mean_layer = keras.layers.Dense(latent)
        log_var_layer = keras.layers.Dense(latent)
        encoder = keras.Model(image, [mean_layer(flat), log_var_layer(flat)])
        gain = self.w @ self.m_inv.T  # mean = (x - mu) @ gain
        mean_layer.set_weights([gain, -self.mu @ gain])
        variance = np.diag(self.sigma**2 * self.m_inv)
        log_var_layer.set_weights([np.zeros_like(gain), np.log(variance)])
        z = keras.Input((latent,))
        linear = keras.layers.Dense(len(self.mu))
        decoder = keras.Model(z, keras.layers.Reshape(PPCA_SHAPE)(linear(z)))
        linear.set_weights([self.w.T, self.mu])
        return VAE(
            encoder,
            decoder,
            beta=1.0,
            reconstruction_weight=1.0,
            likelihood="gaussian",
            gaussian_sigma=self.sigma,
            learn_sigma=False,
            prior="standard",
            pseudo_inputs=1,
            objective="elbo",
            train_samples=1,
        )


def test_with_the_exact_posterior_every_estimate_is_the_exact_likelihood():
    ppca = ProbabilisticPCA(latent=1)
    model, x = ppca.vae(), ppca.sample(200)
    exact = ppca.exact_log_likelihood(x)
    for k in (1, 7):  # every importance weight is p(x): any K gives it exactly
        np.testing.assert_allclose(
            model.log_likelihood(x, num_samples=k, seed=k), exact, atol=2e-4
        )
    terms = model.elbo(x, num_samples=1)  # closed-form KL; E_q log p(x|z) sampled
    np.testing.assert_allclose(
        (-(terms["reconstruction"] + terms["kl"])).mean(), exact.mean(), atol=0.05
    )


def test_iwae_converges_to_the_exact_ppca_likelihood():
    ppca = ProbabilisticPCA(latent=2)
    x = ppca.sample(300)
    assert_iwae_closes_the_gap(ppca.vae(), x, ppca.exact_log_likelihood(x).mean())


def assert_iwae_closes_the_gap(model: VAE, x: np.ndarray, exact: float) -> None:
    """A diagonal q leaves an ELBO gap to the exact mean log p(x) that the
    importance-weighted estimate closes as K grows."""
    gaps = {
        k: exact - model.log_likelihood(x, num_samples=k, seed=3).mean()
        for k in (1, 10, 100, 1000)
    }
    assert gaps[1] > 0.05  # the diagonal q leaves a real ELBO gap ...
    assert gaps[1] > gaps[10] > gaps[100] > -0.01  # ... that shrinks with K
    assert abs(gaps[1000]) < 0.01  # and is gone at K = 1000 (nats per point)


def test_batching_does_not_change_the_estimate():
    ppca = ProbabilisticPCA(latent=2)
    model, x = ppca.vae(), ppca.sample(50)
    a = model.log_likelihood(x, num_samples=64, batch_size=50, seed=1)
    b = model.log_likelihood(x, num_samples=64, batch_size=7, seed=1)
    np.testing.assert_allclose(a.mean(), b.mean(), atol=0.05)


def _binary_images(count: int, shape=(8, 8, 1), *, seed: int = 11) -> np.ndarray:
    probabilities = np.linspace(0.1, 0.9, math.prod(shape)).reshape(1, *shape)
    draws = np.random.default_rng(seed).random((count, *shape))
    return (draws < probabilities).astype(np.float32)


def test_vamp_prior_likelihood_matches_quadrature_over_a_1d_latent():
    """log p(x) = log integral p(x|z) p(z) dz, on a grid, for a 1-D latent space."""
    keras.utils.set_random_seed(0)  # the same initial weights in every run
    model = build_vae(
        (8, 8, 1),
        seed=0,
        **model_options(latent_dim=1, hidden_units=[16], prior="vamp", pseudo_inputs=5),
    )
    # One posterior variance for every input, pseudo-inputs included: q(z|x) and
    # each prior component then have equal tails, so the importance weights have
    # finite variance and K = 20,000 pins the estimate down. (A q narrower than
    # the prior, as a random encoder can give, makes that variance infinite.)
    log_var = model.encoder.get_layer("z_log_var")
    kernel, bias = log_var.get_weights()
    log_var.set_weights([np.zeros_like(kernel), np.full_like(bias, 0.3)])
    x = _binary_images(6)
    grid = np.linspace(-12, 12, 4001, dtype=np.float32)[:, np.newaxis]
    log_prior = keras.ops.convert_to_numpy(
        model.prior_log_density(grid, model.prior_components())
    )
    exact = []
    for image in x:
        log_joint = log_prior + model.conditional_log_likelihood(
            np.repeat(image[np.newaxis], len(grid), axis=0), grid
        )
        peak = log_joint.max()
        exact.append(
            peak + math.log(np.trapezoid(np.exp(log_joint - peak), grid[:, 0]))
        )
    estimate = model.log_likelihood(x, num_samples=20_000, seed=4)
    np.testing.assert_allclose(estimate, exact, atol=0.02)


@pytest.fixture(scope="module")
def trained_vae():
    keras.utils.set_random_seed(0)
    images = _binary_images(512)
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
        k: model.log_likelihood(images, num_samples=k, seed=2).mean()
        for k in (1, 5, 50)
    }
    elbo = -summary.negative_elbo.mean()
    assert estimates[1] == pytest.approx(elbo, abs=0.3)  # K = 1 is the ELBO
    assert elbo <= estimates[5] + 0.05 <= estimates[50] + 0.1


def test_binary_pixels_tells_a_likelihood_from_a_cross_entropy():
    assert binary_pixels(_binary_images(4))
    assert not binary_pixels(np.full((1, 2, 2, 1), 0.5, np.float32))


def test_active_units_and_top_kl_dimensions():
    rng = np.random.default_rng(11)
    z_mean = np.column_stack(
        [rng.normal(0, 1, 500), rng.normal(0, 0.05, 500), rng.normal(0, 0.5, 500)]
    )
    count, variances = active_units(z_mean, threshold=0.01)
    assert count == 2 and variances[1] < 0.01 < variances[2]
    kl = np.array([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]])
    assert top_kl_dimensions(kl, 2) == (1, 2)
    assert top_kl_dimensions(kl.mean(axis=0), 5) == (1, 2, 0)
