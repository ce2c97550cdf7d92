"""Custom layers of the VAE."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

_SEED_STATE = "seed_generator_state"


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

    # Keras does not save a SeedGenerator's state with the layer's variables; the
    # layer has no variables of its own, so its store holds just that state.
    def save_own_variables(self, store: Any) -> None:
        store[_SEED_STATE] = ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store: Any) -> None:
        if _SEED_STATE in store.keys():  # noqa: SIM118 (an H5 store, not a dict)
            self.seed_generator.state.assign(store[_SEED_STATE])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}
