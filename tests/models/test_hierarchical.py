"""The two-stochastic-layer VAE against exact math, and as a Keras model."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.conftest import model_options
from tests.models.test_evaluation import _binary_images, assert_iwae_closes_the_gap
from vae_pipeline.models import HierarchicalVAE, build_vae

SHAPE = (2, 3, 1)  # six observed values, as an image


class LinearGaussianHierarchy:
    """p(z2) = N(0, I), p(z1|z2) = N(A z2 + a, s1^2 I), p(x|z1) = N(B z1 + b,
    sigma^2 I): x is Gaussian, so log p(x) has a closed form.

    :meth:`vae` is this model as a :class:`HierarchicalVAE` with linear
    networks: the decoder ignores z2, and the encoders give the true
    posteriors' means and marginal variances (the exact posteriors when each
    layer has one dimension).
    """

    def __init__(self, dims: int, observed: int = 6, sigma: float = 0.4):
        rng = np.random.default_rng(5)
        self.rng = rng
        self.a_matrix = 1.0 + 0.3 * rng.normal(size=(dims, dims))
        self.a_bias = rng.normal(size=dims)
        self.s1 = 0.6
        first = rng.normal(size=(observed, 1))  # close to parallel columns
        self.b_matrix = first + 0.3 * rng.normal(size=(observed, dims))
        self.b_bias = rng.normal(size=observed)
        self.sigma = sigma
        self.dims, self.observed = dims, observed

    def marginal(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of x."""
        a, b = self.a_matrix, self.b_matrix
        z1_cov = a @ a.T + self.s1**2 * np.eye(self.dims)
        cov = b @ z1_cov @ b.T + self.sigma**2 * np.eye(self.observed)
        return b @ self.a_bias + self.b_bias, cov

    def sample(self, count: int) -> np.ndarray:
        z2 = self.rng.normal(size=(count, self.dims))
        z1 = z2 @ self.a_matrix.T + self.a_bias
        z1 += self.s1 * self.rng.normal(size=z1.shape)
        x = z1 @ self.b_matrix.T + self.b_bias
        x += self.sigma * self.rng.normal(size=x.shape)
        return x.reshape(count, *SHAPE).astype(np.float32)

    def exact_log_likelihood(self, x: np.ndarray) -> np.ndarray:
        mean, cov = self.marginal()
        diff = x.reshape(len(x), -1) - mean
        _, log_det = np.linalg.slogdet(cov)
        mahalanobis = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        return -0.5 * (self.observed * math.log(2 * math.pi) + log_det + mahalanobis)

    def vae(self, objective: str = "elbo", train_samples: int = 1) -> HierarchicalVAE:
        d, a, b, s1, sigma = (
            self.dims,
            self.a_matrix,
            self.b_matrix,
            self.s1,
            self.sigma,
        )
        mean, cov = self.marginal()
        # q(z2|x): the posterior of z2 given x, from the joint Gaussian.
        ba = b @ a
        gain2 = np.linalg.solve(cov, ba)  # mean = (x - mean) @ gain2
        var2 = np.diag(np.eye(d) - ba.T @ gain2)
        encoder = _linear_gaussian(
            [keras.Input(SHAPE)], [gain2], -mean @ gain2, np.log(var2)
        )
        # q(z1|x,z2): precision P = I/s1^2 + B^T B/sigma^2.
        p_inv = np.linalg.inv(np.eye(d) / s1**2 + b.T @ b / sigma**2)
        gain_x = b @ p_inv / sigma**2
        gain_z2 = a.T @ p_inv / s1**2
        bias = (self.a_bias / s1**2 - b.T @ self.b_bias / sigma**2) @ p_inv
        features = keras.Input(SHAPE)
        features_z1 = keras.Model(features, keras.layers.Flatten()(features))
        encoder_z1 = _linear_gaussian(
            [keras.Input((self.observed,)), keras.Input((d,))],
            [gain_x, gain_z2],
            bias,
            np.log(np.diag(p_inv)),
        )
        prior_z1 = _linear_gaussian(
            [keras.Input((d,))], [a.T], self.a_bias, np.full(d, 2 * math.log(s1))
        )
        z = keras.Input((2 * d,))
        linear = keras.layers.Dense(self.observed)
        decoder = keras.Model(z, keras.layers.Reshape(SHAPE)(linear(z)))
        linear.set_weights(
            [np.vstack([b.T, np.zeros((d, self.observed))]), self.b_bias]
        )
        return HierarchicalVAE(
            encoder,
            decoder,
            features_z1=features_z1,
            encoder_z1=encoder_z1,
            prior_z1=prior_z1,
            beta=1.0,
            reconstruction_weight=1.0,
            likelihood="gaussian",
            gaussian_sigma=sigma,
            learn_sigma=False,
            prior="standard",
            pseudo_inputs=1,
            objective=objective,
            train_samples=train_samples,
            seed=0,  # Monte Carlo estimates that do not change from run to run
        )


