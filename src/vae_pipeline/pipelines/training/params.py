"""Typed parameters of the training pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

from vae_pipeline.params import StrictParams

Activation = Literal[
    "relu", "gelu", "elu", "selu", "swish", "tanh", "leaky_relu", "softplus", "sigmoid"
]


class ModelParams(StrictParams):
    """Architecture and loss of the VAE."""

    architecture: Literal["dense", "conv"]
    latent_dim: PositiveInt
    hidden_units: list[PositiveInt] = Field(min_length=1)
    decoder_units: list[PositiveInt] | None = Field(min_length=1)
    conv_filters: list[PositiveInt] = Field(min_length=1)
    activation: Activation
    likelihood: Literal["bernoulli", "gaussian"]
    gaussian_sigma: PositiveFloat
    learn_sigma: bool
    beta: NonNegativeFloat
    reconstruction_weight: NonNegativeFloat


class TrainingParams(StrictParams):
    """Parameters under ``training`` in ``parameters_training.yml``."""

    model: ModelParams
    epochs: PositiveInt
    batch_size: PositiveInt
    min_steps_per_epoch: NonNegativeInt
    learning_rate: PositiveFloat
    kl_warmup_epochs: NonNegativeInt
    early_stopping_patience: PositiveInt
    reduce_lr_patience: NonNegativeInt
    shuffle_buffer: PositiveInt
    dynamic_binarization: bool
    seed: int
    deterministic: bool
    jit_compile: bool
    strategy: Literal["default", "mirrored", "multi_worker_mirrored"]
    checkpoint_dir: str
    checkpoint_retention_days: NonNegativeFloat
    cache_in_memory_mb: NonNegativeInt
