"""Encoder and decoder networks, sized from the input shape, and the VAE built
from them (:func:`build_vae`).

The encoder (recognition model) maps an image to the mean and log-variance of a
diagonal Gaussian q(z|x); the decoder (generative model) maps z to the parameters
of p(x|z): logits for a Bernoulli likelihood, means for a Gaussian one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import keras
from keras import layers, ops

from vae_pipeline.models.hierarchical import HierarchicalVAE
from vae_pipeline.models.layers import GatedDense
from vae_pipeline.models.vae import VAE

Architecture = Literal["dense", "conv"]
# The layers whose outputs enter the likelihood compute in float32 under any dtype
# policy: a sum over 784 pixels in bfloat16 (8 bits of mantissa) is off by nats.
OUTPUT_DTYPE = "float32"


@dataclass(frozen=True)
class Networks:
    """The shape of the encoder and the decoder: each option, declared once.

    Attributes:
        architecture: ``dense`` (MLP) or ``conv`` (stride-2 convolutions, then
            dense layers).
        hidden_units: The encoder's dense widths (for ``conv``, after the
            convolutions).
        decoder_units: The decoder's dense widths from z outwards; None mirrors
            the encoder's.
        conv_filters: Filters of each stride-2 convolution (``conv`` only); the
            decoder uses them in reverse order.
        activation: Activation of the hidden layers.
        gated: Hidden dense layers as :class:`GatedDense` (the activation then
            applies to the gated values).
    """

    architecture: Architecture
    hidden_units: Sequence[int]
    decoder_units: Sequence[int] | None
    conv_filters: Sequence[int]
    activation: str
    gated: bool

    @property
    def decoder_widths(self) -> tuple[int, ...]:
        if self.decoder_units is None:
            return tuple(reversed(self.hidden_units))
        return tuple(self.decoder_units)


def _hidden(units: int, *, activation: str, gated: bool, name: str) -> layers.Layer:
    """A hidden dense layer: plain, or gated (:class:`GatedDense`)."""
    if gated:
        return GatedDense(units, activation=activation, name=name)
    return layers.Dense(units, activation=activation, name=name)


def downsampling_levels(height: int, width: int, max_levels: int) -> int:
    """How many stride-2 convolutions fit an image exactly (both sides halve evenly).

    Args:
        height: Image height.
        width: Image width.
        max_levels: Most levels wanted (the number of convolution filters given).

    Returns:
        Levels such that ``height`` and ``width`` divide by ``2 ** levels``.
    """
    levels = 0
    while levels < max_levels and height % 2 == 0 and width % 2 == 0 and height > 1:
        height, width, levels = height // 2, width // 2, levels + 1
    return levels


def _image_features(inputs: keras.KerasTensor, networks: Networks) -> keras.KerasTensor:
    """The encoders' trunk: stride-2 convolutions (``conv``), flatten, then the
    hidden dense layers."""
    x = inputs
    if networks.architecture == "conv":
        height, width = inputs.shape[1:3]
        levels = downsampling_levels(height, width, len(networks.conv_filters))
        for index, filters in enumerate(networks.conv_filters[:levels]):
            x = layers.Conv2D(
                filters,
                3,
                strides=2,
                padding="same",
                activation=networks.activation,
                name=f"conv_{index}",
            )(x)
    x = layers.Flatten(name="flatten")(x)
    return _dense_stack(x, networks.hidden_units, networks)


def _dense_stack(
    x: keras.KerasTensor, widths: Sequence[int], networks: Networks, prefix: str = ""
) -> keras.KerasTensor:
    for index, units in enumerate(widths):
        x = _hidden(
            units,
            activation=networks.activation,
            gated=networks.gated,
            name=f"{prefix}hidden_{index}",
        )(x)
    return x


@keras.saving.register_keras_serializable(package="vae_pipeline")
def bounded_log_var(x: Any) -> Any:
    """The Hardtanh(-6, 2) of the log-variance heads in Tomczak & Welling's code:
    standard deviations between 0.05 and 2.7."""
    return ops.clip(x, -6.0, 2.0)


def _gaussian(
    x: keras.KerasTensor, dim: int, name: str, *, bounded: bool = False
) -> list[keras.KerasTensor]:
    """Mean and log-variance heads of a diagonal Gaussian over ``name``, in
    float32 whatever the dtype policy (the likelihood is summed from them).

    ``bounded`` clips the log-variance (:func:`bounded_log_var`). The two-layer
    model needs it: while KL warm-up weighs the prior at 0, nothing holds its
    variances, and within the first ten steps of one seed they grew until
    exp(log_var / 2) overflowed float32 (log-variances of +-177), after which
    every weight was NaN.
    """
    return [
        layers.Dense(dim, name=f"{name}_mean", dtype=OUTPUT_DTYPE)(x),
        layers.Dense(
            dim,
            activation=bounded_log_var if bounded else None,
            name=f"{name}_log_var",
            dtype=OUTPUT_DTYPE,
        )(x),
    ]


def build_encoder(
    input_shape: Sequence[int],
    latent_dim: int,
    networks: Networks,
    *,
    bounded: bool = False,
) -> keras.Model:
    """Build the encoder: image -> (z_mean, z_log_var).

    Args:
        input_shape: ``(height, width, channels)``.
        latent_dim: Dimension of z.
        networks: The networks' options.
        bounded: Clip the log-variance (:func:`bounded_log_var`).

    Returns:
        A functional model named ``encoder`` with outputs ``z_mean``, ``z_log_var``.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    features = _image_features(inputs, networks)
    return keras.Model(
        inputs,
        _gaussian(features, latent_dim, "z", bounded=bounded),
        name="encoder",
    )