def _linear_gaussian(
    inputs: list, gains: list[np.ndarray], bias: np.ndarray, log_var: np.ndarray
) -> keras.Model:
    """A model whose mean is ``sum_i flat(input_i) @ gain_i + bias`` and whose
    log-variance is the constant ``log_var``."""
    flat = [keras.layers.Flatten()(value) for value in inputs]
    joined = flat[0] if len(flat) == 1 else keras.layers.Concatenate()(flat)
    mean_layer = keras.layers.Dense(len(bias))
    log_var_layer = keras.layers.Dense(len(bias))
    model = keras.Model(inputs, [mean_layer(joined), log_var_layer(joined)])
    kernel = np.vstack(gains)
    mean_layer.set_weights([kernel, bias])
    log_var_layer.set_weights([np.zeros_like(kernel), log_var])
    return model


def test_with_the_exact_posteriors_every_estimate_is_the_exact_likelihood():
    hierarchy = LinearGaussianHierarchy(dims=1)
    model, x = hierarchy.vae(), hierarchy.sample(200)
    exact = hierarchy.exact_log_likelihood(x)
    for k in (1, 7):  # every importance weight is p(x): any K gives it exactly
        np.testing.assert_allclose(
            model.log_likelihood(x, num_samples=k, seed=k), exact, atol=2e-4
        )
    terms = model.elbo(x, num_samples=3)  # log q - log p per draw: exact too
    np.testing.assert_allclose(
        -(terms["reconstruction"] + terms["kl"]), exact, atol=2e-3
    )


def test_iwae_converges_to_the_exact_two_layer_likelihood():
    hierarchy = LinearGaussianHierarchy(dims=2)
    x = hierarchy.sample(300)
    exact = hierarchy.exact_log_likelihood(x).mean()
    assert_iwae_closes_the_gap(hierarchy.vae(), x, exact)


@pytest.mark.parametrize(
    ("objective", "samples", "tolerance"),
    # The IWAE loss takes log p - log q per draw: exact with the exact posteriors.
    # The ELBO's closed-form KLs are exact only on average over the draws.
    [("iwae", 1, 1e-3), ("iwae", 5, 1e-3), ("elbo", 200, 0.01)],
)
def test_the_training_loss_is_the_exact_negative_likelihood(
    objective, samples, tolerance
):
    hierarchy = LinearGaussianHierarchy(dims=1)
    model, x = hierarchy.vae(objective, samples), hierarchy.sample(256)
    model.compile()
    loss = model.evaluate(x, batch_size=256, verbose=0, return_dict=True)["loss"]
    exact = -hierarchy.exact_log_likelihood(x).mean()
    assert loss == pytest.approx(exact, abs=tolerance)


@pytest.mark.parametrize(
    ("prior", "objective"), [("standard", "elbo"), ("vamp", "iwae")]
)
def test_a_two_layer_vae_trains_saves_and_reloads(tmp_path: Path, prior, objective):
    keras.utils.set_random_seed(0)
    images = _binary_images(512)
    model = build_vae(
        (8, 8, 1),
        seed=0,
        **model_options(
            stochastic_layers=2,
            latent_dim=3,
            hidden_units=[32],
            decoder_units=[32],
            prior=prior,
            pseudo_inputs=5,
            objective=objective,
            train_samples=3,
        ),
    )
    assert isinstance(model, HierarchicalVAE)
    assert (model.latent_dim, model.z1_dim) == (3, 3)
    before = model.log_likelihood(images[:100], num_samples=20, seed=1).mean()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(images, epochs=5, batch_size=64, verbose=0)
    after = model.log_likelihood(images[:100], num_samples=20, seed=1).mean()
    assert after > before + 3  # nats per image

    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(reloaded, HierarchicalVAE)
    np.testing.assert_allclose(
        reloaded.log_likelihood(images[:100], num_samples=20, seed=1).mean(), after
    )
    z_mean, _ = reloaded.encode(images[:4])
    assert z_mean.shape == (4, 3)  # the served latent is z2
    assert reloaded.decode(reloaded.sample_prior(5)).shape == (5, 8, 8, 1)
    terms = reloaded.elbo(images[:100], num_samples=4)
    assert terms["kl_per_dimension"].shape == (100, 3)
    assert terms["kl"].mean() > 0  # a Monte Carlo estimate: positive on average


def test_the_log_variances_stay_in_the_papers_range():
    """Hardtanh(-6, 2), as in Tomczak & Welling's code: while KL warm-up weighs the
    prior at 0, nothing else holds them, and unbounded they overflowed to NaN."""
    model = build_vae(
        (8, 8, 1),
        seed=0,
        **model_options(
            stochastic_layers=2, latent_dim=3, hidden_units=[32], decoder_units=[32]
        ),
    )
    heads = [
        (model.encoder, "z_log_var"),
        (model.encoder_z1, "z1_log_var"),
        (model.prior_z1, "z1_log_var"),
    ]
    for network, name in heads:
        head = network.get_layer(name)
        kernel, bias = head.get_weights()
        head.set_weights([1e4 * kernel, bias])
    outputs = model(_binary_images(64), training=True)
    for key in ("z_log_var", "z1_log_var", "prior_z1_log_var"):
        values = keras.ops.convert_to_numpy(outputs[key])
        assert (values.min(), values.max()) == (-6.0, 2.0), key
    assert np.isfinite(keras.ops.convert_to_numpy(outputs["decoded"])).all()
