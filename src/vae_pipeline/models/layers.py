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


@keras.saving.register_keras_serializable(package="vae_pipeline")
class GatedDense(keras.layers.Layer):
    """A gated dense layer: ``activation(x W + b) * sigmoid(x V + c)``.

    The gated linear unit of Dauphin et al. (2017), the MLP block of Tomczak &
    Welling's VampPrior paper (2018). Both halves come from one ``Dense`` of twice
    the width, split in two: one matrix product per layer instead of two.
    """

    def __init__(self, units: int, activation: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.dense = keras.layers.Dense(2 * units, name="dense")

    def build(self, input_shape: Any) -> None:
        self.dense.build(input_shape)

    def call(self, inputs: Any) -> Any:
        values, gates = ops.split(self.dense(inputs), 2, axis=-1)
        return self.activation(values) * ops.sigmoid(gates)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
        }


@keras.saving.register_keras_serializable(package="vae_pipeline")
class PseudoInputs(keras.layers.Layer):
    """The learned pseudo-inputs u_1..u_K of a VampPrior (Tomczak & Welling 2018).

    The prior is ``p(z) = 1/K sum_k q(z | u_k)``, the encoder's posterior at K
    learned images. They are initialised near the pixel value 0.05 and kept in the
    pixel range [0, 1] by a hard clip, as in the paper.
    """

    def __init__(self, count: int, image_shape: tuple[int, ...], **kwargs: Any):
        super().__init__(**kwargs)
        self.count = int(count)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.values = self.add_weight(
            shape=(self.count, *self.image_shape),
            initializer=keras.initializers.RandomNormal(mean=0.05, stddev=0.01),
            name="values",
        )
        self.built = True

    def images(self) -> Any:
        """The pseudo-inputs as images, shape (count, *image_shape)."""
        return ops.clip(self.values, 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "count": self.count,
            "image_shape": list(self.image_shape),
        }
