"""Typed parameters of the training pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from vae_pipeline.params import StrictParams

Activation = Literal[
    "relu",
    "gelu",
    "elu",
    "selu",
    "swish",
    "tanh",
    "leaky_relu",
    "softplus",
    "sigmoid",
    "linear",
]


class ModelParams(StrictParams):
    """Architecture and loss of the VAE."""

    architecture: Literal["dense", "conv"]
    stochastic_layers: Literal[1, 2]
    latent_dim: PositiveInt
    hidden_units: list[PositiveInt] = Field(min_length=1)
    decoder_units: list[PositiveInt] | None = Field(min_length=1)
    conv_filters: list[PositiveInt] = Field(min_length=1)
    activation: Activation
    gated: bool
    likelihood: Literal["bernoulli", "gaussian"]
    gaussian_sigma: PositiveFloat
    learn_sigma: bool
    prior: Literal["standard", "vamp"]
    pseudo_inputs: PositiveInt
    objective: Literal["elbo", "iwae"]
    train_samples: PositiveInt
    beta: NonNegativeFloat
    reconstruction_weight: NonNegativeFloat


class TrainingParams(StrictParams):
    """Parameters under ``training`` in ``parameters_training.yml``."""

    model: ModelParams
    epochs: PositiveInt
    batch_size: PositiveInt
    min_steps_per_epoch: NonNegativeInt
    learning_rate: PositiveFloat
    learning_rate_schedule: Literal["constant", "cosine"]
    final_learning_rate: PositiveFloat
    kl_warmup_epochs: NonNegativeInt
    early_stopping_patience: PositiveInt
    reduce_lr_patience: NonNegativeInt
    shuffle_buffer: PositiveInt
    dynamic_binarization: bool
    seed: int
    deterministic: bool
    jit_compile: bool | Literal["auto"]
    precision: Literal["float32", "mixed_bfloat16"]
    steps_per_execution: PositiveInt
    strategy: Literal["default", "mirrored", "multi_worker_mirrored"]
    checkpoint_dir: str
    checkpoint_retention_days: NonNegativeFloat
    cache_in_memory_mb: NonNegativeInt

    @model_validator(mode="after")
    def _one_learning_rate_control(self) -> TrainingParams:
        if self.learning_rate_schedule != "constant" and self.reduce_lr_patience:
            raise ValueError(
                "reduce_lr_patience must be 0 with learning_rate_schedule "
                f"{self.learning_rate_schedule!r}: the schedule sets the rate"
            )
        if (
            self.learning_rate_schedule == "cosine"
            and self.final_learning_rate > self.learning_rate
        ):
            raise ValueError(
                f"final_learning_rate ({self.final_learning_rate:g}) must not exceed "
                f"learning_rate ({self.learning_rate:g})"
            )
        return self
