"""The Variational Autoencoder model and its loss.

Loss per image, in nats:
``reconstruction_weight * -log p(x|z) + beta * sum_j KL(q(z_j|x) || N(0, 1))``,
with the KL in closed form and z drawn once with the reparameterization trick.
``beta = 1`` and ``reconstruction_weight = 1`` give the negative ELBO; ``beta > 1``
the disentangling beta-VAE. A non-trainable ``kl_weight`` in [0, 1] multiplies the
KL term for warm-up (see :class:`~vae_pipeline.models.callbacks.KLWarmup`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import keras
import numpy as np
from keras import ops

from vae_pipeline.models.architectures import Architecture, build_decoder, build_encoder
from vae_pipeline.models.layers import Sampling

Likelihood = Literal["bernoulli", "gaussian"]
INFERENCE_BATCH = 1000  # images per eager encoder or decoder call
LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(values: Any) -> Any:
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


def bernoulli_nll(x: Any, logits: Any) -> Any:
    """-log Bernoulli(x | sigmoid(logits)) summed over pixels, per example.

    Computed from logits as ``max(l, 0) - l * x + log(1 + exp(-|l|))``, which is
    exact and finite for pixels at exactly 0 and 1 and for any logit.
    """
    elementwise = (
        ops.maximum(logits, 0.0) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
    )
    return _sum_per_example(elementwise)


def gaussian_nll(x: Any, mean: Any, log_sigma: Any) -> Any:
    """-log N(x | mean, sigma^2) summed over pixels, per example."""
    standardized = (x - mean) * ops.exp(-log_sigma)
    elementwise = 0.5 * ops.square(standardized) + log_sigma + 0.5 * LOG_2PI
    return _sum_per_example(elementwise)


def _mean_over_examples(values: Any) -> Any:
    """Mean over the batch; 0 for an empty batch (a replica's share can be empty)."""
    count = ops.cast(ops.shape(values)[0], values.dtype)
    return ops.sum(values) / ops.maximum(count, 1.0)


def _scale_for_replicas(loss: Any) -> Any:
    """Divide by the replicas in sync, as Keras does for its own losses.

    Under a tf.distribute strategy each replica's gradients are summed, so each
    replica's loss must be its share of the mean loss.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / replicas
    return loss


def _in_multi_worker_replica() -> bool:
    """Whether this runs in a replica of a multi-worker tf.distribute strategy."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return (
        isinstance(
            tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
        )
        and not tf.distribute.in_cross_replica_context()
    )


def kl_per_dimension(z_mean: Any, z_log_var: Any) -> Any:
    """Closed-form KL(N(mean, exp(log_var)) || N(0, 1)) for each latent dimension."""
    return 0.5 * (ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var)


