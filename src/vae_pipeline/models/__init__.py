"""Keras VAE: layers, encoder and decoder, the model and its training helpers.

Nothing here imports Kedro: the models work on their own, in notebooks or scripts.
"""

from vae_pipeline.models.architectures import Networks, build_decoder, build_encoder
from vae_pipeline.models.layers import Sampling
from vae_pipeline.models.vae import (
    VAE,
    bernoulli_nll,
    build_vae,
    gaussian_nll,
    kl_per_dimension,
)

__all__ = [
    "VAE",
    "Networks",
    "Sampling",
    "bernoulli_nll",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "gaussian_nll",
    "kl_per_dimension",
]
