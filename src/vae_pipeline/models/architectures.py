"""Encoder and decoder networks, sized from the input shape.

The encoder (recognition model) maps an image to the mean and log-variance of a
diagonal Gaussian q(z|x); the decoder (generative model) maps z to the parameters
of p(x|z): logits for a Bernoulli likelihood, means for a Gaussian one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import keras
from keras import layers

from vae_pipeline.models.layers import GatedDense

Architecture = Literal["dense", "conv"]


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


def build_encoder(
    input_shape: Sequence[int], latent_dim: int, networks: Networks
) -> keras.Model:
    """Build the encoder: image -> (z_mean, z_log_var).

    Args:
        input_shape: ``(height, width, channels)``.
        latent_dim: Dimension of z.
        networks: The networks' options.

    Returns:
        A functional model named ``encoder`` with outputs ``z_mean``, ``z_log_var``.
    """
    activation, gated, conv_filters = (
        networks.activation,
        networks.gated,
        networks.conv_filters,
    )
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if networks.architecture == "conv":
        levels = downsampling_levels(input_shape[0], input_shape[1], len(conv_filters))
        for index, filters in enumerate(conv_filters[:levels]):
            x = layers.Conv2D(
                filters,
                3,
                strides=2,
                padding="same",
                activation=activation,
                name=f"conv_{index}",
            )(x)
    x = layers.Flatten(name="flatten")(x)
    for index, units in enumerate(networks.hidden_units):
        x = _hidden(units, activation=activation, gated=gated, name=f"hidden_{index}")(
            x
        )
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


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
    activation, gated, conv_filters = (
        networks.activation,
        networks.gated,
        networks.conv_filters,
    )
    height, width, channels = output_shape
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = inputs
    for index, units in enumerate(networks.decoder_widths):
        x = _hidden(units, activation=activation, gated=gated, name=f"hidden_{index}")(
            x
        )
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
            channels, 3, padding="same", name="pixel_parameters"
        )(x)
    else:
        x = layers.Dense(math.prod(output_shape), name="pixel_parameters")(x)
        outputs = layers.Reshape(tuple(output_shape), name="image")(x)
    return keras.Model(inputs, outputs, name="decoder")