def build_image_features(input_shape: Sequence[int], networks: Networks) -> keras.Model:
    """Build the image branch of q(z1 | x, z2): the encoder's trunk.

    It is a sub-model of its own so that it runs once per image, not once per
    drawn z2 (an importance-sampled likelihood draws thousands).

    Returns:
        A functional model named ``features_z1``, input ``image``.
    """
    image = keras.Input(shape=tuple(input_shape), name="image")
    return keras.Model(image, _image_features(image, networks), name="features_z1")


def build_conditional_encoder(
    features_dim: int, z2_dim: int, z1_dim: int, networks: Networks
) -> keras.Model:
    """Build q(z1 | x, z2) of a two-layer VAE from the image's features (of
    :func:`build_image_features`) and one hidden layer on z2, joined by one more
    hidden layer.

    Returns:
        A functional model named ``encoder_z1``, inputs ``features`` and ``z2``,
        outputs ``z1_mean`` and ``z1_log_var``.
    """
    features = keras.Input(shape=(features_dim,), name="features")
    z2 = keras.Input(shape=(z2_dim,), name="z2")
    width = networks.hidden_units[-1]
    joined = layers.Concatenate(name="join")(
        [features, _dense_stack(z2, [width], networks, prefix="z2_")]
    )
    x = _dense_stack(joined, [width], networks, prefix="joint_")
    return keras.Model(
        [features, z2], _gaussian(x, z1_dim, "z1", bounded=True), name="encoder_z1"
    )


def build_conditional_prior(
    z2_dim: int, z1_dim: int, networks: Networks
) -> keras.Model:
    """Build p(z1 | z2) of a two-layer VAE: the decoder's dense widths.

    Returns:
        A functional model named ``prior_z1``, input ``z2``, outputs
        ``z1_mean`` and ``z1_log_var``.
    """
    z2 = keras.Input(shape=(z2_dim,), name="z2")
    x = _dense_stack(z2, networks.decoder_widths, networks)
    return keras.Model(z2, _gaussian(x, z1_dim, "z1", bounded=True), name="prior_z1")


def build_decoder(
    output_shape: Sequence[int], latent_dim: int, networks: Networks
) -> keras.Model:
    """Build the decoder: z -> parameters of p(x|z), the encoder mirrored.

    Args:
        output_shape: ``(height, width, channels)`` of the images.
        latent_dim: Dimension of z.
        networks: The networks' options (dense widths ``decoder_widths``).

    Returns:
        A functional model named ``decoder`` whose output (linear, one value per
        pixel) is read as logits or means by the likelihood.
    """
    activation, conv_filters = networks.activation, networks.conv_filters
    height, width, channels = output_shape
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = _dense_stack(inputs, networks.decoder_widths, networks)
    if networks.architecture == "conv":
        levels = downsampling_levels(height, width, len(conv_filters))
        filters = list(conv_filters[:levels])
        scale = 2**levels
        start_channels = filters[-1] if filters else channels
        x = layers.Dense(
            (height // scale) * (width // scale) * start_channels,
            activation=activation,
            name="project",
        )(x)
        x = layers.Reshape((height // scale, width // scale, start_channels))(x)
        for index, count in enumerate(reversed(filters)):
            x = layers.Conv2DTranspose(
                count,
                3,
                strides=2,
                padding="same",
                activation=activation,
                name=f"deconv_{index}",
            )(x)
        outputs = layers.Conv2DTranspose(
            channels, 3, padding="same", name="pixel_parameters", dtype=OUTPUT_DTYPE
        )(x)
    else:
        x = layers.Dense(
            math.prod(output_shape), name="pixel_parameters", dtype=OUTPUT_DTYPE
        )(x)
        outputs = layers.Reshape(tuple(output_shape), name="image", dtype=OUTPUT_DTYPE)(
            x
        )
    return keras.Model(inputs, outputs, name="decoder")


def build_vae(
    image_shape: Sequence[int],
    *,
    latent_dim: int,
    stochastic_layers: Literal[1, 2],
    seed: int | None = None,
    **options: Any,
) -> VAE:
    """Build a VAE for images of ``image_shape`` (height, width, channels).

    ``options`` are the ``training.model`` parameters
    (``conf/base/parameters_training.yml``, where the project's values live):
    each field of :class:`Networks` and each keyword option of :class:`VAE`,
    every one required, declared there and nowhere else.

    With ``stochastic_layers: 2``, a :class:`HierarchicalVAE` whose z1 and z2
    both have ``latent_dim`` dimensions.

    Returns:
        An uncompiled :class:`VAE` with ``encoder`` and ``decoder`` sub-models.

    Raises:
        TypeError: An option is missing or unknown.
    """
    network_names = {field.name for field in dataclasses.fields(Networks)}
    networks = Networks(
        **{name: value for name, value in options.items() if name in network_names}
    )
    model_options = {
        name: value for name, value in options.items() if name not in network_names
    }
    if stochastic_layers == 1:
        encoder = build_encoder(image_shape, latent_dim, networks)
        decoder = build_decoder(image_shape, latent_dim, networks)
        return VAE(encoder, decoder, seed=seed, name="vae", **model_options)
    if stochastic_layers != 2:
        raise ValueError(f"stochastic_layers must be 1 or 2, got {stochastic_layers}")
    features_z1 = build_image_features(image_shape, networks)
    return HierarchicalVAE(
        build_encoder(image_shape, latent_dim, networks, bounded=True),
        build_decoder(image_shape, 2 * latent_dim, networks),
        features_z1=features_z1,
        encoder_z1=build_conditional_encoder(
            features_z1.outputs[0].shape[-1], latent_dim, latent_dim, networks
        ),
        prior_z1=build_conditional_prior(latent_dim, latent_dim, networks),
        seed=seed,
        name="vae",
        **model_options,
    )
