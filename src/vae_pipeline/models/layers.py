"""Custom layers of the VAE."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vae_pipeline")
class Sampling(keras.layers.Layer):
    """Reparameterization trick: ``z = mu + exp(logvar / 2) * eps``, eps ~ N(0, I).

    Randomness comes from a ``keras.random.SeedGenerator``, whose state is saved
    with the model, so a reloaded model draws the same noise as the original.
    """

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: tuple[Any, Any]) -> Any:
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape: tuple[Any, Any]) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}