@keras.saving.register_keras_serializable(package="vae_pipeline")
class VAE(keras.Model):
    """Encoder, sampling layer and decoder, trained on the (beta-weighted) ELBO.

    Calling the model returns a dict: ``z_mean``, ``z_log_var``, ``decoded`` (the
    decoder's output: logits or means) and ``reconstruction`` (the mean of
    p(x|z), in pixel space). ``loss``, ``reconstruction`` and ``kl`` are reported as
    metrics in training and validation.
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        *,
        beta: float,
        reconstruction_weight: float,
        likelihood: Likelihood,
        gaussian_sigma: float,
        learn_sigma: bool,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(
                f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.reconstruction_weight = float(reconstruction_weight)
        self.likelihood = likelihood
        self.gaussian_sigma = float(gaussian_sigma)
        self.learn_sigma = bool(learn_sigma)
        self.seed = seed
        self.sampling = Sampling(seed=seed, name="sampling")
        self.kl_weight = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="kl_weight"
        )
        self.log_sigma = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(gaussian_sigma)),
            trainable=likelihood == "gaussian" and learn_sigma,
            name="log_sigma",
        )
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.built = True

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.outputs[0].shape[-1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.encoder.inputs[0].shape[1:])

    def encode(
        self, images: Any, *, batch_size: int = INFERENCE_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and log-variance of q(z|x) for each image, as NumPy arrays.

        Calls the encoder eagerly, batch by batch, rather than through
        ``predict``: a short inference on a freshly loaded model then traces no
        ``tf.function`` (TensorFlow warns when many such traces pile up).
        """
        means, log_vars = [], []
        for start in range(0, len(images), batch_size):
            batch = ops.convert_to_tensor(images[start : start + batch_size], "float32")
            mean, log_var = self.encoder(batch, training=False)
            means.append(ops.convert_to_numpy(mean))
            log_vars.append(ops.convert_to_numpy(log_var))
        if not means:
            empty = np.zeros((0, self.latent_dim), np.float32)
            return empty, empty
        return np.concatenate(means), np.concatenate(log_vars)

    def decode(self, z: Any, *, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """The mean of p(x|z) (pixel space) for each latent point, as NumPy."""
        return self._decode_batches(
            lambda decoded, _: self.pixel_mean(decoded), z, None, batch_size
        )

    def conditional_log_likelihood(
        self, images: Any, z: Any, *, batch_size: int = INFERENCE_BATCH
    ) -> np.ndarray:
        """log p(x|z) in nats for each image and its latent point, as NumPy."""
        return self._decode_batches(
            lambda decoded, x: -self.reconstruction_nll(x, decoded),
            z,
            images,
            batch_size,
        )

    def _decode_batches(
        self, reduce: Any, z: Any, images: Any, batch_size: int
    ) -> np.ndarray:
        outputs = []
        for start in range(0, len(z), batch_size):
            stop = start + batch_size
            decoded = self.decoder(
                ops.convert_to_tensor(z[start:stop], "float32"), training=False
            )
            x = (
                None
                if images is None
                else ops.convert_to_tensor(images[start:stop], "float32")
            )
            outputs.append(ops.convert_to_numpy(reduce(decoded, x)))
        return np.concatenate(outputs)

    def pixel_mean(self, decoded: Any) -> Any:
        """Mean of p(x|z) from the decoder's output."""
        return ops.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded

    def call(self, inputs: Any, training: bool | None = None) -> dict[str, Any]:
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z = self.sampling((z_mean, z_log_var))
        decoded = self.decoder(z, training=training)
        return {
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "decoded": decoded,
            "reconstruction": self.pixel_mean(decoded),
        }

    def reconstruction_nll(self, x: Any, decoded: Any) -> Any:
        """-log p(x|z) per example, in nats."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(x, decoded)
        return gaussian_nll(x, decoded, self.log_sigma)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        reconstruction = self.reconstruction_nll(x, y_pred["decoded"])
        kl = ops.sum(kl_per_dimension(y_pred["z_mean"], y_pred["z_log_var"]), axis=-1)
        # Per-example values: the metrics are means over images, like Keras's loss
        # tracker, whatever the batch sizes.
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        loss = _mean_over_examples(
            self.reconstruction_weight * reconstruction
            + self.beta * self.kl_weight * kl
        )
        return _scale_for_replicas(loss)

    def get_metrics_result(self) -> dict[str, Any]:
        """The metrics, each with a batch axis of one inside a multi-worker step.

        Keras 3's TensorFlow trainer averages a multi-worker step's logs with
        ``strategy.reduce("MEAN", value, axis=0)``, which fails on the scalars
        every metric gives (tensorflow/tensorflow#72388, still so in Keras 3.15);
        the reduction then gives the scalars back.
        """
        result = super().get_metrics_result()
        if _in_multi_worker_replica():
            return {name: ops.reshape(value, (1,)) for name, value in result.items()}
        return result

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
            "reconstruction_weight": self.reconstruction_weight,
            "likelihood": self.likelihood,
            "gaussian_sigma": self.gaussian_sigma,
            "learn_sigma": self.learn_sigma,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VAE:
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def build_vae(
    image_shape: Sequence[int],
    *,
    latent_dim: int,
    architecture: Architecture,
    hidden_units: Sequence[int],
    decoder_units: Sequence[int] | None,
    conv_filters: Sequence[int],
    activation: str,
    beta: float,
    reconstruction_weight: float,
    likelihood: Likelihood,
    gaussian_sigma: float,
    learn_sigma: bool,
    seed: int | None = None,
) -> VAE:
    """Build a VAE for images of ``image_shape`` (height, width, channels).

    ``hidden_units`` are the encoder's dense widths; the decoder mirrors them
    when ``decoder_units`` (from z outwards) is None. Every option is required:
    the project's values live in ``conf/base/parameters_training.yml`` (the
    ``training.model`` group), not here.

    Returns:
        An uncompiled :class:`VAE` with ``encoder`` and ``decoder`` sub-models.
    """
    network = {
        "architecture": architecture,
        "conv_filters": tuple(conv_filters),
        "activation": activation,
    }
    if decoder_units is None:
        decoder_units = tuple(reversed(hidden_units))
    return VAE(
        build_encoder(
            image_shape, latent_dim, hidden_units=tuple(hidden_units), **network
        ),
        build_decoder(
            image_shape, latent_dim, hidden_units=tuple(decoder_units), **network
        ),
        beta=beta,
        reconstruction_weight=reconstruction_weight,
        likelihood=likelihood,
        gaussian_sigma=gaussian_sigma,
        learn_sigma=learn_sigma,
        seed=seed,
        name="vae",
    )
