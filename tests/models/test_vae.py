"""The Keras VAE: sampling, likelihoods, KL, architectures and serialization."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from kedro.io import Version
from kedro_datasets.tensorflow import TensorFlowModelDataset

from tests.conftest import model_options
from vae_pipeline.models import (
    Sampling,
    bernoulli_nll,
    build_vae,
    gaussian_nll,
    kl_per_dimension,
)
from vae_pipeline.models.layers import GatedDense
from vae_pipeline.models.vae import mixture_log_density

RNG = np.random.default_rng(5)


def test_sampling_reparameterization_statistics():
    mean = np.array([[1.5, -2.0, 0.0]], dtype=np.float32).repeat(200_000, axis=0)
    log_var = np.array([[0.0, math.log(0.25), math.log(4.0)]], np.float32).repeat(
        200_000, axis=0
    )
    z = keras.ops.convert_to_numpy(Sampling(seed=1)((mean, log_var)))
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0, 0.0], atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 0.5, 2.0], rtol=0.01)


def test_sampling_is_reproducible_by_seed():
    inputs = (np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32))
    first = keras.ops.convert_to_numpy(Sampling(seed=3)(inputs))
    second = keras.ops.convert_to_numpy(Sampling(seed=3)(inputs))
    other = keras.ops.convert_to_numpy(Sampling(seed=4)(inputs))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_bernoulli_nll_matches_cross_entropy_and_is_stable_at_0_and_1():
    x = RNG.random((3, 2, 2, 1)).astype(np.float32)
    logits = RNG.normal(size=x.shape).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(bernoulli_nll(x, logits)), expected, rtol=1e-5
    )
    x_edge = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)
    logits_edge = np.array([[-200.0, 200.0, 200.0, -200.0]], np.float32)
    nll = keras.ops.convert_to_numpy(bernoulli_nll(x_edge, logits_edge))
    np.testing.assert_allclose(nll, [400.0], rtol=1e-6)  # two confident mistakes


def test_gaussian_nll_matches_the_density():
    x = RNG.random((2, 5)).astype(np.float32)
    mean = RNG.random((2, 5)).astype(np.float32)
    sigma = 0.3
    expected = (
        0.5 * ((x - mean) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    ).sum(axis=1)
    got = gaussian_nll(x, mean, np.float32(math.log(sigma)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=1e-5)


def test_closed_form_kl_matches_monte_carlo():
    mean = np.array([0.7, -1.2], np.float32)
    log_var = np.array([math.log(0.3), math.log(2.5)], np.float32)
    closed = keras.ops.convert_to_numpy(kl_per_dimension(mean, log_var))
    std = np.exp(log_var / 2)
    z = mean + std * RNG.standard_normal((400_000, 2))
    log_q = -0.5 * (((z - mean) / std) ** 2) - np.log(std) - 0.5 * math.log(2 * math.pi)
    log_p = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose((log_q - log_p).mean(axis=0), closed, rtol=0.02)


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("architecture", ["dense", "conv"])
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (12, 10, 3)])
def test_architectures_are_sized_from_the_input(architecture, shape, gated):
    model = build_vae(
        shape,
        **model_options(
            latent_dim=3, architecture=architecture, gated=gated, train_samples=4
        ),
    )
    x = RNG.random((2, *shape)).astype(np.float32)
    outputs = model(x)
    assert tuple(outputs["z_mean"].shape) == (2, 3)
    assert tuple(outputs["z_log_var"].shape) == (2, 3)
    assert tuple(outputs["z"].shape) == (4, 2, 3)
    assert tuple(outputs["decoded"].shape) == (4, 2, *shape)
    assert tuple(outputs["reconstruction"].shape) == (2, *shape)
    assert model.encoder.name == "encoder" and model.decoder.name == "decoder"
    assert model.image_shape == shape and model.latent_dim == 3


def test_loss_is_reconstruction_plus_beta_kl():
    x = RNG.random((64, 8, 8, 1)).astype(np.float32)
    for beta in (0.0, 1.0, 4.0):
        model = build_vae((8, 8, 1), seed=0, **model_options(latent_dim=2, beta=beta))
        model.compile(optimizer=keras.optimizers.Adam(0.0))
        logs = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
        assert logs["loss"] == pytest.approx(
            logs["reconstruction"] + beta * logs["kl"], rel=1e-5
        )


def test_kl_only_variant_ignores_reconstruction():
    x = RNG.random((64, 8, 8, 1)).astype(np.float32)
    model = build_vae(
        (8, 8, 1), seed=0, **model_options(latent_dim=2, reconstruction_weight=0.0)
    )
    model.compile(optimizer=keras.optimizers.Adam(0.0))
    logs = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["kl"], rel=1e-5)


def test_gated_dense_is_a_gated_linear_unit():
    layer = GatedDense(5, activation="tanh")
    x = RNG.normal(size=(7, 3)).astype(np.float32)
    got = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = layer.dense.get_weights()
    pre = x @ kernel + bias
    expected = np.tanh(pre[:, :5]) / (1 + np.exp(-pre[:, 5:]))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_mixture_log_density_is_the_log_mean_of_the_component_densities():
    z = RNG.normal(size=(9, 4)).astype(np.float32)
    means = RNG.normal(size=(3, 4)).astype(np.float32)
    log_vars = RNG.normal(scale=0.5, size=(3, 4)).astype(np.float32)
    variances = np.exp(log_vars)
    densities = np.prod(
        np.exp(-((z[:, None] - means) ** 2) / (2 * variances))
        / np.sqrt(2 * np.pi * variances),
        axis=-1,
    )  # (9, 3)
    got = keras.ops.convert_to_numpy(mixture_log_density(z, means, log_vars))
    np.testing.assert_allclose(got, np.log(densities.mean(axis=1)), rtol=1e-5)


def _vamp_model(**options):
    keras.utils.set_random_seed(0)  # the same initial weights for every build
    return build_vae(
        (8, 8, 1),
        seed=0,
        **model_options(
            latent_dim=2, hidden_units=[16], prior="vamp", pseudo_inputs=4, **options
        ),
    )


def test_iwae_objective_with_one_sample_is_the_elbo():
    """Same seed, same draws: -log w with K = 1 is the ELBO with a sampled KL."""
    x = (RNG.random((64, 8, 8, 1)) < 0.5).astype(np.float32)
    losses = {}
    for objective in ("elbo", "iwae"):
        model = _vamp_model(objective=objective, train_samples=1)
        model.compile(optimizer=keras.optimizers.Adam(0.0))
        logs = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
        assert logs["loss"] == pytest.approx(
            logs["reconstruction"] + logs["kl"], rel=1e-5
        )
        losses[objective] = logs["loss"]
    assert losses["iwae"] == pytest.approx(losses["elbo"], rel=1e-6)


def test_iwae_objective_is_the_importance_weighted_bound():
    x = (RNG.random((400, 8, 8, 1)) < 0.3).astype(np.float32)
    model = _vamp_model(objective="iwae", train_samples=50)
    model.compile(optimizer=keras.optimizers.Adam(0.0))
    loss = model.evaluate(x, batch_size=400, verbose=0, return_dict=True)["loss"]
    bound = -model.log_likelihood(x, num_samples=50, seed=1).mean()
    elbo = model.elbo(x, num_samples=20)
    assert loss == pytest.approx(bound, abs=0.05)
    assert loss < (elbo["reconstruction"] + elbo["kl"]).mean()


def test_vamp_prior_samples_follow_the_mixture():
    model = _vamp_model()
    means, log_vars = (keras.ops.convert_to_numpy(a) for a in model.prior_components())
    z = model.sample_prior(100_000, seed=3)
    np.testing.assert_allclose(z.mean(axis=0), means.mean(axis=0), atol=0.02)
    second_moment = (np.exp(log_vars) + means**2).mean(axis=0)
    np.testing.assert_allclose((z**2).mean(axis=0), second_moment, rtol=0.03)


@pytest.mark.parametrize(
    "options",
    [
        {"architecture": "dense"},
        {"architecture": "conv", "likelihood": "gaussian", "learn_sigma": True},
        {"gated": True, "prior": "vamp", "pseudo_inputs": 3, "objective": "iwae"},
    ],
)
def test_save_and_load_through_kedro_gives_identical_outputs(tmp_path, options):
    model = build_vae((8, 8, 1), seed=7, **model_options(latent_dim=4, **options))
    model.compile(optimizer="adam")
    x = RNG.random((16, 8, 8, 1)).astype(np.float32)
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    dataset = TensorFlowModelDataset(
        filepath=str(tmp_path / "vae.keras"), version=Version(None, None)
    )
    dataset.save(model)
    loaded = TensorFlowModelDataset(
        filepath=str(tmp_path / "vae.keras"), version=Version(None, None)
    ).load()
    for original, reloaded in (
        (model.encoder, loaded.encoder),
        (model.decoder, loaded.decoder),
    ):
        inputs = x if original.name == "encoder" else RNG.normal(size=(16, 4))
        for a, b in zip(
            keras.tree.flatten(original.predict(inputs, verbose=0)),
            keras.tree.flatten(reloaded.predict(inputs, verbose=0)),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    # The sampling layer's seed state is saved too: the next draws agree.
    before, after = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    own_settings = {
        "beta",
        "likelihood",
        "learn_sigma",
        "gaussian_sigma",
        "prior",
        "pseudo_inputs",
        "objective",
        "train_samples",
        "seed",
    }
    assert {k: loaded.get_config()[k] for k in own_settings} == {
        k: model.get_config()[k] for k in own_settings
    }


def test_every_option_is_required_and_known_once():
    """The options live in ``training.model``: a missing one or a stray one is a
    one-line error naming it, not a silent default."""
    options = model_options(latent_dim=2)
    for missing in ("gated", "beta"):
        partial = {k: v for k, v in options.items() if k != missing}
        with pytest.raises(TypeError, match=missing):
            build_vae((8, 8, 1), **partial)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments.*dropout"):
        build_vae((8, 8, 1), **options, dropout=0.1)
