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

    architecture: Literal["dense", "conv"] = "dense"
    latent_dim: PositiveInt = 8
    hidden_units: list[PositiveInt] = Field(default=[256, 128])
    decoder_units: list[PositiveInt] | None = Field(default=[256, 512])
    conv_filters: list[PositiveInt] = Field(default=[32, 64])
    activation: Activation = "relu"
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    gaussian_sigma: PositiveFloat = 0.1
    learn_sigma: bool = False
    beta: NonNegativeFloat = 1.0
    reconstruction_weight: NonNegativeFloat = 1.0


class TrainingParams(StrictParams):
    """Parameters under ``training`` in ``parameters_training.yml``."""

    model: ModelParams = ModelParams()
    epochs: PositiveInt = 100
    batch_size: PositiveInt = 256
    min_steps_per_epoch: NonNegativeInt = 25
    learning_rate: PositiveFloat = 3e-3
    kl_warmup_epochs: NonNegativeInt = 0
    early_stopping_patience: PositiveInt = 3
    reduce_lr_patience: NonNegativeInt = 0
    shuffle_buffer: PositiveInt = 10_000
    dynamic_binarization: bool = False
    seed: int = 42
    deterministic: bool = True
    jit_compile: bool = True
    strategy: Literal["default", "mirrored", "multi_worker_mirrored"] = "default"
    checkpoint_dir: str = "data/06_models/checkpoints"
    cache_in_memory_mb: NonNegativeInt = 1024
    input_example_images: PositiveInt = 4
